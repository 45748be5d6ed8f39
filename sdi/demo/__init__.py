"""sdi.demo."""
