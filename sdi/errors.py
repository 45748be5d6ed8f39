"""The exception tree: every error the user can cause, with its HTTP meaning.

Library and database exceptions are translated into these at the boundary of
the module that calls the library, with a message that says what to do.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BadInputError",
    "ConflictError",
    "ForbiddenError",
    "GoneError",
    "IngestError",
    "NotFoundError",
    "SdiError",
    "TooLargeError",
    "UnsupportedFormatError",
]


class SdiError(Exception):
    """Base of every error sdi reports to a user."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "NoApplicableCode"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_ogc(self) -> dict[str, str]:
        """The OGC API exception body for this error."""
        return {"code": self.code, "description": self.message}


class BadInputError(SdiError):
    """The request or file is wrong in a way the user can fix."""

    status = 400
    code = "InvalidParameterValue"


class IngestError(BadInputError):
    """An uploaded file cannot be ingested; nothing was written."""

    code = "InvalidInput"


class UnsupportedFormatError(IngestError):
    """The file is not in a format sdi reads."""

    status = 415


class TooLargeError(IngestError):
    """The file (or its unpacked contents) is over a configured limit."""

    status = 413


class NotFoundError(SdiError):
    """The named thing does not exist (or is not visible to the caller)."""

    status = 404
    code = "NotFound"


class ForbiddenError(SdiError):
    """The caller may not do this."""

    status = 403
    code = "Forbidden"


class ConflictError(SdiError):
    """The request conflicts with the current state (duplicate id, ...)."""

    status = 409
    code = "Conflict"


class GoneError(SdiError):
    """The thing existed and was taken down on purpose (a withdrawn version)."""

    status = 410
    code = "Gone"
