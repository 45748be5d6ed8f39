"""sdi.api."""
