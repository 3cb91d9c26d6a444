"""A posted form as the answers to the library's interview questions.

The questions of ``new``, ``log`` and ``assess`` belong to the library
(wording, choices, ranges, defaults); the command line asks them at a
prompt, the app shows them as a form. :class:`FormAsk` is the app's
:data:`api.Ask`: it answers each question from the posted field of the same
key and checks it with the question's own parser, so an answer is judged by
the same code whichever way it came. A blank field takes the question's
default, as Enter does at the prompt.

:func:`rehearse` learns which questions an interview asks for one case
(the log interview asks per programme track, with that track's dose as
the default) by running it on a copy of the case file in a scratch
directory, with each question answered by its default.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from calfrehab.engine import api


class FieldProblem(Exception):
    """An answer that does not fit its question: the field and why."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


@dataclass(frozen=True)
class Field:
    """One form field: a question as this case's interview asks it."""

    key: str
    label: str
    kind: str
    choices: tuple[str, ...]
    default: str | None
    required: bool
    help: str

    @property
    def input_type(self) -> str:
        return "date" if self.kind == "date" else "text"

    @property
    def inputmode(self) -> str | None:
        return {"int": "numeric", "number": "decimal"}.get(self.kind)


def field_of(q: api.Question) -> Field:
    return Field(key=q.key, label=" ".join(q.text.split()), kind=q.kind, choices=q.choices,
                 default=q.default, required=q.required, help=q.help)


def _raw(form: Mapping[str, Any], key: str) -> str:
    value = form.get(key)
    if isinstance(value, list):  # several checkboxes of one "choices" question
        return ", ".join(str(v) for v in value)
    return str(value) if value is not None else ""


class FormAsk:
    """Answers interview questions from a posted form."""

    def __init__(self, form: Mapping[str, Any]) -> None:
        self.form = form
        self.asked: list[str] = []

    def __call__(self, q: api.Question) -> Any:
        self.asked.append(q.key)
        raw = _raw(self.form, q.key).strip()
        if not raw and q.default is not None:
            raw = q.default
        try:
            return q.parse(raw)
        except api.AnswerError as exc:
            raise FieldProblem(q.key, str(exc)) from None


def precheck(questions: Iterable[api.Question], form: Mapping[str, Any]) -> dict[str, str]:
    """Every filled-in field checked by its question, so that all the
    errors show at once (the interview itself stops at the first)."""
    errors: dict[str, str] = {}
    for q in questions:
        raw = _raw(form, q.key).strip()
        if not raw:
            continue
        try:
            q.parse(raw)
        except api.AnswerError as exc:
            errors[q.key] = str(exc)
    return errors


def _stand_in(q: api.Question, today: date) -> Any:
    # An answer that lets the rehearsal go on to the next question: the
    # default, else the lowest value allowed. Optional questions get one too,
    # so the questions that follow from them are asked (and shown).
    if q.default is not None:
        try:
            return q.parse(q.default)
        except api.AnswerError:
            pass
    if q.kind in ("int", "number"):
        return int(q.minimum or 0)
    if q.kind == "date":
        return today
    if q.kind == "choice":
        return q.choices[0]
    if q.kind == "choices":
        return []
    if q.kind == "reps":
        return [int(q.minimum or 0)]
    return None


def rehearse(path: Path, run: Callable[[Path, api.Ask], object], today: date,
             fallback: Iterable[api.Question] = ()) -> list[api.Question]:
    """The fields an interview asks for the case at ``path``, each with the
    text and default it has for this case, learnt by running it on a copy.
    A refusal part way still leaves the questions asked before it, and
    ``fallback``'s after them."""
    fields: list[api.Question] = []

    def ask(q: api.Question) -> Any:
        if all(f.key != q.key for f in fields):
            fields.append(q)
        return _stand_in(q, today)

    with tempfile.TemporaryDirectory(prefix="calfrehab-app-") as scratch:
        copy = Path(scratch) / path.name
        shutil.copyfile(path, copy)
        with contextlib.suppress(api.CalfrehabError, ValueError):
            run(copy, ask)
    # A refusal before the end (no session left without next-morning
    # values, say) leaves the questions after it unasked: show them too.
    fields += [q for q in fallback if all(f.key != q.key for f in fields)]
    return fields
