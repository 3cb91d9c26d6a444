"""Case files from a clinic's spreadsheet export: one row per exercise per
session (``docs/csv-import.md`` lists the columns; ``examples/import/``
has a template).

Headers are matched loosely (case, spaces, units in brackets and common
synonyms), dates may be ISO or day/month/year or month/day/year (the order
inferred where a day is over 12, else given with ``date_order``). Every
error names the row, the column and what was expected; a bad row is
skipped and the good rows of its case are still written.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from calfrehab.engine.casefile import model as cm
from calfrehab.engine.casefile.editor import (
    append_entry,
    as_json,
    case_lock,
    new_case_file,
    open_case,
)
from calfrehab.engine.casefile.validation import validate_document
from calfrehab.engine.clinic import clinic_today
from calfrehab.engine.errors import (
    CalfrehabError,
    CaseValidationError,
    CsvImportError,
    OutputError,
    UnsafeOutputError,
)
from calfrehab.engine.limits import max_input_bytes
from calfrehab.engine.safeio import read_input_bytes, refuse_unless_regular, shown
from calfrehab.engine.textsafe import for_terminal
from calfrehab.engine.vocabulary import EXERCISES, TRACKS

DateOrder = Literal["dmy", "mdy"]
MAX_SETS = 10
# What a CSV is read as unless --encoding says otherwise.
DEFAULT_ENCODING = "utf-8"

# Canonical column -> the header spellings a clinic's export may use
# (compared after lower-casing, dropping a bracketed unit and joining words
# with "_").
COLUMNS: dict[str, tuple[str, ...]] = {
    "case_id": ("case_id", "case", "patient_id", "client_id", "id", "patient"),
    "date": ("date", "session_date", "visit_date", "day", "session"),
    "exercise": ("exercise", "exercise_id", "exercise_name", "ex"),
    "load_kg": ("load_kg", "load", "external_load", "added_load", "weight_kg", "weight",
                "extra_weight"),
    "sets_completed": ("sets_completed", "sets_done", "reps_done", "reps_per_set",
                       "reps", "done"),
    "pain_during": ("pain_during", "pain", "pain_during_exercise", "nrs_during", "pain_nrs",
                    "pain_exercise"),
    "pain_next_morning": ("pain_next_morning", "next_morning_pain", "morning_pain",
                          "pain_next_day", "pain_24h", "pain_morning"),
    "morning_stiffness_min": ("morning_stiffness_min", "morning_stiffness", "stiffness",
                              "stiffness_min", "stiffness_minutes"),
    "prescribed_sets": ("prescribed_sets", "sets_prescribed", "sets"),
    "prescribed_reps": ("prescribed_reps", "reps_prescribed", "target_reps"),
    "review_date": ("review_date", "review"),
    "age_years": ("age_years", "age"),
    "body_mass_kg": ("body_mass_kg", "body_mass", "body_weight", "body_weight_kg", "mass"),
    "sex": ("sex", "gender"),
    "goal": ("goal",),
    "kind": ("kind", "condition", "diagnosis", "condition_kind"),
    "side": ("side", "involved_side"),
    "irritability": ("irritability",),
    "onset_date": ("onset_date", "onset"),
    "injury_date": ("injury_date", "rupture_date"),
    "management": ("management",),
    "surgery_date": ("surgery_date", "operation_date"),
    "muscle": ("muscle",),
    "red_flags": ("red_flags", "red_flag"),
}
REQUIRED = ("case_id", "date", "exercise", "pain_during")
SESSION_FIELDS = ("pain_next_morning", "morning_stiffness_min")
CASE_FIELDS = ("review_date", "age_years", "body_mass_kg", "sex", "goal", "kind", "side",
               "irritability", "onset_date", "injury_date", "management", "surgery_date",
               "muscle", "red_flags")
_SET_COLUMN = re.compile(r"^set_?(\d{1,2})(_reps)?$")


# How much of a cell an error shows: enough to recognise it, and one line
# whatever it holds (a newline in a cell must not forge an output line).
CELL_SHOWN = 60


def _cell(text: str) -> str:
    return for_terminal(text, limit=CELL_SHOWN)


class RowError(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    row: int  # line in the file (the header is line 1)
    column: str  # as the file spells it ("" for the row as a whole)
    message: str
    # The case file in --into is one no write may go through (a symlink, a
    # directory, a device): refused as every output is, exit 2 at the CLI.
    refused: bool = False

    def render(self) -> str:
        where = f"row {self.row}" + (f", column {_cell(self.column)}" if self.column else "")
        return f"{where}: {self.message}"


class CaseImported(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    case_id: str
    path: str
    created: bool
    sessions_added: int
    sessions_already_there: int
    rows: int


class ImportResult(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    cases: list[CaseImported]
    errors: list[RowError]
    rows_read: int
    rows_imported: int

    @property
    def refused(self) -> bool:
        """Whether a case file was refused as an unsafe output."""
        return any(e.refused for e in self.errors)


def normalise(header: str) -> str:
    text = re.sub(r"[\(\[].*?[\)\]]", "", header.strip().lower())
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def map_headers(headers: list[str]) -> tuple[dict[str, str], dict[int, str], list[str]]:
    """Canonical column -> header as written; set number -> header; and the
    headers that mean nothing here (reported, not fatal)."""
    lookup = {alias: canon for canon, aliases in COLUMNS.items() for alias in aliases}
    found: dict[str, str] = {}
    sets: dict[int, str] = {}
    unknown: list[str] = []
    for h in headers:
        key = normalise(h)
        m = _SET_COLUMN.match(key)
        if m and 1 <= int(m.group(1)) <= MAX_SETS:
            sets[int(m.group(1))] = h
        elif key in lookup and lookup[key] not in found:
            found[lookup[key]] = h
        elif key:
            unknown.append(h)
    return found, sets, unknown


class _Bad(ValueError):
    pass


_SLASH_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$")


def parse_date(text: str, order: DateOrder | None) -> date:
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise _Bad(f"`{_cell(text)}` is not a calendar date") from None
    m = _SLASH_DATE.match(text)
    if not m:
        raise _Bad(f"`{_cell(text)}` is not a date; expected YYYY-MM-DD, DD/MM/YYYY or "
                   "MM/DD/YYYY")
    a, b, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if order is None:
        if a > 12 >= b:
            order = "dmy"
        elif b > 12 >= a:
            order = "mdy"
        elif a == b:
            order = "dmy"
        else:
            raise _Bad(f"`{_cell(text)}` could be day/month or month/day; say which with "
                       "--date-order dmy or --date-order mdy")
    day, month = (a, b) if order == "dmy" else (b, a)
    try:
        return date(year, month, day)
    except ValueError:
        raise _Bad(f"`{_cell(text)}` is not a calendar date read as "
                   f"{'day/month/year' if order == 'dmy' else 'month/day/year'}") from None


def _int(text: str, low: int, high: int | None, what: str) -> int:
    t = text.strip()
    if not re.fullmatch(r"\d+", t):
        raise _Bad(f"`{_cell(text)}` is not a whole number; expected {what}")
    value = int(t)
    if value < low or (high is not None and value > high):
        raise _Bad(f"{value} is out of range; expected {what}")
    return value


def _number(text: str, what: str) -> float:
    t = text.strip().replace(",", ".").removesuffix("kg").strip()
    if not re.fullmatch(r"\d+(\.\d+)?", t):
        raise _Bad(f"`{_cell(text)}` is not a number; expected {what}")
    value = float(t)
    return int(value) if value.is_integer() else value


def _exercise(text: str, names: dict[str, str]) -> str:
    t = text.strip()
    key = t.lower().replace(" ", "_").replace("-", "_")
    if key in EXERCISES:
        return key
    if t.lower() in names:
        return names[t.lower()]
    raise _Bad(f"`{_cell(text)}` is not a known exercise; expected an exercise id "
               f"({', '.join(EXERCISES)}) or its plain name")


def _sets_done(text: str) -> list[int]:
    parts = [p for p in re.split(r"[/;,+\s]+", text.strip()) if p]
    if not parts:
        raise _Bad("no sets given; expected reps per set like 15/15/12")
    return [_int(p, 0, None, "reps per set like 15/15/12 (whole numbers)") for p in parts]


class _Row(BaseModel):
    line: int
    case_id: str
    date: date
    exercise: str
    load_kg: float
    sets_completed: list[int]
    pain_during: int
    session: dict[str, int]
    prescribed: dict[str, int]
    case: dict[str, str]


@dataclass(frozen=True)
class _Columns:
    found: dict[str, str]  # canonical column -> header as written
    set_cols: dict[int, str]  # set number -> header
    index: dict[str, int]  # header -> position


def _parse_row(line: int, cells: list[str], cols: _Columns, date_order: DateOrder | None,
               exercise_names: dict[str, str]) -> tuple[_Row | None, list[RowError]]:
    """One data row, or every error in it (each with its column)."""
    found, set_cols, index = cols.found, cols.set_cols, cols.index

    def cell(canon: str) -> str:
        h = found.get(canon)
        return cells[index[h]].strip() if h is not None and index[h] < len(cells) else ""

    row_errors: list[RowError] = []

    def parse(canon: str, fn: Any, *args: Any, required: bool = False) -> Any:
        raw = cell(canon)
        if not raw:
            if required:
                row_errors.append(RowError(row=line, column=found.get(canon, canon),
                                           message="empty; a value is needed"))
            return None
        try:
            return fn(raw, *args)
        except _Bad as exc:
            row_errors.append(RowError(row=line, column=found[canon], message=str(exc)))
            return None

    case_id = cell("case_id")
    if not case_id:
        row_errors.append(RowError(row=line, column=found["case_id"],
                                   message="empty; a case id is needed"))
    elif not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", case_id):
        row_errors.append(RowError(row=line, column=found["case_id"],
                                   message=f"`{_cell(case_id)}`: expected 1–64 characters from "
                                           "A-Z a-z 0-9 . _ -"))
    when = parse("date", parse_date, date_order, required=True)
    exercise = parse("exercise", _exercise, exercise_names, required=True)
    load = parse("load_kg", _number, "kilograms, 0 or more")
    pain = parse("pain_during", _int, 0, 10, "pain 0–10", required=True)
    if set_cols:
        done = []
        for n in sorted(set_cols):
            raw = cells[index[set_cols[n]]].strip() if index[set_cols[n]] < len(cells) \
                else ""
            if raw:
                try:
                    done.append(_int(raw, 0, None, "reps in this set (whole number)"))
                except _Bad as exc:
                    row_errors.append(RowError(row=line, column=set_cols[n],
                                               message=str(exc)))
        if not done and not row_errors:
            row_errors.append(RowError(row=line, column=set_cols[min(set_cols)],
                                       message="no set filled in; expected reps per set"))
    else:
        done = parse("sets_completed", _sets_done, required=True) or []
    session = {k: v for k in SESSION_FIELDS
               if (v := parse(k, _int, 0, 10 if k == "pain_next_morning" else None,
                              "pain 0–10" if k == "pain_next_morning"
                              else "minutes, 0 or more")) is not None}
    prescribed = {k: v for k in ("prescribed_sets", "prescribed_reps")
                  if (v := parse(k, _int, 1, 50, "a whole number 1–50")) is not None}
    if row_errors:
        return None, row_errors
    return _Row(line=line, case_id=case_id, date=when, exercise=exercise, load_kg=load or 0,
                sets_completed=done, pain_during=pain, session=session, prescribed=prescribed,
                case={k: cell(k) for k in CASE_FIELDS if cell(k)}), []


def _read_text(path: Path, encoding: str = DEFAULT_ENCODING) -> str:
    """The file's text in ``encoding`` (UTF-8 by default, a byte-order mark
    allowed). Bytes that are not text in it are refused, naming the row
    and the byte: decoding them as something else would change names and
    notes without a word (the old fallback replaced them with U+FFFD)."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise CsvImportError(f"{path}: --encoding {for_terminal(encoding)}: not an encoding "
                             "Python knows (e.g. utf-8, cp1252, latin-1)") from None
    data = read_input_bytes(path, cap_bytes=max_input_bytes())
    name = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    try:
        return data.decode(name)
    except UnicodeDecodeError as exc:
        row = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        bad = data[exc.start:exc.end].hex(" ").upper()
        hint = ("; a file saved as CSV by Excel on Windows is usually --encoding cp1252"
                if codecs.lookup(encoding).name == "utf-8" else "")
        raise CsvImportError(
            f"{path}: row {row}: byte(s) {bad} at character {exc.start - line_start + 1} "
            f"are not {codecs.lookup(encoding).name} text; nothing was imported. Give "
            f"--encoding with the encoding the file was saved in{hint}") from None


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    first = text.split("\n", 1)[0]
    # A European export separates with ';' (the comma is the decimal mark).
    return csv.excel if first.count(",") >= first.count(";") else _Semicolon


