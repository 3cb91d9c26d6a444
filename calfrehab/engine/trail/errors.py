"""The trail's one error type, defined with every other error in
:mod:`calfrehab.engine.errors` and importable from here as before."""

from __future__ import annotations

from calfrehab.engine.errors import AuditError

__all__ = ["AuditError"]
