"""When a course's weekly reviews fall: on the first day of the patient's
next training week (the default) or on the last day of the week.

The patient starts training on the day of the intake review, so training
weeks are the 7-day blocks from it. A clinic that reviews at the start of
the next week (on the intake's weekday) and one that reviews at the end of
the week (the weekday before) must prescribe the same rep-max block
(clinical-basis §2: a review prescribes for the block that holds the day
after it), and replaying both shows whether the rules do. A weekday in
the middle of the training week is neither, and is refused: sessions of
the week would fall after the review that should have prescribed them.
"""

from __future__ import annotations

from datetime import date
from typing import Final, Literal

from calfrehab.engine.errors import ReviewDayError as ReviewDayError

ReviewDay = Literal["first", "last"]

WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                   "sunday")


def resolve_review_day(spec: str, intake: date) -> ReviewDay:
    """``first``, ``last``, or a weekday name: the intake's weekday is the
    first day of the next training week, the weekday before it the last day
    of the week."""
    word = spec.strip().lower()
    if word in ("first", "last"):
        return word  # type: ignore[return-value]
    first = WEEKDAYS[intake.weekday()]
    last = WEEKDAYS[(intake.weekday() - 1) % 7]
    if word == first:
        return "first"
    if word == last:
        return "last"
    if word in WEEKDAYS:
        raise ReviewDayError(
            f"review day {spec!r}: this course's training weeks start on a {first} (the weekday "
            f"of the intake review, {intake.isoformat()}); a weekly review falls on the last day "
            f"of a week ({last}) or the first day of the next ({first})")
    raise ReviewDayError(f"review day {spec!r}: expected first, last or a weekday name "
                         f"({', '.join(WEEKDAYS)})")


def review_offset_days(review_day: ReviewDay) -> int:
    """Days from the end of a 7-day training week to its review: the week's
    last day is one day before the first day of the next."""
    return -1 if review_day == "last" else 0
