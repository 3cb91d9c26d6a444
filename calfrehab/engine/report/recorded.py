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

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from calfrehab.engine.casefile.model import Case
from calfrehab.engine.casefile.since import entered_since
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


def recorded_review(state: CaseState | None, reasoner: Reasoner,
                    current_doc: Mapping[str, Any]) -> RecordedReview | None:
    """The trail's latest decision for the case, explained on its own case
    document, with what the case file ``current_doc`` holds since; None
    when there is none to show (no trail, no decision, or an entry without
    its case)."""
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
    since = entered_since(state.case, current_doc)
    return RecordedReview(
        document=document, case=case, why_not=why_not,
        restating=frozenset(restating_rules(document, replay.evaluation.compiled)),
        same_rules=same,
        sessions_since=since.sessions, assessments_since=since.assessments,
        fields_since=since.fields)