class _Semicolon(csv.excel):
    delimiter = ";"


def read_rows(path: Path, date_order: DateOrder | None, exercise_names: dict[str, str],
              encoding: str = DEFAULT_ENCODING,
              ) -> tuple[list[_Row], list[RowError], int, dict[str, str]]:
    text = _read_text(path, encoding)
    reader = csv.reader(io.StringIO(text, newline=""), _dialect(text))
    try:
        headers = next(reader)
    except csv.Error as exc:
        raise _not_csv(path, 1, exc) from None
    except StopIteration:
        raise CsvImportError(f"{path}: empty file; expected a header row") from None
    found, set_cols, _unknown = map_headers(headers)
    missing = [c for c in REQUIRED if c not in found]
    if "sets_completed" not in found and not set_cols:
        missing.append("sets_completed (or set_1, set_2, ...)")
    if missing:
        raise CsvImportError(
            f"{path}: row 1 (the header): no column for {', '.join(missing)}; "
            f"headers found: {', '.join(_cell(h) for h in headers)} (see docs/csv-import.md)")
    index = {h: i for i, h in enumerate(headers)}
    rows: list[_Row] = []
    errors: list[RowError] = []
    count = 0
    line = 1
    try:
        for line, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            count += 1
            row, row_errors = _parse_row(line, cells, _Columns(found, set_cols, index),
                                         date_order, exercise_names)
            errors += row_errors
            if row is not None:
                rows.append(row)
    except csv.Error as exc:
        raise _not_csv(path, line + 1, exc) from None
    return rows, errors, count, found


