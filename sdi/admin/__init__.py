"""sdi.admin."""
