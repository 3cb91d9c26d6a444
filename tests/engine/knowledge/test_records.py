"""The knowledge layer's small immutable records and resolved conditions
(NamedTuples since issue 28 item 4: a dataclass compiles its methods when
the class is defined, which every cold `next` paid) behave as the frozen
dataclasses they were: immutable, equal by value (a condition only to its
own kind), hashable where their fields are, the same repr, and unchanged
through the compiled-rules cache's pickle."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from calfrehab.engine.inference.matchable import acceptance
from calfrehab.engine.knowledge.catalogue import FactSettings, FactSpec, base_fact_specs
from calfrehab.engine.knowledge.compiled import Disjunct
from calfrehab.engine.knowledge.conditions import AllOf, AnyOf, Atom, Leaf, NotOf
from calfrehab.engine.knowledge.ladder import MoveContext
from calfrehab.engine.knowledge.rulebase import LocatedRule, default_rules_dir
from calfrehab.engine.pipeline import compiled


def _records() -> list[Any]:
    base = compiled(default_rules_dir())
    rule = base.base.rules[0]
    disjunct = next(iter(base.instances.values())).disjuncts[0]
    return [
        FactSpec("a.b", "int", "a count"),
        FactSettings(3, 7, frozenset({"seated_raise"})),
        MoveContext("achilles_midportion", 2, 70.5),
        Atom("a.b", ">=", 3),
        Leaf("a.b", "<", 3),
        AllOf((Leaf("a.b", "<", 3), NotOf(Leaf("c", "exists")))),
        AnyOf((Leaf("a.b", "<", 3),)),
        NotOf(Leaf("c", "exists")),
        rule,
        disjunct,
    ]


@pytest.mark.parametrize("record", _records(), ids=lambda r: type(r).__name__)
def test_a_record_is_immutable_equal_by_value_and_pickles(record: Any) -> None:
    first = record._fields[0]
    with pytest.raises(AttributeError):
        setattr(record, first, None)
    again = type(record)(*record)
    assert again == record and again is not record
    assert pickle.loads(pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)) == record
    assert repr(record).startswith(f"{type(record).__name__}({first}=")
    # A condition equals only a condition of its own kind (conditions._same),
    # never the plain tuple of its values, from either side. The other
    # records are plain NamedTuples: unlike the dataclasses they were, they
    # equal that tuple (and another NamedTuple of the same values), which
    # nothing compares them with; pinned so that neither changes unseen.
    plain = tuple(record)
    if isinstance(record, Leaf | AllOf | AnyOf | NotOf | Atom):
        assert record != plain and plain != record
        assert not (record == plain or plain == record)
    else:
        assert record == plain


def test_conditions_equal_only_their_own_kind() -> None:
    # As the frozen dataclasses they were: a NamedTuple alone would equal
    # any tuple of the same values, so AllOf and AnyOf of the same items,
    # and a Leaf and an Atom of the same fields, would compare equal.
    leaf = Leaf("a.b", "<", 3)
    assert AllOf((leaf,)) != AnyOf((leaf,))
    assert (AllOf((leaf,)) == AnyOf((leaf,))) is False
    assert Leaf("f", "==", 1) != Atom("f", "==", 1) and Atom("f", "==", 1) != Leaf("f", "==", 1)
    plain = ("a.b", "<", 3, None, False)
    assert leaf != plain and plain != leaf  # both sides: the reflected one too
    assert AllOf((leaf,)) == AllOf((Leaf("a.b", "<", 3),))
    assert hash(AllOf((leaf,))) == hash(AllOf((Leaf("a.b", "<", 3),)))
    assert len({leaf, Leaf("a.b", "<", 3), Atom("a.b", "<", 3)}) == 2


def test_defaults_and_hashes_are_the_dataclasses() -> None:
    spec = FactSpec("a.b", "str", "a kind", ("x", "y"))
    assert (spec.choices, spec.per_week_from) == (("x", "y"), None)
    assert FactSettings(3, 7).seated_exercises == frozenset()
    assert MoveContext("none") == MoveContext("none", 1, None)
    assert Atom("f", "exists") == Atom("f", "exists", None, None, False)
    assert len({spec, FactSpec("a.b", "str", "a kind", ("x", "y"))}) == 1
    assert len({Atom("f", "==", True, None, True), Atom("f", "==", True, derived=True)}) == 1
    assert isinstance(next(iter(base_fact_specs().values())), FactSpec)
    with pytest.raises(TypeError):  # a definition is a dict: not hashable, as before
        hash(Disjunct("k#0", (("f0", "a"),), {"all": []}))
    located = compiled(default_rules_dir()).base.rules[0]
    assert isinstance(located, LocatedRule)
    assert (located.rule, located.file, located.line) == tuple(located)
    got = acceptance([{"all": [{"f0": {"$and": [{"n": "a"}, {"v": 1}]}}]}])
    assert got is not None and got["a"].source == "v == 1" and got["a"].accepts(1)
