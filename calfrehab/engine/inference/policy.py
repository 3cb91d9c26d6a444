"""The safety policy: what the firings of one case decide.

Pure functions of the rules' votes, the current program and the ladder; no
durable-rules, no state. The driver collects the votes (decision rules,
referrals, prescribe modifiers) while the rules run and hands them here.

- Conflicts resolve by a fixed order: refer over regress over hold over
  progress (start ranks with progress). Any referral refers every track.
- The ladder moves a track at most one rung, or one load step on the loaded
  rung; a progression onto a rung the ladder keeps for other goals is an
  error in the rule base, not a decision.
- The prescribe phase adjusts the next prescription: cues add up, most
  important first; other fields take the highest-priority rule's value.

Unit tables: ``tests/policy/*.yaml`` (run by ``tests/policy/test_policy.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from calfrehab.engine.casefile.model import Prescription
from calfrehab.engine.errors import EngineError
from calfrehab.engine.knowledge import ladder as ladder_ops
from calfrehab.engine.knowledge.ladder import Ladder, NextPrescription
from calfrehab.engine.knowledge.views import PrescribeView
from calfrehab.engine.vocabulary import EXERCISES, TRACKS

SEVERITY: Mapping[str, int] = {"refer": 4, "regress": 3, "hold": 2, "progress": 1, "start": 1}

# Fields a prescribe rule replaces (cues are merged instead).
_REPLACED = ("range", "surface", "tempo", "frequency")


# Vote, Modifier and Verdict are NamedTuples, not frozen dataclasses: as
# immutable, compared and hashed by their fields alike, and never written
# out, but a dataclass's generated methods are compiled each time the class
# is defined, about 0.4 ms of CPU a class at every command's start (issue
# 28 item 4, cold start). TrackResult stays a dataclass: it is replaced
# field by field (dataclasses.replace) and its lists default to new ones.


class Vote(NamedTuple):
    """A decision rule that fired on a track: its decision, its instance key,
    and (for ``start``) the rung it starts on."""

    decision: str
    rule: str
    rung: int | None = None


class Modifier(NamedTuple):
    """A prescribe-phase rule that fired on a track."""

    rule: str
    priority: int
    # The rule's Prescribe as its view (knowledge/views.py): deciding
    # imports no rule language.
    prescribe: PrescribeView


@dataclass
class TrackResult:
    """One track's result: the decision, the current prescription and the
    next, and the rules behind it (those that decided, those that lost the
    conflict, the prescribe-phase rules applied)."""

    track: str
    decision: str
    current: Prescription | None
    next: NextPrescription | None
    deciding: list[str] = field(default_factory=list)  # instance keys that gave the decision
    overruled: list[str] = field(default_factory=list)  # decision rules that lost the conflict
    modifiers: list[str] = field(default_factory=list)  # prescribe-phase rules applied


class Verdict(NamedTuple):
    """One track's conflict, resolved: the decision, the rules that gave it
    (in firing order), the rules that lost, and the rungs start votes named."""

    decision: str
    deciding: list[str]
    overruled: list[str]
    kinds: frozenset[str]
    rungs: list[int]


def resolve_conflict(votes: Sequence[Vote]) -> Verdict:
    """The most severe decision wins; ties within a severity (progress and
    start) take the alphabetically first kind, so the result never depends
    on firing order."""
    if not votes:
        raise ValueError("no votes to resolve")
    if len(votes) == 1:
        # One vote (most tracks of most cases) decides alone.
        v = votes[0]
        return Verdict(v.decision, [v.rule], [], frozenset((v.decision,)),
                       [] if v.rung is None else [v.rung])
    top = max([SEVERITY[v.decision] for v in votes])
    deciding: list[str] = []
    overruled: list[str] = []
    kinds: set[str] = set()
    rungs: set[int] = set()
    for v in votes:
        if SEVERITY[v.decision] == top:
            deciding.append(v.rule)
            kinds.add(v.decision)
            if v.rung is not None:
                rungs.add(v.rung)
        else:
            overruled.append(v.rule)
    return Verdict(min(kinds), deciding, overruled, frozenset(kinds), sorted(rungs))


def move(
    ladder: Ladder, track: str, current: Prescription | None, verdict: Verdict,
    condition_kind: str | ladder_ops.MoveContext, goal: str,
) -> TrackResult:
    """Apply a resolved decision to the track's current prescription: one
    rung, or one load step, at most. ``condition_kind`` may carry the whole
    move context (the week on the rep-max scheme, the body mass)."""
    decision, deciding, losers = verdict.decision, verdict.deciding, verdict.overruled
    try:
        if current is None:
            if decision in ("start", "progress"):
                if len(verdict.rungs) != 1:
                    raise EngineError(
                        f"start rules for {track} disagree on the rung: {verdict.rungs}")
                nxt = ladder_ops.start(ladder, track, verdict.rungs[0])
                return TrackResult(track, "start", None, nxt, deciding, losers)
            return TrackResult(track, "not_started", None, None, deciding, losers)
        if "start" in verdict.kinds:
            raise EngineError(f"a start rule fired on the started {track} track: "
                              f"{', '.join(deciding)}")
        if decision == "progress":
            nxt = ladder_ops.progress(ladder, track, current, condition_kind)
            allowed = ladder.tracks[track].at(EXERCISES[nxt.exercise][1])  # type: ignore[index]
            if allowed and allowed.goals and goal not in allowed.goals:
                raise EngineError(
                    f"{', '.join(deciding)} progressed {track} to {nxt.exercise}, "
                    f"which the ladder keeps for goals {allowed.goals}")
            return TrackResult(track, decision, current, nxt, deciding, losers)
        if decision == "regress":
            # A regress vote that names a rung steps back a whole rung
            # towards it; with several, the lowest (the most cautious).
            toward = min(verdict.rungs) if verdict.rungs else None
            back = ladder_ops.regress(ladder, track, current, condition_kind, toward)
            return TrackResult(track, "regress", current, back, deciding, losers)
        nxt = ladder_ops.hold(ladder, track, current)
        return TrackResult(track, decision, current, nxt, deciding, losers)
    except KeyError as exc:
        raise EngineError(f"the ladder cannot apply {decision} to {track}: {exc}") from None


def resolve(
    votes: Mapping[str, Sequence[Vote]], refers: Sequence[str], *,
    program: Mapping[str, Prescription | None], condition_kind: str, goal: str,
    ladder: Ladder, scheme_weeks: Mapping[str, int | None] | None = None,
    body_mass_kg: float | None = None,
) -> tuple[str, dict[str, TrackResult]]:
    """The case's outcome and each track's result, from every vote cast.
    ``scheme_weeks`` (per track) and ``body_mass_kg`` size a move on the
    loaded rung: the rep-max block by the calendar, the load step as a share
    of the load through the calf."""
    if refers:
        return "refer", {
            t: TrackResult(t, "refer", program.get(t), None, list(refers)) for t in TRACKS
        }
    tracks: dict[str, TrackResult] = {}
    for track in TRACKS:
        current = program.get(track)
        options = votes.get(track, ())
        if not options:
            if current is not None:
                raise EngineError(f"no rule decided the {track} track (the rule base has a gap)")
            tracks[track] = TrackResult(track, "not_started", None, None)
            continue
        context = ladder_ops.MoveContext(
            condition_kind, (scheme_weeks or {}).get(track) or 1, body_mass_kg)
        tracks[track] = move(ladder, track, current, resolve_conflict(options), context, goal)
    return "continue", tracks


def decision_facts(tracks: Mapping[str, TrackResult]) -> dict[str, Any]:
    """The facts the prescription phase reads: each track's decision and the
    rung and exercise it leads to (one definition, for the engine and the
    explainer)."""
    out: dict[str, Any] = {}
    for track, result in tracks.items():
        out[f"{track}.decision"] = result.decision
        if result.next is not None:
            out[f"{track}.next_exercise"] = result.next.exercise
            out[f"{track}.next_rung"] = EXERCISES[result.next.exercise][1]
    return out


def prescribe(
    nxt: NextPrescription, modifiers: Sequence[Modifier]
) -> tuple[NextPrescription, list[str]]:
    """The next prescription adjusted by the prescribe rules that fired, and
    those rules in the order applied (ascending priority, then key)."""
    ordered = sorted(modifiers, key=lambda m: (m.priority, m.rule))
    update: dict[str, Any] = {}
    # The highest priority rule's value wins: it is applied last.
    for m in ordered:
        for name in _REPLACED:
            value = getattr(m.prescribe, name)
            if value is not None:
                update[name] = value
    # Cues add up; prepending in ascending priority leaves the highest first.
    cues = list(nxt.cues)
    for m in ordered:
        cues = [c for c in m.prescribe.cues if c not in cues] + cues
    update["cues"] = cues
    return ladder_ops.with_changes(nxt, update), [m.rule for m in ordered]


def apply_prescriptions(
    tracks: Mapping[str, TrackResult], modifiers: Mapping[str, Sequence[Modifier]]
) -> dict[str, TrackResult]:
    """Every track's result after the prescribe phase (tracks with no next
    prescription are left as they are)."""
    out = dict(tracks)
    for track, mods in modifiers.items():
        result = out[track]
        if result.next is None:
            continue
        nxt, applied = prescribe(result.next, mods)
        # TrackResult's fields spelled out: dataclasses.replace reads them
        # all back by name, at several times the cost, once a case.
        out[track] = TrackResult(result.track, result.decision, result.current, nxt,
                                 result.deciding, result.overruled, applied)
    return out
