"""Next prescriptions made from trusted values are what pydantic's own
``model_construct`` and ``model_copy`` make: the same fields in the same
order, the same fields set, no extra or private values, the same JSON, and
equal; a later model_copy of one works as on any other."""

from __future__ import annotations

from typing import Any

from calfrehab.engine.knowledge import ladder as ladder_ops
from calfrehab.engine.knowledge.ladder import NextPrescription
from calfrehab.engine.knowledge.loader import load_rulebase
from calfrehab.engine.vocabulary import TRACKS


def _state(m: NextPrescription) -> tuple[Any, ...]:
    return (type(m), list(m.__dict__.items()), m.__pydantic_fields_set__,
            m.__pydantic_extra__, m.__pydantic_private__, m.model_dump_json())


def test_every_rung_start_is_what_model_construct_makes() -> None:
    ladder = load_rulebase().ladder
    made = 0
    for track in TRACKS:
        for dose in ladder.tracks[track].rungs:
            nxt = ladder_ops.start(ladder, track, dose.rung)
            same = NextPrescription.model_construct(**dict(nxt.__dict__))
            assert _state(nxt) == _state(same)
            assert nxt == same
            made += 1
    assert made >= 10


def test_with_changes_is_model_copy_with_an_update() -> None:
    ladder = load_rulebase().ladder
    nxt = ladder_ops.start(ladder, "straight_knee", 1)
    update: dict[str, Any] = {"cues": ["slow down", *nxt.cues], "tempo": "3-1-3"}
    changed = ladder_ops.with_changes(nxt, update)
    assert _state(changed) == _state(nxt.model_copy(update=update))
    assert changed.cues[0] == "slow down" and nxt.cues[0] != "slow down"
    again = changed.model_copy(update={"surface": "sand"})
    assert again.surface == "sand" and changed.surface != "sand"
