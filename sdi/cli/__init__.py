"""sdi.cli."""
