"""One question of an interview, and how its typed answer is checked.

The library owns the questions (their wording, choices, ranges and
defaults); a front end only asks them. The command line turns each into a
click prompt that re-asks until :meth:`Question.parse` accepts the answer,
or reads it from the matching ``--flag`` for scripts. So an answer is
checked as it is typed, by the same code whichever way it came.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from calfrehab.engine.errors import AnswerError as AnswerError

Kind = Literal["choice", "choices", "int", "number", "date", "text", "reps"]


class Question(BaseModel):
    """One thing to ask. ``key`` names the answer (and the command-line
    flag, with ``_`` spelt ``-``); ``text`` is what the person reads."""

    model_config = ConfigDict(frozen=True)

    key: str
    text: str
    kind: Kind
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    pattern_help: str | None = None
    default: str | None = None
    required: bool = True
    help: str = ""
    # A date question's latest allowed answer (the clinic's today: a record
    # is never dated after the day it is entered, clinical-basis §8).
    latest: date | None = None
    # What ``latest`` is, in the refusal: today for most dates; for the date
    # a next morning followed, yesterday (that morning has not come yet).
    latest_is: str = "today"

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")

    def expectation(self) -> str:
        """What a good answer looks like, in words."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "choices":
            return "none, or a comma-separated list of " + ", ".join(self.choices)
        if self.kind == "int":
            if self.maximum is None:
                return f"a whole number, {_num(self.minimum)} or more"
            return f"a whole number from {_num(self.minimum)} to {_num(self.maximum)}"
        if self.kind == "number":
            top = f" to {_num(self.maximum)}" if self.maximum is not None else " or more"
            return f"a number from {_num(self.minimum)}{top}"
        if self.kind == "date":
            return "a date YYYY-MM-DD"
        if self.kind == "reps":
            return "one whole number per set, comma-separated (0 or more), or skip"
        return self.pattern_help or "some text"

    def parse(self, raw: str) -> Any:
        """The answer as a value, or :class:`AnswerError`. An empty answer to
        an optional question is None."""
        text = raw.strip()
        if not text:
            if self.required:
                raise AnswerError(f"an answer is needed: {self.expectation()}")
            return None
        parser = _PARSERS[self.kind]
        return parser(self, text)


def _num(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:g}"


def _choice(q: Question, text: str) -> str:
    if text in q.choices:
        return text
    # Tolerate case and spaces for hyphens: "Non-operative" is non_operative.
    folded = text.lower().replace("-", "_").replace(" ", "_")
    if folded in q.choices:
        return folded
    raise AnswerError(f"`{text}` is not known; expected {q.expectation()}")


def _choices(q: Question, text: str) -> list[str]:
    if text.lower() in ("none", "no", "-"):
        return []
    out: list[str] = []
    for part in text.split(","):
        item = _choice(q, part.strip())
        if item in out:
            raise AnswerError(f"`{item}` is given twice; give each once")
        out.append(item)
    return out


def _in_range(q: Question, value: float) -> None:
    if q.minimum is not None and value < q.minimum:
        raise AnswerError(f"{value:g} is too low; expected {q.expectation()}")
    if q.maximum is not None and value > q.maximum:
        raise AnswerError(f"{value:g} is too high; expected {q.expectation()}")


def _int(q: Question, text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text):
        raise AnswerError(f"`{text}` is not a whole number; expected {q.expectation()}")
    value = int(text)
    _in_range(q, value)
    return value


def _number(q: Question, text: str) -> float:
    try:
        value = float(text.replace(",", ".")) if re.fullmatch(r"[+-]?\d+([.,]\d+)?", text) \
            else float("nan")
    except ValueError:
        value = float("nan")
    if value != value:  # NaN: not a plain decimal number
        raise AnswerError(f"`{text}` is not a number; expected {q.expectation()}")
    _in_range(q, value)
    return int(value) if value.is_integer() else value


def _date(q: Question, text: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise AnswerError(f"`{text}` is not a date; expected {q.expectation()}")
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise AnswerError(f"`{text}` is not a calendar date; expected YYYY-MM-DD") from None
    if q.latest is not None and value > q.latest:
        raise AnswerError(f"{text} is after {q.latest_is} ({q.latest.isoformat()} in the "
                          "clinic's time zone); a record is never dated ahead: enter the "
                          "day it happened")
    return value


def _text(q: Question, text: str) -> str:
    if q.pattern is not None and not re.fullmatch(q.pattern, text):
        raise AnswerError(f"`{text}` does not fit; expected {q.expectation()}")
    return text


def _reps(q: Question, text: str) -> list[int] | None:
    if text.lower() == "skip":
        return None
    parts = [p.strip() for p in re.split(r"[,\s]+", text) if p.strip()]
    if not parts:
        raise AnswerError(f"no sets given; expected {q.expectation()}")
    return [_int(q, p) for p in parts]


_PARSERS: dict[str, Callable[[Question, str], Any]] = {
    "choice": _choice, "choices": _choices, "int": _int, "number": _number,
    "date": _date, "text": _text, "reps": _reps,
}

Ask = Callable[[Question], Any]
"""A front end's way to get one parsed answer (or None for a skipped
optional question)."""
