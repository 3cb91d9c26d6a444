"""Domain errors. The CLI turns each into a clean message, never a traceback."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from calfrehab.engine.textsafe import for_terminal

# How much of a path (a file name, a place in a case) an error shows.
_PATH_SHOWN = 200


class CalfrehabError(Exception):
    """Base of every error the program reports to a user as a message.

    ``exit_code``, when set, is the exit status the CLI uses for this error
    whatever the command's default (2: a refused command line)."""

    exit_code: int | None = None


@dataclass(frozen=True)
class FieldError:
    """One problem in one document, located by its path.

    ``path`` is written the way the spec writes it
    (``sessions[2].exercises[0].pain_during``); ``value`` is the offending
    value as it appeared (JSON text), or None where the field is missing.
    """

    path: str
    message: str
    value: str | None = None
    line: int | None = None
    column: int | None = None

    def render(self) -> str:
        # The path and the value come from the case (keys and values may
        # hold newlines or ESC sequences): escaped, so one error is one line.
        where = for_terminal(self.path, limit=_PATH_SHOWN) if self.path else "(document)"
        if self.line is not None:
            where += f" (line {self.line}, column {self.column})"
        shown = f" (got {for_terminal(self.value)})" if self.value is not None else ""
        return f"{where}: {for_terminal(self.message, limit=None)}{shown}"

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"path": self.path, "message": self.message}
        if self.value is not None:
            out["value"] = self.value
        if self.line is not None:
            out["line"] = self.line
            out["column"] = self.column
        return out


class CaseValidationError(CalfrehabError):
    """A case file that breaks the contract; carries every problem found."""

    def __init__(self, source: str, errors: Sequence[FieldError]) -> None:
        self.source = source
        self.errors = list(errors)
        super().__init__(self.render())

    def render(self) -> str:
        source = for_terminal(self.source, limit=_PATH_SHOWN)
        lines = [f"{source}: invalid case file ({len(self.errors)} error(s))"]
        lines += [f"  - {e.render()}" for e in self.errors]
        return "\n".join(lines)


class RuleError(CalfrehabError):
    """A rules directory that cannot be used; carries every problem found."""

    def __init__(self, problems: Sequence[RuleProblem]) -> None:
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"rules are not usable ({len(self.problems)} problem(s))"]
        lines += [f"  - {p.render()}" for p in self.problems]
        return "\n".join(lines)


@dataclass(frozen=True)
class RuleProblem:
    file: str
    message: str
    line: int | None = None
    rule_id: str | None = None

    def render(self) -> str:
        where = for_terminal(self.file, limit=_PATH_SHOWN) + (
            f":{self.line}" if self.line is not None else "")
        rule = f" rule {for_terminal(self.rule_id)}:" if self.rule_id else ""
        return f"{where}:{rule} {for_terminal(self.message, limit=None)}"


class EngineError(CalfrehabError):
    """A rule that broke while it ran; names the rule."""

    def __init__(self, message: str, rule_id: str | None = None) -> None:
        self.rule_id = rule_id
        super().__init__(message)


class InputError(CalfrehabError):
    """An input that is not read: not a regular file, over the size cap, or
    unreadable. Names the file and why."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class UnsafeOutputError(CalfrehabError):
    """An output that would destroy data (an input, the audit trail, a
    device, a special file, a symlink); refused before any work is done."""

    exit_code = 2


class OutputError(CalfrehabError):
    """An output that could not be written (disk full, file too large, no
    permission); names the file. Nothing half-written is left in its place."""


class NoRecord(CalfrehabError):
    """The chart has no calf rehabilitation record and calfrehab's case
    store has none for this patient: nothing to decide yet."""