def _not_csv(path: Path, row: int, exc: csv.Error) -> CsvImportError:
    """The reader gave up at ``row``: one line naming it, never a traceback
    (a 140,000-character cell used to end in ``_csv.Error``)."""
    if "field limit" in str(exc):
        why = (f"a cell is longer than {csv.field_size_limit():,} characters, more than "
               "any field of a case holds")
    else:
        why = f"not readable as CSV ({exc})"
    return CsvImportError(f"{path}: row {row}: {why}; nothing was imported")


def _case_values(rows: list[_Row], found_errors: list[RowError]) -> dict[str, tuple[str, int]]:
    """Each case-level column's value (and the row it came from); a second,
    different value is an error at its row."""
    values: dict[str, tuple[str, int]] = {}
    for r in rows:
        for k, v in r.case.items():
            if k not in values:
                values[k] = (v, r.line)
            elif values[k][0] != v:
                found_errors.append(RowError(
                    row=r.line, column=k,
                    message=f"`{_cell(v)}` differs from `{_cell(values[k][0])}` on row "
                            f"{values[k][1]}; "
                            "a case has one value (the first is used)"))
    return values


def _new_document(case_id: str, rows: list[_Row], values: dict[str, tuple[str, int]],
                  date_order: DateOrder | None) -> dict[str, Any]:
    """A new case from the case-level columns; the programme is the last
    session's dose on each track."""
    def v(key: str) -> str | None:
        return values[key][0] if key in values else None

    def number(text: str | None) -> Any:
        if text is None:
            return None
        return _number(text, "a number") if re.fullmatch(r"[\d.,]+", text) else _enum(text)

    def when(text: str | None) -> str | None:
        return parse_date(text, date_order).isoformat() if text else None

    latest = max(r.date for r in rows)
    program: dict[str, Any] = {t: None for t in TRACKS}
    for r in sorted(rows, key=lambda r: (r.date, r.line)):
        track = EXERCISES[r.exercise][0]
        program[track] = {
            "exercise": r.exercise, "load_kg": r.load_kg,
            "sets": r.prescribed.get("prescribed_sets", len(r.sets_completed)),
            "reps": r.prescribed.get("prescribed_reps", max(r.sets_completed) or 1),
        }
    condition = {k: x for k in ("kind", "side", "irritability", "onset_date", "injury_date",
                                "management", "surgery_date", "muscle")
                 if (x := (when(v(k)) if k.endswith("_date") else _enum(v(k)))) is not None}
    patient = {k: x for k in ("age_years", "body_mass_kg", "sex", "goal")
               if (x := number(v(k))) is not None}
    flags = [_enum(f) for f in re.split(r"[;,|]", v("red_flags") or "") if f.strip()
             and f.strip().lower() != "none"]
    return {
        "schema_version": 1, "case_id": case_id,
        "review_date": when(v("review_date")) or latest.isoformat(),
        "patient": patient, "condition": condition, "red_flags": flags,
        "program": program, "sessions": [], "assessments": [],
    }


