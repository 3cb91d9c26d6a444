"""The trail's one error type."""

from __future__ import annotations

from calfrehab.engine.errors import CalfrehabError

__all__ = ["AuditError"]


class AuditError(CalfrehabError):
    """The audit trail cannot be opened, read or written, or a request to it
    is invalid. Every sqlite3 error is turned into one of these, so the CLI
    shows a message rather than a traceback."""
