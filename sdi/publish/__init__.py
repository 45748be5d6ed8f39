"""sdi.publish."""