def _enum(text: str | None) -> Any:
    """A choice as the case format spells it: "Non-operative" is non_operative."""
    if text is None:
        return None
    return re.sub(r"[\s-]+", "_", text.strip().lower())


def _sessions(rows: list[_Row], errors: list[RowError]) -> list[tuple[dict[str, Any], int]]:
    by_day: dict[date, list[_Row]] = {}
    for r in rows:
        by_day.setdefault(r.date, []).append(r)
    out = []
    for day, day_rows in sorted(by_day.items()):
        fields: dict[str, int] = {}
        for r in day_rows:
            for k, value in r.session.items():
                if k in fields and fields[k] != value:
                    errors.append(RowError(row=r.line, column=k, message=(
                        f"{value} differs from {fields[k]} on another row of the session on "
                        f"{day.isoformat()}; a session has one value (the first is used)")))
                fields.setdefault(k, value)
        session = cm.Session(
            date=day,
            exercises=[cm.PerformedExercise.model_validate({
                "exercise": r.exercise, "load_kg": r.load_kg,
                "sets_completed": r.sets_completed, "pain_during": r.pain_during})
                for r in day_rows],
            pain_next_morning=fields.get("pain_next_morning"),
            morning_stiffness_min=fields.get("morning_stiffness_min"))
        out.append((as_json(session), len(day_rows)))
    return out


