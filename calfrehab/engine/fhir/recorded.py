"""What a clinician already decided for a patient (an override, an
acceptance, from the audit trail), in words for what leaves the engine to
a record system: a CDS Hooks card's detail and a FHIR export's
GuidanceResponse note. Both decide on the data as it is now, so both say
the rules' proposal is not that decision and name it (clinical-basis §8).
``state`` is :class:`calfrehab.engine.acceptance.CaseState` as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def acted_on_text(state: Mapping[str, Any], refer: bool, *, this: str = "This card",
                  data: str = "The chart") -> str:
    """``Recorded in calfrehab: ... Overridden by ... Accepted ...`` and
    whether it still stands (a referral ``data`` gives now: it does not);
    ``this`` names what carries the rules' proposal."""
    from calfrehab.engine.explanation.wording import decision_word, track_title

    lines = [f"Recorded in calfrehab: a decision for the review of {state['review_date']} "
             f"({state['decision'].get('outcome')})."]
    o = state.get("override")
    if o:
        what = f" on {track_title(o['track'])}" if o.get("track") else ""
        if o.get("decision"):
            what += f": {decision_word(o['decision']).lower()}"
        who = f" by {o['clinician']}" if o.get("clinician") else ""
        lines.append(f"Overridden{who} on {str(o['recorded_at'])[:10]}{what}. "
                     f"Reason: {o.get('reason') or 'none given'}.")
    a = state.get("accepted")
    if a:
        who = f" by {a['clinician']}" if a.get("clinician") else ""
        lines.append(f"Accepted into the programme{who} on {str(a['recorded_at'])[:10]}"
                     + (" (as overridden)." if a.get("override_entry_id") else "."))
    lines.append(f"{data} now gives a referral: that recorded decision no longer stands."
                 if refer else
                 f"{this} does not apply it: what the clinician decided stands until "
                 "changed in calfrehab.")
    return " ".join(lines)


__all__ = ["acted_on_text"]
