"""Every error calfrehab reports to a person: one module, one tree.

The CLI, the service and the app turn each into a clean message (one line
unless it lists problems), never a traceback. Catch :class:`CalfrehabError`
for all of them, or a branch for one kind::

    CalfrehabError
    ├── ArgumentError ............ a program called the API with an argument
    │                              of the wrong type (function, parameter,
    │                              value, expected); also a TypeError
    ├── InputError ............... an input not read: not a regular file,
    │                              over the size cap, unreadable, not UTF-8
    ├── CaseValidationError ...... a case file that breaks the contract
    │                              (every problem, as FieldError)
    ├── CsvImportError ........... a CSV export that cannot be read as a whole
    ├── FhirMappingError ......... a FHIR Bundle that does not map to a case
    │                              (every problem, as MappingProblem)
    ├── NoRecord ................. a chart with no calf-rehab record, and no
    │                              stored case for the patient
    ├── CdsRequestError .......... a CDS Hooks request or feedback that is not one
    ├── RuleError ................ a rules directory that cannot be used
    │                              (every problem, as RuleProblem)
    ├── RuleDataError ............ rules that lack, or disagree on, a value
    │                              a view needs (the report's pain bands)
    ├── CaseTableError ........... a case table asking for what the rules lack
    ├── EngineError .............. a rule that broke while it ran
    ├── SettingError ............. an environment setting with an unusable value
    ├── ClinicConfigError ........ calfrehab.toml unreadable or off its format
    ├── ClockError ............... a naive datetime, or a stamp misspelt
    ├── CanonicalJSONError ....... a value with no canonical JSON form
    ├── ScriptError .............. a course script spelt wrongly
    ├── ReviewDayError ........... a review day that is not one
    ├── FutureReviewDate ......... a review date after the clinic's today
    ├── AnswerError .............. an interview answer that does not fit
    │   └── DuplicateSession ..... the same session entered twice
    ├── UnusualValues ............ values outside the plausible ranges,
    │                              not confirmed
    ├── CaseFileExists ........... `new` over an existing file
    ├── CaseFileChanged .......... a case file changed under a writer
    ├── CaseFileBusy ............. another writer holds a case file
    ├── OtherPatientsCase ........ a write that would swap patients
    ├── AcceptError .............. a decision that cannot be applied
    │   └── StaleDecision ........ decided on another version of the file
    ├── AuditError ............... the audit trail cannot be used
    ├── CodecError ............... a stored document that does not decompress
    ├── TrailBusyError ........... another batch records into the trail
    ├── BatchError ............... a batch that cannot start or finish
    │   └── BatchUsageError ...... a batch asked for what it must not do
    ├── NoCaseFilesError ......... batch inputs with no case at all
    ├── UnsafeOutputError ........ an output that would destroy data
    └── OutputError .............. an output that could not be written

Each class is defined here and nowhere else; the modules that raise one
import it from here (and some re-export it where it was defined before, so
old imports keep working). ``calfrehab.engine.api`` exports every public
one. Several are also ValueErrors (AnswerError, ClockError,
CanonicalJSONError, ScriptError, ReviewDayError, CodecError), as they were:
code that caught ValueError around them still does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol

from calfrehab.engine.textsafe import for_terminal

__all__ = [
    "AcceptError",
    "AnswerError",
    "ArgumentError",
    "AuditError",
    "BatchError",
    "BatchUsageError",
    "CalfrehabError",
    "CanonicalJSONError",
    "CaseFileBusy",
    "CaseFileChanged",
    "CaseFileExists",
    "CaseTableError",
    "CaseValidationError",
    "CdsRequestError",
    "ClinicConfigError",
    "ClockError",
    "CodecError",
    "CsvImportError",
    "DuplicateSession",
    "EngineError",
    "FhirMappingError",
    "FieldError",
    "FutureReviewDate",
    "InputError",
    "MappingProblem",
    "NoCaseFilesError",
    "NoRecord",
    "OtherPatientsCase",
    "OutputError",
    "ReviewDayError",
    "RuleDataError",
    "RuleError",
    "RuleProblem",
    "ScriptError",
    "SettingError",
    "StaleDecision",
    "TrailBusyError",
    "UnsafeOutputError",
    "UnusualValues",
]

# How much of a path (a file name, a place in a case) an error shows.
_PATH_SHOWN = 200


class CalfrehabError(Exception):
    """Base of every error the program reports to a user as a message.

    ``exit_code``, when set, is the exit status the CLI uses for this error
    whatever the command's default (2: a refused command line)."""

    exit_code: int | None = None


# The problem records below (FieldError, RuleProblem, MappingProblem) are
# NamedTuples, not frozen dataclasses: as immutable, and compared and hashed
# by their fields alike, but a dataclass's generated methods are compiled
# each time the class is defined, about 0.4 ms of CPU a class, which every
# command paid at start-up for records made only when something is wrong
# (issue 28 item 4, cold start). Each is written out as a dict (as_dict) or
# a line (render), never as the tuple it also is.


class FieldError(NamedTuple):
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


class RuleProblem(NamedTuple):
    """One problem in a rules directory: the file, the message, and where
    known the line and the rule."""

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


