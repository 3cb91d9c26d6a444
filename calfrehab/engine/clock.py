"""The one clock and the one timestamp spelling.

Everything that records *when* (the audit trail's ``recorded_at`` and
``created_at``, the views that show them) reads time through a
:data:`Clock` and writes it with :func:`utc_stamp`, so tests and replays
can fix the time in one place and every stamp in the program has one
spelling: UTC, always six fractional digits, ``Z``
(``2026-11-20T14:03:12.123456Z``). Fixed width makes the text sort by time
and makes a stamp read back and re-rendered byte-identical, which the
audit trail's hashes rely on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from calfrehab.engine.errors import ClockError as ClockError

__all__ = ["Clock", "ClockError", "checked_now", "parse_stamp", "utc_now", "utc_stamp"]

Clock = Callable[[], datetime]
"""A source of the current time; must return timezone-aware datetimes."""

_STAMP: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC (the default :data:`Clock`)."""
    return datetime.now(UTC)


def checked_now(clock: Clock) -> datetime:
    """Read ``clock`` and refuse a naive datetime: a naive time would be
    read as local time on one machine and UTC on another."""
    moment = clock()
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ClockError("a clock must return a timezone-aware datetime")
    return moment


def utc_stamp(moment: datetime) -> str:
    """``moment`` as the one stamp spelling (UTC, microseconds, ``Z``)."""
    if moment.tzinfo is None:
        raise ClockError("a timestamp needs a timezone-aware datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_stamp(text: str) -> datetime:
    """Read a stamp written by :func:`utc_stamp` back (aware, UTC)."""
    if not isinstance(text, str) or not _STAMP.match(text):
        raise ClockError(f"not a calfrehab UTC timestamp: {text!r}")
    return datetime.fromisoformat(text)
