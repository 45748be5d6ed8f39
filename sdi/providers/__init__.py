"""sdi.providers."""