def _validation_errors(exc: CaseValidationError, rows: Iterable[_Row],
                       found: dict[str, str]) -> list[RowError]:
    """The case file's errors, each at the case's first row and under the
    CSV column the field came from (or the field's path when none did)."""
    first = min(r.line for r in rows)
    out = []
    for e in exc.errors:
        leaf = re.sub(r"\[\d+\]", "", e.path).split(".")[-1]
        column = found.get(leaf) or found.get(e.path) or leaf or e.path
        got = f" (got {_cell(e.value)})" if e.value is not None else ""
        out.append(RowError(row=first, column=column,
                            message=f"{e.message}{got} [case file field {e.path}]"))
    return out


def _refused(case_id: str, rows: list[_Row], target: Path, exc: Exception) -> RowError:
    reason = exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
    return RowError(row=min(r.line for r in rows), column="",
                    message=f"case {case_id}: {shown(target)} not written: "
                            f"{for_terminal(reason, limit=300)}")


def _not_after_today(rows: list[_Row], errors: list[RowError], found: dict[str, str],
                     clinic_day: date, today: date | None,
                     ) -> tuple[list[_Row], list[RowError]]:
    """Rows dated after the clinic's today are refused, naming the date
    (clinical-basis §8: time gates count to the review date, so a typed
    2027 for 2026 would open one); the other rows are still imported."""
    day = today or clinic_day
    late = [r for r in rows if r.date > day]
    column = found.get("date", "date")
    return [r for r in rows if r.date <= day], [*errors, *(
        RowError(row=r.line, column=column,
                 message=f"{r.date.isoformat()} is after today ({day.isoformat()} in the "
                         "clinic's time zone); a record is never dated ahead: enter the day "
                         "it happened") for r in late)]


