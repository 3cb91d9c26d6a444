"""Values a calf cannot produce: the plausible ranges of ``rules/records/``.

A value outside them is refused as it is entered unless the clinician
confirms it (``--confirm-unusual``), and ``validate`` warns about it in an
existing file (clinical-basis §8). The ranges, and the sources they rest
on, are data in ``rules/records/plausibility.yaml``; nothing here restates
a number.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from calfrehab.engine.casefile.model import Assessment, Case, PerformedExercise, Prescription
from calfrehab.engine.errors import RuleError, RuleProblem
from calfrehab.engine.errors import UnusualValues as UnusualValues
from calfrehab.engine.knowledge.loader import default_rules_dir
from calfrehab.engine.limits import max_input_bytes
from calfrehab.engine.safeio import read_input_bytes

RANGES_FILE = Path("records") / "plausibility.yaml"

Positive = Annotated[float, Field(gt=0)]


class _Range(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Annotated[str, Field(min_length=1)]


class HeelRaiseRange(_Range):
    max_reps: Positive


class SymmetryRange(_Range):
    max_percent: Positive


class SetRange(_Range):
    max_per_set: Positive


class LoadRange(_Range):
    max_body_mass_ratio: Positive
    max_kg_without_body_mass: Positive


class PlausibleRanges(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    heel_raise_test: HeelRaiseRange
    limb_symmetry: SymmetryRange
    set_reps: SetRange
    external_load: LoadRange


class Unusual(BaseModel):
    """One value outside its plausible range."""

    model_config = ConfigDict(frozen=True)

    path: str
    value: str
    expected: str
    source: str

    def render(self) -> str:
        return f"{self.path} = {self.value} is outside the plausible range ({self.expected})"


def ranges_path(rules_dir: Path | None = None) -> Path:
    """A rules directory's ranges; the shipped ones when it has none."""
    if rules_dir is not None and (Path(rules_dir) / RANGES_FILE).is_file():
        return Path(rules_dir) / RANGES_FILE
    return default_rules_dir() / RANGES_FILE


@functools.cache
def _load(path: Path) -> PlausibleRanges:
    data: Any = yaml.safe_load(read_input_bytes(path, cap_bytes=max_input_bytes()))
    try:
        return PlausibleRanges.model_validate(data)
    except ValidationError as exc:
        raise RuleError([RuleProblem(str(path), f"{'.'.join(map(str, e['loc']))}: {e['msg']}")
                         for e in exc.errors()]) from None


def plausible_ranges(rules_dir: Path | None = None) -> PlausibleRanges:
    """The plausible ranges (and their sources) entries are checked against
    (``rules/records/plausibility.yaml`` of ``rules_dir``, default the shipped rules)."""
    return _load(ranges_path(rules_dir))


def _n(value: float) -> str:
    return f"{value:g}"


def load_bound(ranges: PlausibleRanges, body_mass_kg: float | None) -> tuple[float, str]:
    """The largest plausible added load, and how it was reached."""
    r = ranges.external_load
    if body_mass_kg is None:
        return r.max_kg_without_body_mass, (f"0-{_n(r.max_kg_without_body_mass)} kg with no "
                                            "body mass recorded")
    top = r.max_body_mass_ratio * body_mass_kg
    return top, (f"0-{_n(top)} kg: {_n(r.max_body_mass_ratio)} x body mass "
                 f"{_n(body_mass_kg)} kg")


def check_performed(ranges: PlausibleRanges, where: str, done: PerformedExercise,
                    body_mass_kg: float | None) -> list[Unusual]:
    out: list[Unusual] = []
    top = ranges.set_reps.max_per_set
    for k, n in enumerate(done.sets_completed):
        if n > top:
            out.append(Unusual(path=f"{where}.sets_completed[{k}]", value=str(n),
                               expected=f"0-{_n(top)} per set",
                               source=ranges.set_reps.source))
    out += check_load(ranges, f"{where}.load_kg", done.load_kg, body_mass_kg)
    return out


def check_load(ranges: PlausibleRanges, where: str, load_kg: float,
               body_mass_kg: float | None) -> list[Unusual]:
    top, words = load_bound(ranges, body_mass_kg)
    if load_kg > top:
        return [Unusual(path=where, value=f"{_n(load_kg)} kg", expected=words,
                        source=ranges.external_load.source)]
    return []


def check_prescription(ranges: PlausibleRanges, where: str, rx: Prescription,
                       body_mass_kg: float | None) -> list[Unusual]:
    return check_load(ranges, f"{where}.load_kg", rx.load_kg, body_mass_kg)


def check_assessment(ranges: PlausibleRanges, where: str, a: Assessment) -> list[Unusual]:
    out: list[Unusual] = []
    hrt = a.heel_raise_test
    if hrt is None:
        return out
    top = ranges.heel_raise_test.max_reps
    for side, n in (("involved", hrt.involved), ("uninvolved", hrt.uninvolved)):
        if n is not None and n > top:
            out.append(Unusual(path=f"{where}.heel_raise_test.{side}", value=str(n),
                               expected=f"0-{_n(top)} heel raises",
                               source=ranges.heel_raise_test.source))
    if hrt.uninvolved:
        lsi = 100 * hrt.involved / hrt.uninvolved
        cap = ranges.limb_symmetry.max_percent
        if lsi > cap:
            out.append(Unusual(path=f"{where}.heel_raise_test",
                               value=f"{hrt.involved} against {hrt.uninvolved} "
                                     f"(symmetry {lsi:.0f}%)",
                               expected=f"a limb symmetry index up to {_n(cap)}%",
                               source=ranges.limb_symmetry.source))
    return out


def unusual_in_case(case: Case, ranges: PlausibleRanges) -> list[Unusual]:
    """Every value of a case file outside the plausible ranges (``validate``)."""
    mass = case.patient.body_mass_kg
    out: list[Unusual] = []
    for track in ("straight_knee", "bent_knee", "energy_storage"):
        rx = case.program.on(track)
        if rx is not None:
            out += check_prescription(ranges, f"program.{track}", rx, mass)
    for i, s in enumerate(case.sessions):
        for k, ex in enumerate(s.exercises):
            out += check_performed(ranges, f"sessions[{i}].exercises[{k}]", ex, mass)
    for i, a in enumerate(case.assessments):
        out += check_assessment(ranges, f"assessments[{i}]", a)
    return out
