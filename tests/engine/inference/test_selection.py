"""The generated fact selection writes what the plan says, fact for fact.

The reference below is the selection loop the driver ran before the plan
was compiled into a function: each fact in plan order, a flag sent once
settled or true, a missing value sent without ``"v"``, a value no pattern
accepts left out.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from calfrehab.engine.inference.durable_host import batch_head, fact_tail
from calfrehab.engine.inference.selection import Read, Texts, selector

HEAD = batch_head("r")


def _reference(plan: list[Read], values: Mapping[str, Any], flags: Collection[str]) -> list[str]:
    out: list[str] = []
    for name, is_flag, settled, accept in plan:
        if is_flag:
            if name in flags:
                value: Any = True
            elif settled:
                value = False
            else:
                continue
        else:
            value = values.get(name)
        if accept is None or accept(value):
            out.append(HEAD + fact_tail(name, value))
    return out


def _small(v: Any) -> bool:
    return v is None or (v.__class__ in (int, float) and v < 3)


def _only_true(v: Any) -> bool:
    return v is True


PLAN: list[Read] = [
    ("a.count", False, False, None),
    ("a.flag", True, True, None),
    ("b.small", False, False, _small),
    ("b.flag", True, False, None),
    ("c.true_only", True, True, _only_true),
    ("c.never", False, False, lambda v: False),
    ("d.any", False, False, None),
]

CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({"a.count": 1, "b.small": 1, "d.any": "x"}, set()),
    # 1, 1.0 and True are equal in Python but three texts.
    ({"a.count": 1.0, "b.small": True, "d.any": 1}, {"a.flag"}),
    ({"a.count": True, "b.small": 1.0, "d.any": 1.0}, {"a.flag", "b.flag", "c.true_only"}),
    ({"a.count": None, "b.small": 7, "d.any": None}, {"b.flag"}),
    ({}, set()),
    ({"a.count": 'q"uote', "b.small": 2.5, "d.any": "é"}, {"c.true_only"}),
]


def test_the_generated_selection_writes_what_the_loop_wrote() -> None:
    texts: Texts = {}
    select = selector(PLAN, HEAD, texts)
    for _ in range(2):  # the second time from the kept texts
        for values, flags in CASES:
            assert select(values, flags) == _reference(PLAN, values, flags)
    assert (("a.count", int, 1) in texts) and (("a.count", float, 1.0) in texts)
    assert texts[("b.small", int, 7)] is None  # refused, and remembered as refused


def test_a_full_cache_is_cleared_and_the_texts_stay_right(monkeypatch: Any) -> None:
    from calfrehab.engine.inference import selection

    monkeypatch.setattr(selection, "TEXTS_MAX", 2)
    texts: Texts = {}
    select: Callable[[Mapping[str, Any], Collection[str]], list[str]] = selector(
        PLAN, HEAD, texts)
    for values, flags in CASES * 2:
        assert select(values, flags) == _reference(PLAN, values, flags)
        assert len(texts) <= 2


def test_any_fact_name_is_written_into_the_generated_code_as_a_literal() -> None:
    # The generated function holds the plan's fact names as repr() literals:
    # quotes, backslashes, line breaks and code-like text stay a name, so
    # the selection is still the loop's, fact for fact.
    names = ["a'b", 'c"d', "e\\f", "g\nh", "\u2028", "x'); raise SystemExit('"]
    plan: list[Read] = [(n, False, False, None) for n in names]
    plan += [(n + "!", True, True, None) for n in names]
    values = {n: i for i, n in enumerate(names)}
    flags = {names[0] + "!", names[-1] + "!"}
    assert selector(plan, HEAD, {})(values, flags) == _reference(plan, values, flags)