def import_csv(path: Path, into: Path, *, date_order: DateOrder | None = None,
               exercise_names: dict[str, str] | None = None,
               dry_run: bool = False, encoding: str = DEFAULT_ENCODING,
               today: date | None = None) -> ImportResult:
    """Read a clinic's CSV and write (or add to) one case file per case in
    ``into`` (``<case_id>.json``). A case already there keeps its patient,
    condition and programme; sessions on a day it already has are skipped,
    so importing the same export twice adds nothing. Rows dated after
    ``today`` (default: the clinic's, calfrehab.toml) are refused."""
    names = {k.lower(): v for k, v in (exercise_names or {}).items()}
    rows, errors, count, found = read_rows(path, date_order, names, encoding)
    rows, errors = _not_after_today(rows, errors, found, clinic_today(near=into), today)
    if rows and not dry_run:
        try:
            into.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            # Under a file, on a read-only mount: one line, not a traceback.
            # A symlink to nothing would read "File exists": say what is there.
            reason = ("it is a symlink to nothing" if into.is_symlink() and not into.exists()
                      else exc.strerror or str(exc))
            raise OutputError(f"{shown(into)}: cannot create the directory for the case "
                              f"files ({reason}); nothing was imported") from None
    by_case: dict[str, list[_Row]] = {}
    for r in rows:
        by_case.setdefault(r.case_id, []).append(r)
    cases: list[CaseImported] = []
    imported = 0
    # Each case file is locked from reading it to writing it (issue 27 item
    # 2): another import, a log or an accept on it waits, and is never lost.
    with contextlib.ExitStack() as held:
        for case_id, case_rows in by_case.items():
            target = into / f"{case_id}.json"
            held.close()  # the previous case's lock
            try:
                # Before it is read: a symlink there was followed, so its
                # target was read as the case (and reported invalid, or
                # added to in a dry run) and only the write refused it.
                refuse_unless_regular(target)
            except UnsafeOutputError as exc:
                errors.append(RowError(row=min(r.line for r in case_rows), column="",
                                       message=f"case {case_id}: {exc}", refused=True))
                continue
            if not dry_run:
                try:
                    held.enter_context(case_lock(target))
                except (CalfrehabError, OSError) as exc:
                    errors.append(_refused(case_id, case_rows, target, exc))
                    continue
            created = not target.exists()
            case_errors: list[RowError] = []
            values = _case_values(case_rows, case_errors)
            try:
                if created:
                    cf = new_case_file(target, _new_document(case_id, case_rows, values,
                                                             date_order))
                else:
                    cf = open_case(target)
                    validate_document(cf.document, str(target))
            except _Bad as exc:
                errors += [*case_errors, RowError(row=min(r.line for r in case_rows), column="",
                                                  message=f"case {case_id}: {exc}")]
                continue
            except CaseValidationError as exc:
                errors += [*case_errors, RowError(
                    row=min(r.line for r in case_rows), column="",
                    message=f"case {case_id}: the existing file {target} is not valid; fix it "
                            f"first ({exc.errors[0].render()})")]
                continue
            except (CalfrehabError, OSError) as exc:
                # One case that cannot be written (a symlink, another patient's
                # file, a busy lock) is reported; the other cases still are.
                errors += [*case_errors, _refused(case_id, case_rows, target, exc)]
                continue
            have = {s.get("date") for s in cf.document.get("sessions", []) if isinstance(s, dict)}
            added = skipped = rows_in = 0
            for session, n in _sessions(case_rows, case_errors):
                if session["date"] in have:
                    skipped += 1
                    continue
                append_entry(cf.document, "sessions", session)
                added += 1
                rows_in += n
            try:
                if dry_run:
                    validate_document(cf.document, str(target))
                else:
                    cf.save()
            except CaseValidationError as exc:
                errors += case_errors + _validation_errors(exc, case_rows, found)
                continue
            except ValidationError as exc:  # pragma: no cover - models checked above
                errors += [*case_errors, RowError(row=case_rows[0].line, column="",
                                                  message=str(exc))]
                continue
            except (CalfrehabError, OSError) as exc:
                errors += [*case_errors, _refused(case_id, case_rows, target, exc)]
                continue
            errors += case_errors
            imported += rows_in
            cases.append(CaseImported(case_id=case_id, path=str(target), created=created,
                                      sessions_added=added, sessions_already_there=skipped,
                                      rows=len(case_rows)))
    return ImportResult(cases=cases, errors=sorted(errors, key=lambda e: e.row),
                        rows_read=count, rows_imported=imported)