class ArgumentError(CalfrehabError, TypeError):
    """A program called the API with an argument that does not fit the
    function's signature (a wrong type, a missing or unknown argument);
    names the function, the parameter, the value and what was expected.
    Raised at the API's edge (``api/_guard.py``), and a TypeError too, as
    Python's own would have been."""

    exit_code = 2

    def __init__(self, function: str, parameter: str | None, value: object,
                 expected: str) -> None:
        self.function = function
        self.parameter = parameter
        self.value = value
        self.expected = expected
        if parameter is None:
            super().__init__(f"{function}(): {expected}")
        else:
            shown = for_terminal(repr(value), limit=60)
            super().__init__(f"{function}(): argument {parameter} is {shown} "
                             f"({type(value).__name__}); expected {expected}")


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


class SettingError(CalfrehabError):
    """An environment setting (CALFREHAB_...) whose value cannot be used;
    names the setting, the value and what it must be."""


class RuleDataError(CalfrehabError):
    """Rules that lack, or disagree on, a value a view needs (the report's
    pain bands); names the rules."""


class CaseTableError(CalfrehabError):
    """A case table asking for what the rules do not have (a parameter the
    manifest does not declare)."""


class CsvImportError(CalfrehabError):
    """A CSV export that cannot be read as a whole (no header, a required
    column missing, not text in the encoding given)."""


class MappingProblem(NamedTuple):
    """One thing in a Bundle that cannot become part of a case file."""

    resource: str  # "Observation/abc" or "entry[3]"
    element: str  # "Observation.valueInteger"
    message: str

    def render(self) -> str:
        where = f"{self.resource} {self.element}".strip()
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"resource": self.resource, "element": self.element, "message": self.message}


class FhirMappingError(CalfrehabError):
    """A Bundle that does not map to a valid case file; carries every problem."""

    def __init__(self, source: str, problems: Iterable[MappingProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.source}: cannot be read as a case ({len(self.problems)} problem(s))"]
        lines += [f"  - {p.render()}" for p in self.problems]
        return "\n".join(lines)


class CdsRequestError(CalfrehabError):
    """A CDS Hooks request (or feedback) that is not one; carries every
    problem as a FieldError (path in the JSON, message)."""

    def __init__(self, what: str, errors: Sequence[FieldError]) -> None:
        self.what = what
        self.errors = list(errors)
        super().__init__(f"{what}: " + "; ".join(e.render() for e in self.errors))


class ClinicConfigError(CalfrehabError):
    """A configuration file that cannot be read or breaks its format."""


class ClockError(CalfrehabError, ValueError):
    """A clock returned a naive datetime, or a stamp is not in the one
    spelling."""


class CanonicalJSONError(CalfrehabError, ValueError):
    """A value has no canonical JSON form (NaN, Infinity, a lone surrogate,
    keys that cannot be sorted together, a type JSON does not have).

    Documents read from JSON only ever have string keys; a program that
    builds one with int keys gets them written as strings, as ``json`` does.
    """


class ScriptError(CalfrehabError, ValueError):
    """A script spelled wrongly (names what was given and what is expected)."""


class ReviewDayError(CalfrehabError, ValueError):
    """A review day that is not a weekday name, ``first`` or ``last``, or a
    weekday in the middle of the course's training week (names both that fit)."""


class FutureReviewDate(CalfrehabError):
    """A case whose review date is after the clinic's today, decided without
    an explicit review date (clinical-basis §8)."""


class AnswerError(CalfrehabError, ValueError):
    """An answer that does not fit its question; the message says what was
    expected."""


class DuplicateSession(AnswerError):
    """The same session entered again on its date (clinical-basis §8)."""


class _Renders(Protocol):
    def render(self) -> str: ...


class UnusualValues(CalfrehabError):
    """An entry with values outside the plausible ranges, not confirmed."""

    def __init__(self, found: Sequence[_Renders]) -> None:
        self.found = list(found)
        lines = "; ".join(u.render() for u in found)
        super().__init__(f"{lines}. Nothing was written: check the value, or give "
                         "--confirm-unusual if it is right")


class CaseFileExists(CalfrehabError):
    """``new`` was asked to write over an existing file."""


class CaseFileChanged(CalfrehabError):
    """The case file changed between reading it and writing it back."""


class CaseFileBusy(CalfrehabError):
    """Another writer held the case file's lock for too long."""


class OtherPatientsCase(CalfrehabError):
    """A write would replace one patient's case file with another's."""


class AcceptError(CalfrehabError):
    """A decision (or override) that cannot be applied to the case file."""


class StaleDecision(AcceptError):
    """The decision was made for another version of the case file."""


class AuditError(CalfrehabError):
    """The audit trail cannot be opened, read or written, or a request to it
    is invalid. Every sqlite3 error is turned into one of these, so the CLI
    shows a message rather than a traceback."""


class CodecError(CalfrehabError, ValueError):
    """A stored document does not decompress (damaged, doctored, or made
    with a dictionary the trail does not hold)."""


class TrailBusyError(CalfrehabError):
    """Another batch is recording into the same audit trail."""

    exit_code = 2


class BatchError(CalfrehabError):
    """A batch that cannot start or cannot finish (bad inputs or outputs)."""


class BatchUsageError(BatchError):
    """A batch asked for something it must not do (exit 2, like a usage error)."""

    exit_code = 2


class NoCaseFilesError(CalfrehabError):
    """The inputs hold no case at all (an empty directory, say)."""
