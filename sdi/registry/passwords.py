"""Password hashing (scrypt through werkzeug) and API key generation."""

from __future__ import annotations

import hashlib
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

__all__ = ["check_password", "hash_api_key", "hash_password", "new_api_key"]

MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password``."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.")
    return generate_password_hash(password, method="scrypt")


def check_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``."""
    return check_password_hash(password_hash, password)


def new_api_key() -> tuple[str, str]:
    """A fresh key and its public prefix: ``sdi_<prefix>_<secret>``."""
    prefix = secrets.token_hex(4)
    return f"sdi_{prefix}_{secrets.token_urlsafe(32)}", prefix


def hash_api_key(key: str) -> str:
    """The stored form of an API key (long random keys: SHA-256 is enough)."""
    return hashlib.sha256(key.encode()).hexdigest()
