"""Words a clinician reads: doses with units, plain names for case-file
fields, and a reason that holds for every track said once.

The decision document keeps the rule base's own reason text (it is what
the trail records and hashes); these helpers shape that text for the
screen and the report only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from calfrehab.engine.knowledge.ladder import Ladder

TIMES = "×"
UNIT_SUFFIX = {"reps": "", "seconds": " s", "minutes": " min", "contacts": " contacts"}
UNIT_HOLD_WORDS = {"seconds": "s holds", "minutes": "min", "contacts": "contacts"}

# Case-file fields as a clinician says them (the contract's names are for files).
FIELD_WORDS: dict[str, str] = {
    "patient.body_mass_kg": "body mass (kg)",
    "body_mass_kg": "body mass (kg)",
    "patient.age_years": "age",
    "pain_next_morning": "next-morning pain",
    "morning_stiffness_min": "morning stiffness (min)",
    "pain_during": "pain during",
    "sets_completed": "sets done",
    "load_kg": "load (kg)",
    "heel_raise_test": "heel-raise test",
    "pain_at_rest": "pain at rest",
    "visa_a": "VISA-A",
    "hop_pain": "hop pain",
    "review_date": "review date",
    "injury_date": "injury date",
    "surgery_date": "surgery date",
    "onset_date": "onset date",
    "red_flags": "red flags",
    "irritability": "irritability",
}
_FIELD = re.compile(r"\b(" + "|".join(sorted(map(re.escape, FIELD_WORDS), key=len,
                                              reverse=True)) + r")\b")


def unit_of(ladder: Ladder, exercise: str) -> str:
    """The unit of an exercise's reps (reps, seconds, minutes, contacts)."""
    for track in ladder.tracks.values():
        for dose in track.rungs:
            if dose.exercise == exercise:
                return dose.unit
    return "reps"


def dose_text(sets: int, reps: int, unit: str, load_kg: float | None = None) -> str:
    """``3 × 15``, ``5 × 45 s``, ``1 × 20 min``; ``, +10 kg`` when loaded."""
    load = f", +{load_kg:g} kg" if load_kg else ""
    return f"{sets} {TIMES} {reps}{UNIT_SUFFIX.get(unit, '')}{load}"


def plain(text: str, ladder: Ladder | None = None, unit: str | None = None) -> str:
    """Reason text as a clinician reads it: one multiplication sign, a unit
    on a dose of holds or running, and no raw field names. A dose takes the
    unit of the exercise it names, else ``unit`` (the reason's track's)."""
    names: dict[str, str] = {}
    if ladder is not None:
        names = {info.name.lower(): unit_of(ladder, ex) for ex, info in ladder.exercises.items()}

    def dose(m: re.Match[str]) -> str:
        # The unit is the exercise's, when the dose names it ("5 x 45 of ...").
        after = m.string[m.end():].lower()
        named = next((u for name, u in names.items() if after.startswith(" of " + name)), None)
        suffix = UNIT_SUFFIX.get(named or unit or "reps", "")
        return f"{m.group(1)} {TIMES} {m.group(2)}{suffix}"

    text = re.sub(r"\b(\d+) ?[x×] ?(\d+)\b(?! ?(s|min)\b)", dose, text)
    return _FIELD.sub(lambda m: FIELD_WORDS[m.group(1)], text)


class ReasonLike(Protocol):
    @property
    def rule(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def sources(self) -> list[str]: ...
    @property
    def track(self) -> str | None: ...


class MergedReason(BaseModel):
    """One line of 'why': the text, its sources, and the tracks it is for
    (empty when it is about the whole case)."""

    model_config = ConfigDict(frozen=True)

    text: str
    sources: list[str]
    tracks: list[str]


def merge_reasons(reasons: Sequence[ReasonLike], exercise_names: Mapping[str, str],
                  tracks_in_play: Iterable[str]) -> list[MergedReason]:
    """Reasons in order, with a reason that one rule gives alike for several
    tracks said once: the exercise it names becomes "every exercise" when
    it covers every track in play, else the names joined.

    ``exercise_names`` maps each track to the plain name its reasons use.
    """
    in_play = list(tracks_in_play)
    groups: dict[str, list[ReasonLike]] = {}
    for r in reasons:
        groups.setdefault(r.rule.split("@")[0], []).append(r)
    out: list[MergedReason] = []
    done: set[str] = set()
    for r in reasons:
        base = r.rule.split("@")[0]
        if base in done:
            continue
        group = groups[base]
        shapes = {_shape(g.text, exercise_names.get(g.track or "", "")) for g in group}
        tracks = [g.track for g in group if g.track]
        if len(tracks) > 1 and len(shapes) == 1:
            done.add(base)
            every = set(in_play) <= set(tracks)
            names = " and ".join(exercise_names.get(t, t) for t in tracks)
            text = next(iter(shapes)).replace("\x00", "every exercise" if every else names)
            sources = _union(g.sources for g in group)
            out.append(MergedReason(text=text[:1].upper() + text[1:], sources=sources,
                                    tracks=tracks))
        else:
            out.append(MergedReason(text=r.text, sources=list(r.sources),
                                    tracks=[r.track] if r.track else []))
    return out


def _shape(text: str, name: str) -> str:
    if name:
        text = re.sub(re.escape(name), "\x00", text, flags=re.IGNORECASE)
    return text


def _union(lists: Iterable[list[str]]) -> list[str]:
    out: list[str] = []
    for items in lists:
        out += [s for s in items if s not in out]
    return out


def reason_unit(reason: MergedReason, decision: Any, ladder: Ladder) -> str | None:
    """The unit a one-track reason's bare dose ("5 x 45 completed") is in."""
    if len(reason.tracks) != 1:
        return None
    td = decision.tracks.get(reason.tracks[0])
    if td is None or td.current is None:
        return None
    return unit_of(ladder, td.current.exercise)


def reason_names(decision: Any, ladder: Ladder) -> dict[str, str]:
    """Each track's exercise as its reasons name it (the ladder's plain
    name, lower case), from the decision's current prescriptions."""
    out: dict[str, str] = {}
    for track, td in decision.tracks.items():
        if td.current is not None and td.current.exercise in ladder.exercises:
            out[track] = ladder.exercises[td.current.exercise].name.lower()
    return out
