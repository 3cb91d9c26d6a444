"""The report's "Decision at this review" when the audit trail holds one:
the decision as it was recorded, on the case as it was at that review,
never the current case decided again (clinical-basis §8).

Deciding the case file as it is now is wrong once the clinician has acted
on it: ``accept`` writes the decided programme into the file, so a fresh
evaluation sees a new dose with no session done at it ("completed 0 of 2")
and proposes a hold nobody decided; sessions logged since the review would
change it again. The trail keeps both the decision document and the case
document it was made on, so the report shows the former and explains it
with the latter: what each held track still lacked is found by deciding
the recorded case again, and only when the rules in force are the ones
that recorded it (other rules could lack other things).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from calfrehab.engine.casefile.model import Case
from calfrehab.engine.explanation.document import DecisionDocument

if TYPE_CHECKING:
    from calfrehab.engine.acceptance import CaseState
    from calfrehab.engine.inference.driver import Reasoner


class RecordedReview(BaseModel):
    """A recorded decision with what explains it: the decision document,
    the case it was made on, each held track's missing criteria (empty when
    the rules in force are not the ones that decided), the rules that only
    restate others, and what was logged after it."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    document: DecisionDocument
    case: Case
    why_not: list[dict[str, Any]]
    restating: frozenset[str]
    same_rules: bool
    sessions_since: list[str]  # dates of sessions logged after the decision
    assessments_since: list[str]
    fields_since: list[str]  # other top-level fields of the case changed since


def _dated(items: list[Any]) -> list[tuple[str, str]]:
    # Each entry as (date, its canonical JSON), to tell new entries from
    # the recorded ones whatever order the file lists them in.
    import json

    return [(i.date.isoformat(), json.dumps(i.model_dump(mode="json"), sort_keys=True))
            for i in items]


def _since(now: list[Any], then: list[Any]) -> list[str]:
    left = list(_dated(then))
    out = []
    for d, key in _dated(now):
        if (d, key) in left:
            left.remove((d, key))
        else:
            out.append(d)
    return sorted(out)


# What a case's review moves through without a new decision: the programme
# (accept writes it), the sessions and assessments (counted apart), and the
# review date (logging moves it).
_EXPECTED = frozenset({"program", "sessions", "assessments", "review_date"})


def recorded_review(state: CaseState | None, current: Case,
                    reasoner: Reasoner,
                    current_doc: dict[str, Any] | None = None) -> RecordedReview | None:
    """The trail's latest decision for the case, explained on its own case
    document; None when there is none to show (no trail, no decision, or an
    entry without its case)."""
    if state is None or state.case is None:
        return None
    from calfrehab.engine.casefile.validation import validate_document
    from calfrehab.engine.explanation.explain import Explainer
    from calfrehab.engine.explanation.wording import restating_rules
    from calfrehab.engine.pipeline import decide

    document = DecisionDocument.model_validate(state.decision)
    # The recorded case passed validation when it was decided; validated
    # again as `audit replay` does, to have the model.
    case = validate_document(state.case, f"case {state.case_id} as recorded in the trail")
    replay = decide(case, state.case, reasoner)
    same = replay.decision.rulebase.sha256 == document.rulebase.sha256
    why_not = Explainer(replay.evaluation).why_not() if same else []
    return RecordedReview(
        document=document, case=case, why_not=why_not,
        restating=frozenset(restating_rules(document, replay.evaluation.compiled)),
        same_rules=same,
        sessions_since=_since(list(current.sessions), list(case.sessions)),
        assessments_since=_since(list(current.assessments), list(case.assessments)),
        fields_since=_changed(current_doc, state.case))


def _changed(now: dict[str, Any] | None, then: dict[str, Any]) -> list[str]:
    """The case's top-level fields (other than those a review moves
    through) that differ between the recorded case and the file now."""
    if now is None:
        return []
    return sorted(k for k in set(now) | set(then)
                  if k not in _EXPECTED and now.get(k) != then.get(k))
