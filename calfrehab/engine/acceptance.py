"""A recorded decision accepted into the patient's programme, and a case's
current state as the audit trail tells it.

:func:`accept` finds the decision (the case's latest in the trail, or one
named), its latest override, writes the programme they give into the case
file (:mod:`calfrehab.engine.entry.accept`: under the file's lock, refused
for another version of the file unless forced) and records an ``accepted``
entry linking the decision, the override and the sha256 of the programme
written. The file is written first and the entry appended while its lock is
still held; if the entry cannot be recorded the file's old bytes go back, so
a programme never changes without its record.

:func:`case_state` is the one call the report, the handout and the app use
to learn where a case stands: its latest decision, that decision's latest
override (reason and prescription) and whether, and what, was accepted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from calfrehab.engine.audit.views import accept_decision, find_decision, open_trail
from calfrehab.engine.casefile.since import entered_since
from calfrehab.engine.casefile.validation import read_case_file
from calfrehab.engine.clock import utc_stamp
from calfrehab.engine.entry.accept import AcceptError, Applied, apply_decision
from calfrehab.engine.trail.audit import AuditEntry, AuditTrail

__all__ = ["Accepted", "CaseState", "accept", "case_state", "in_force", "latest_decision"]

_T = TypeVar("_T")


class Accepted(BaseModel):
    """What ``accept`` did: the programme written and the trail entry."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    applied: Applied
    entry_id: str
    seq: int
    override_reason: str | None = None


class StateOverride(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    entry_id: str
    recorded_at: str
    clinician: str | None
    reason: str | None
    track: str | None
    decision: str | None
    prescriptions: dict[str, Any] | None


class StateAccepted(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    entry_id: str
    recorded_at: str
    clinician: str | None
    override_entry_id: str | None
    program: dict[str, Any]
    program_sha256: str


class CaseState(BaseModel):
    """Where a case stands in the trail: its latest decision (the whole
    decision document), the latest override of that decision, and the
    latest acceptance of it (None: not accepted yet)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    case_id: str
    decision_id: str
    recorded_at: str
    review_date: str
    clinician: str | None
    decision: dict[str, Any]
    override: StateOverride | None
    accepted: StateAccepted | None
    # The case document as it was when the decision was recorded (what the
    # report shows the decision on); None for an entry that holds none.
    case: dict[str, Any] | None = None

    @property
    def overridden(self) -> bool:
        return self.override is not None


def latest_decision(trail: AuditTrail, case_id: str) -> AuditEntry | None:
    """The case's most recently recorded decision, or None."""
    decisions = trail.entries(case_id=case_id, kind="decision")
    return decisions[-1] if decisions else None


def _state(trail: AuditTrail, entry: AuditEntry) -> CaseState:
    overrides = trail.overrides_for(entry.decision_id)
    accepted = trail.accepted_for(entry.decision_id)
    override = None
    if overrides:
        o = overrides[-1]
        override = StateOverride(
            entry_id=o.entry_id, recorded_at=utc_stamp(o.recorded_at), clinician=o.clinician,
            reason=o.decision.get("reason"), track=o.decision.get("track"),
            decision=o.decision.get("decision"), prescriptions=o.decision.get("prescriptions"))
    done = None
    if accepted:
        a = accepted[-1]
        done = StateAccepted(
            entry_id=a.entry_id, recorded_at=utc_stamp(a.recorded_at), clinician=a.clinician,
            override_entry_id=a.decision.get("override_entry_id"),
            program=a.decision.get("program") or {},
            program_sha256=str(a.decision.get("program_sha256")))
    return CaseState(case_id=entry.case_id, decision_id=entry.decision_id,
                     recorded_at=utc_stamp(entry.recorded_at),
                     review_date=entry.review_date.isoformat(), clinician=entry.clinician,
                     decision=entry.decision, override=override, accepted=done,
                     case=entry.case)


def in_force(acted: _T | None, acted_case: Mapping[str, Any] | None, latest: _T | None,
             current: Mapping[str, Any] | None) -> _T | None:
    """The decision a case stands on, of the newest one a clinician acted on
    (overrode or accepted; ``acted_case`` is the case document it was made
    on) and the latest recorded: the one acted on while no session or
    assessment was entered since it in ``current`` (the case file's document,
    or its sessions and assessments; None: no file to compare, so it
    stands), else the latest. A proposal recorded later on the same data
    (the record system's chart opened again, `next` run again after
    `accept`) does not displace what the clinician decided.

    The one rule for :func:`case_state` and for the app, which finds the two
    candidates its own way: the patient list in one pass over the trail for
    every patient, the patient's page among the decisions it lists."""
    if acted is not None and (
        current is None or not entered_since(acted_case or {}, current).entered
    ):
        return acted
    return latest


def case_state(audit: str | os.PathLike[str] | None, case_id: str, *,
               acted_on: bool = False,
               current: Mapping[str, Any] | None = None,
               or_latest: bool = False) -> CaseState | None:
    """Where ``case_id`` stands in the trail at ``audit`` (read only), or
    None when the trail has no decision for it. ``acted_on``: the newest
    decision a clinician overrode or accepted instead (the CDS service
    records a decision at every chart opening, so the one acted on is not
    always the latest), and only while it is still in force for the case
    document ``current`` (:func:`in_force`): None once a session or an
    assessment was entered since (as the app has it, the next review is then
    proposed on them); with ``or_latest``, the latest decision then, from the
    same read of the trail (the report's and the handout's decision in force)."""
    with open_trail(audit) as trail:
        if acted_on:
            # From the overrides and acceptances, which are few, not from
            # every decision: the service records one at each chart opening.
            acted = {e.decision_id for kind in ("override", "accepted")
                     for e in trail.entries(case_id=case_id, kind=kind)}
            newest = max((trail.get(d) for d in acted), key=lambda e: e.seq, default=None)
            entry = in_force(newest, newest.case if newest is not None else None, None,
                             current)
            if entry is not None or not or_latest:
                return None if entry is None else _state(trail, entry)
        found = latest_decision(trail, case_id)
        return None if found is None else _state(trail, found)


def accept(case_path: Path, audit: str | os.PathLike[str] | None, *,
           decision: str | None = None, clinician: str | None = None,
           force: bool = False) -> Accepted:
    """Apply a recorded decision (``decision``: an id or unique prefix;
    default the case's latest in the trail) to the case file's programme,
    through its latest override if it has one, and record the acceptance."""
    _, document = read_case_file(case_path)
    case_id = str(document.get("case_id"))
    with open_trail(audit) as trail:
        trail_path = trail.path
        if decision is not None:
            entry = find_decision(trail, decision)
        else:
            found = latest_decision(trail, case_id)
            if found is None:
                raise AcceptError(f"the audit trail {trail.path} has no decision for case "
                                  f"{case_id}; decide it first (calfrehab next {case_path})")
            entry = found
        overrides = trail.overrides_for(entry.decision_id)
    override = overrides[-1] if overrides else None
    recorded: dict[str, Any] = {}

    def record(applied: Applied) -> None:
        recorded.update(accept_decision(
            trail_path, entry.decision_id, applied.program, clinician,
            override_entry_id=override.entry_id if override is not None else None))

    applied = apply_decision(
        case_path, entry.decision, override.decision if override is not None else None,
        override_entry_id=override.entry_id if override is not None else None,
        force=force, record=record)
    return Accepted(applied=applied, entry_id=str(recorded["entry_id"]),
                    seq=int(recorded["seq"]),
                    override_reason=(override.decision.get("reason")
                                     if override is not None else None))
