"""What the clinician decided, per track: the programme the patient takes
home (clinical-basis §8).

The handout and the report's "where the case stands" list this, not the
rules' fresh proposal, whenever the audit trail says the clinician acted:

- the latest recorded decision was accepted: the case's current programme
  (``accept`` wrote it into the case file);
- it was overridden and not yet accepted: what accepting would write, that
  is the override's own prescription per track, the decision's next step
  for the tracks the override leaves alone (computed by the loop's own
  :func:`~calfrehab.engine.entry.accept.program_after`, so the handout and
  ``accept`` cannot disagree);
- otherwise (no trail, nothing recorded, or an override with nothing to
  apply): None, and the caller shows the decision's next step.

Where the case stands comes from :func:`calfrehab.engine.acceptance.case_state`
only; this module never reads the trail itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from calfrehab.engine.casefile.model import Case, Prescription
from calfrehab.engine.knowledge.ladder import Ladder, NextPrescription, hold
from calfrehab.engine.vocabulary import TRACKS

if TYPE_CHECKING:
    from calfrehab.engine.acceptance import CaseState

Source = Literal["accepted", "override"]


class DecidedProgramme(BaseModel):
    """The programme the clinician decided, each track's prescription with
    its ladder wording (None: the track is empty), the decision word that
    applies to each track, and where it came from."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    source: Source
    tracks: dict[str, NextPrescription | None]
    decisions: dict[str, str]
    # The programme as the case file holds (or, accepted, would hold) it:
    # what the report's projection starts from.
    program: dict[str, Any]
    # The recorded decision's outcome: a referral the clinician overrode
    # with a programme is theirs to make; a referral the case file only
    # gives now (a red flag entered since) is not overruled by an old one.
    outcome: str = ""


def _dump(case: Case) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for track in TRACKS:
        rx = getattr(case.program, track, None)
        out[track] = None if rx is None else rx.model_dump(mode="json")
    return out


def _with_words(ladder: Ladder, program: Mapping[str, Any]) -> dict[str, NextPrescription | None]:
    """Each track's prescription with its ladder wording (name, unit,
    tempo, cues): what the handout prints for it."""
    out: dict[str, NextPrescription | None] = {}
    for track in TRACKS:
        rx = program.get(track)
        out[track] = None if rx is None else hold(ladder, track, Prescription.model_validate(rx))
    return out


def _decisions(state: CaseState) -> dict[str, str]:
    """The decision word per track: the override's for its track, else the
    recorded decision's."""
    tracks = state.decision.get("tracks") or {}
    words = {t: str(td.get("decision")) for t, td in tracks.items() if isinstance(td, Mapping)}
    o = state.override
    if o is not None and o.track and o.decision:
        words[o.track] = o.decision
    return words


def decided_programme(state: CaseState | None, case: Case,
                      ladder: Ladder) -> DecidedProgramme | None:
    """What the clinician decided for ``case`` given where it stands in the
    trail, or None when the rules' next step stands (see the module)."""
    if state is None:
        return None
    if state.accepted is not None:
        return DecidedProgramme(source="accepted", tracks=_with_words(ladder, _dump(case)),
                                decisions=_decisions(state), program=_dump(case),
                                outcome=str(state.decision.get("outcome") or ""))
    o = state.override
    if o is None:
        return None
    # Imported here: the trail's side loads only when a trail was given.
    from calfrehab.engine.entry.accept import AcceptError, program_after

    override = {"track": o.track, "decision": o.decision, "reason": o.reason,
                "prescriptions": o.prescriptions}
    try:
        program, _ = program_after(state.decision, override, _dump(case))
    except AcceptError:
        # An override with nothing to apply (a whole-decision disagreement
        # with no prescription): the handout keeps the decision's next step
        # and says the clinician adjusted it.
        return None
    return DecidedProgramme(source="override", tracks=_with_words(ladder, program),
                            decisions=_decisions(state), program=program,
                            outcome=str(state.decision.get("outcome") or ""))
