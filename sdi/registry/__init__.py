"""sdi.registry."""
