"""The library's interview questions as click prompts and as flags.

Every question is also a ``--flag`` (for scripts). An answer given as a
flag is checked by the question itself; one not given is asked at a
terminal (re-asked until it fits), or else takes the question's default;
a required answer with neither is a usage error that names the flag.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from calfrehab.engine.api import AnswerError, Question

F = TypeVar("F", bound=Callable[..., Any])


def question_options(questions: Iterable[Question]) -> Callable[[F], F]:
    """One ``--flag`` per question (``--straight-knee-sets`` for the key
    ``straight_knee_sets``); the values arrive in a dict ``answers``."""
    seen: dict[str, Question] = {}
    for q in questions:
        seen.setdefault(q.key, q)

    def wrap(fn: F) -> F:
        for q in reversed(list(seen.values())):
            hint = q.help or q.text
            if q.kind == "choice":
                hint += " (" + " | ".join(q.choices) + ")"
            fn = click.option(q.flag, q.key, default=None, metavar=_metavar(q),
                              help=hint)(fn)
        return fn

    return wrap


def _fold(text: str) -> str:
    return text.strip().lower().replace("-", "_").replace(" ", "_")


def match_choice(text: str, choices: Iterable[str]) -> str:
    """The choice an answer means: itself in any case; else the one choice
    it begins, or one of whose words it begins ("R" is right, "plantar" is
    plantar_fasciopathy, "rupture" is achilles_rupture). Several matches
    ("Achilles") are offered by name, and a typo ("runing") gets the
    closest choice suggested; both as an AnswerError."""
    options = list(choices)
    text = text.strip()
    folded = _fold(text)
    if folded in options:
        return folded
    if not folded:
        return text
    found = [c for c in options if c.startswith(folded)]
    if not found:
        found = [c for c in options if any(w.startswith(folded) for w in c.split("_"))]
    if len(found) == 1:
        return found[0]
    if found:
        raise AnswerError(f"`{text}` could be {', '.join(found)}: which one?")
    close = difflib.get_close_matches(folded, options, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise AnswerError(f"`{text}` is not known{hint}; expected one of {', '.join(options)}")


def _canonical(q: Question, raw: str) -> str:
    """An answer to a choice question with its choices spelled out."""
    if q.kind == "choice":
        return match_choice(raw, q.choices)
    if q.kind == "choices" and raw.strip().lower() not in ("", "none", "no", "-"):
        return ",".join(match_choice(part, q.choices) for part in raw.split(","))
    return raw


def _metavar(q: Question) -> str:
    return {"choice": "NAME", "choices": "A,B", "int": "N", "number": "X", "date": "YYYY-MM-DD",
            "reps": "N,N,N", "text": "TEXT"}[q.kind]


def interactive_option(fn: F) -> F:
    return click.option(
        "--interactive/--no-input", "interactive", default=None,
        help="Ask for answers not given as flags (default: when standard input is a "
             "terminal). --no-input never asks: a needed answer missing is an error.")(fn)


class Asker:
    """Answers the library's questions from flags, then prompts, then
    defaults."""

    def __init__(self, given: dict[str, Any], interactive: bool | None,
                 flag_only: frozenset[str] = frozenset()) -> None:
        self.given = {k: v for k, v in given.items() if v is not None}
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        self.flag_only = flag_only

    def __call__(self, q: Question) -> Any:
        raw = self.given.get(q.key)
        if raw is not None:
            try:
                return q.parse(_canonical(q, str(raw)))
            except AnswerError as exc:
                raise click.BadParameter(str(exc), param_hint=f"'{q.flag}'") from None
        if self.interactive and q.key not in self.flag_only:
            return self._prompt(q)
        if q.default is not None:
            return q.parse(q.default)
        if not q.required:
            return None
        raise click.UsageError(f"{q.flag} is needed: {q.expectation()} "
                               "(or run at a terminal to be asked)")

    @staticmethod
    def _prompt(q: Question) -> Any:
        def proc(text: str) -> Any:
            try:
                return q.parse(_canonical(q, text))
            except AnswerError as exc:
                raise click.UsageError(str(exc)) from None

        text = q.text
        if q.kind in ("choice", "choices"):
            text += " — " + ", ".join(q.choices)
        default = q.default if q.default is not None else ("" if not q.required else None)
        return click.prompt(text, default=default, value_proc=proc,
                            show_default=bool(default), err=True)
