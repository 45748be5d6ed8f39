"""The admin app: agencies sign in and manage their layers.

Built by :func:`create_app`; the same registry and ingestion code as the CLI.
"""

from sdi.admin.app import create_app

__all__ = ["create_app"]
