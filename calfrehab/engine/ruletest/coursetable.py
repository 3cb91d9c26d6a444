"""Course tables: the rules tested over time, as data beside the case tables.

A rules directory keeps them in ``courses/*.yaml``::

    description: Rathleff's plantar fasciopathy calendar (clinical-basis §7)
    starts:
      plantar-loaded: {...a complete, valid case document: the intake...}
    courses:
      - name: plantar fasciopathy, ideal - the rep-max scheme follows the calendar
        why: §7, Rathleff 2015 - 3 x 12RM weeks 1-2, 4 x 10RM weeks 3-4, 5 x 8RM from 5
        start: plantar-loaded
        set: {patient.body_mass_kg: 80}      # optional changes, as in case tables
        script: ideal                        # or flare:K, missed:K, painful:K
        review_day: first                    # or last, or a weekday (simulate --review-day)
        weeks: 12
        clock: course                        # or injury: weeks from injury (surgery)
        milestones:
          straight_knee.3x12: [1, 2]         # first done in weeks 1-2
          straight_knee.5x8: [5, null]       # from week 5, reached within the course
        not_reached: [return_to_running]
        slower_than_ideal: true

Each row replays a course (``calfrehab simulate``) and checks the week each
milestone is first done against its window; a milestone key is an exercise
id, ``TRACK.rungN``, or on the loaded rung ``TRACK.SETSxREPS``. A course
that is referred fails unless ``referred: true``. ``slower_than_ideal``
replays the same start with the ideal script as well and checks that this
course is never ahead of it (each week, each track on no higher rung, and
on the same rung no more load; no milestone earlier) and is behind it at
least once: an unhappy week slows the course, never speeds it up.

Problems are failed rows named by file and row, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from calfrehab.engine.casefile.docpath import PathError, remove_path, set_path
from calfrehab.engine.course.replay import Course
from calfrehab.engine.course.run import MAX_COURSE_WEEKS, simulate_document
from calfrehab.engine.course.script import parse_script
from calfrehab.engine.errors import CalfrehabError, CaseValidationError
from calfrehab.engine.inference.driver import Reasoner
from calfrehab.engine.vocabulary import EXERCISES, TRACKS

COURSES_DIR = "courses"
COURSE_GLOB = "*.yaml"
TABLE_LEVEL = "(table)"
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Window = tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)] | None]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CourseRow(_Model):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    why: str | None = None
    start: str
    set: dict[str, Any] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)
    script: str = "ideal"
    # When the weekly review falls: first (day of the next training week),
    # last (day of the week), or a weekday name (calfrehab simulate --review-day).
    review_day: str = "first"
    weeks: Annotated[int, Field(ge=1, le=MAX_COURSE_WEEKS)]
    clock: Literal["course", "injury"] = "course"
    milestones: dict[str, Window] = Field(default_factory=dict)
    not_reached: list[str] = Field(default_factory=list)
    referred: bool = False
    slower_than_ideal: bool = False


class CourseTable(_Model):
    description: str | None = None
    starts: dict[str, dict[str, Any]] = Field(min_length=1)
    courses: list[Any] = Field(min_length=1)


class CourseResult(_Model):
    file: str
    name: str
    passed: bool
    problems: list[str]


def course_paths(rules_dir: Path) -> list[Path]:
    return sorted((rules_dir / COURSES_DIR).glob(COURSE_GLOB))


def _start_doc(row: CourseRow, starts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    import copy

    if row.start not in starts:
        raise PathError(f"start `{row.start}` is not in this table's starts "
                        f"({', '.join(sorted(starts))})")
    doc = copy.deepcopy(starts[row.start])
    for path in row.remove:
        remove_path(doc, path)
    for path, value in row.set.items():
        set_path(doc, path, value)
    return doc


def _milestone_key_ok(key: str) -> bool:
    if key in EXERCISES:
        return True
    track, _, rest = key.partition(".")
    if track not in TRACKS:
        return False
    if rest.startswith("rung") and rest[4:].isdigit():
        return True
    sets, _, reps = rest.partition("x")
    return sets.isdigit() and reps.isdigit()


def _week(course: Course, key: str, clock: str) -> int | None:
    m = course.milestone(key)
    if m is None:
        return None
    return m.injury_week if clock == "injury" else m.week


def _position(course: Course, week: int, track: str) -> tuple[int, float] | None:
    if week >= len(course.rows):
        return None
    t = course.rows[week].tracks[track]
    if t.exercise is None:
        return (-1, 0.0)
    return (EXERCISES[t.exercise][1], t.load_kg or 0.0)


def _compare_with_ideal(course: Course, ideal: Course) -> list[str]:
    problems: list[str] = []
    behind = False
    for week in range(1, min(len(course.rows), len(ideal.rows))):
        for track in TRACKS:
            mine, best = _position(course, week, track), _position(ideal, week, track)
            if mine is None or best is None:
                continue
            if mine > best:
                problems.append(f"week {week}, {track}: ahead of the ideal course "
                                f"(rung {mine[0]}, {mine[1]:g} kg against rung {best[0]}, "
                                f"{best[1]:g} kg)")
            elif mine < best:
                behind = True
    # A milestone the ideal course reaches must not come earlier (one it
    # never reaches, a step back to holds, say, is judged by the weekly
    # positions above).
    for m in course.milestones:
        other = ideal.milestone(m.key)
        if other is not None and m.week < other.week:
            problems.append(f"{m.key}: week {m.week}, earlier than the ideal course "
                            f"(week {other.week})")
    if not behind and not problems:
        problems.append("never behind the ideal course: the script did not slow it")
    return problems


def run_row(file: str, row: CourseRow, starts: dict[str, dict[str, Any]],
            reasoner: Reasoner) -> CourseResult:
    problems = [f"unknown milestone key `{k}` (an exercise id, TRACK.rungN or TRACK.SETSxREPS)"
                for k in [*row.milestones, *row.not_reached] if not _milestone_key_ok(k)]
    try:
        doc = _start_doc(row, starts)
        course = simulate_document(doc, reasoner, weeks=row.weeks, script=row.script,
                                   source=f"{file}::{row.name}", review_day=row.review_day)
        ideal = (simulate_document(doc, reasoner, weeks=row.weeks, script="ideal",
                                   source=f"{file}::{row.name}", review_day=row.review_day)
                 if row.slower_than_ideal else None)
    except PathError as exc:
        return CourseResult(file=file, name=row.name, passed=False,
                            problems=[*problems, f"bad start: {exc}"])
    except CaseValidationError as exc:
        return CourseResult(file=file, name=row.name, passed=False, problems=[
            *problems, f"invalid start case ({len(exc.errors)} error(s))",
            *(f"  {e.render()}" for e in exc.errors)])
    except CalfrehabError as exc:
        return CourseResult(file=file, name=row.name, passed=False,
                            problems=[*problems, f"error: {exc}"])
    except Exception as exc:  # a test runner reports, it does not crash
        return CourseResult(file=file, name=row.name, passed=False,
                            problems=[*problems, f"internal error: {type(exc).__name__}: {exc}"])
    if course.referred_week is not None and not row.referred:
        problems.append(f"referred at the review ending week {course.referred_week}")
    if row.referred and course.referred_week is None:
        problems.append("not referred, expected a referral")
    for key, (low, high) in row.milestones.items():
        week = _week(course, key, row.clock)
        span = f"weeks {low}-{high}" if high is not None else f"from week {low}"
        if week is None:
            problems.append(f"{key}: not reached in {row.weeks} weeks (expected {span})")
        elif week < low or (high is not None and week > high):
            problems.append(f"{key}: first done in {row.clock} week {week} (expected {span})")
    for key in row.not_reached:
        week = _week(course, key, row.clock)
        if week is not None:
            problems.append(f"{key}: reached in {row.clock} week {week}, expected not reached")
    if ideal is not None:
        if row.script == "ideal":
            problems.append("slower_than_ideal needs a script other than ideal")
        else:
            problems += _compare_with_ideal(course, ideal)
    return CourseResult(file=file, name=row.name, passed=not problems, problems=problems)


def run_course_table(path: Path, reasoner: Reasoner) -> list[CourseResult]:
    name = path.name
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
        table = CourseTable.model_validate(data)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return [CourseResult(file=name, name=TABLE_LEVEL, passed=False,
                             problems=[f"cannot read: {exc}"])]
    except ValidationError as exc:
        return [CourseResult(file=name, name=TABLE_LEVEL, passed=False, problems=[
            f"{'.'.join(str(p) for p in e['loc']) or '(table)'}: {e['msg']}"
            for e in exc.errors(include_url=False)])]
    out: list[CourseResult] = []
    seen: set[str] = set()
    for i, raw in enumerate(table.courses):
        label = raw.get("name") if isinstance(raw, dict) and raw.get("name") else f"row {i + 1}"
        try:
            row = CourseRow.model_validate(raw)
            parse_script(row.script)
        except ValidationError as exc:
            out.append(CourseResult(file=name, name=str(label), passed=False, problems=[
                f"bad row: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors(include_url=False)]))
            continue
        except CalfrehabError as exc:
            out.append(CourseResult(file=name, name=str(label), passed=False,
                                    problems=[f"bad row: {exc}"]))
            continue
        if row.name in seen:
            out.append(CourseResult(file=name, name=row.name, passed=False,
                                    problems=["row name used twice in this table"]))
            continue
        seen.add(row.name)
        out.append(run_row(name, row, table.starts, reasoner))
    return out
