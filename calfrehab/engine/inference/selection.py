"""The facts one ruleset is sent for a case, as the texts of a batch.

Each ruleset has a plan, decided at ``prepare()``: the facts it reads, in
order, each with whether it is a derived flag, whether that flag is
settled before the ruleset runs, and what of it the ruleset's patterns can
match (:mod:`calfrehab.engine.inference.matchable`). Per case a fact is
sent unless no pattern can match it as it is; a missing value is sent
without ``"v"``, so a rule can test for it; a flag is sent once it is
settled or true.

The plan is turned into one Python function per ruleset (generated once,
like the predicates of :mod:`~calfrehab.engine.inference.matchable`), so a
case pays no loop over the plan, no unpacking of its entries and no test
of a fact's kind: about 100 facts a case go through it, on the per-case
hot path. What the function does per fact:

- a flag has two possible texts (true, false), made once here (None where
  no pattern can match that value);
- a base fact without a value has one, made once here;
- a base fact's value is looked up in ``texts``, the ruleset's cache of
  the text of each (fact, type, value) seen, None for a value no pattern
  can match; most values recur from case to case (enumerations, small
  counts). The type is part of the key: ``1``, ``1.0`` and ``True`` are
  equal in Python but three texts. The cache is bounded (``TEXTS_MAX``):
  cleared when full, so that a long batch's memory stays flat.

The generated source is built from the compiled rule base's fact names
(written with ``repr``) and names of this module's constants, never from
case data. The texts are the same as :func:`durable_host.fact_tail` writes,
after ``head``; the order is the plan's.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from calfrehab.engine.inference.durable_host import fact_tail
from calfrehab.engine.knowledge.codecache import compiled

# (fact, is derived flag, flag settled before the ruleset runs, whether a
# value can match: None, any can)
Read = tuple[str, bool, bool, "Callable[[Any], bool] | None"]
# (the case's base fact values, the flags true so far) -> the texts to send
Selector = Callable[[Mapping[str, Any], Collection[str]], list[str]]
Texts = dict[tuple[str, type, Any], "str | None"]

# Entries a ruleset's cache holds at most (then it is cleared). Continuous
# values (load ratios, limb symmetry, stiffness changes) keep adding new
# keys: on generated cases the first stratum's cache held 2,189 after
# 10,000 cases and 3,920 after 100,000, and a bound of 50,000 let it grow
# with the batch. At 2,048 it is full by about 10,000 cases and stays so,
# for about 0.25 more fact texts written (2 µs each) a case.
TEXTS_MAX = 2_048
_UNSEEN = object()


def selector(plan: list[Read], head: str, texts: Texts) -> Selector:
    """The function that writes a ruleset's facts for one case: each text
    is ``head`` (the whole start of a fact on a reused state; empty when
    the caller adds a sid per case) followed by the fact's tail."""

    def text(name: str, value: Any, accept: Callable[[Any], bool] | None) -> str | None:
        return head + fact_tail(name, value) if accept is None or accept(value) else None

    def miss(name: str, value: Any, accept: Callable[[Any], bool] | None) -> str | None:
        if len(texts) >= TEXTS_MAX:
            texts.clear()
        made = texts[(name, value.__class__, value)] = text(name, value, accept)
        return made

    namespace: dict[str, Any] = {
        "texts": texts, "UNSEEN": _UNSEEN, "miss": miss, "__builtins__": {},
    }
    lines = [
        "def select(values, flags):",
        "    out = []",
        "    append = out.append",
        "    get = values.get",
        "    tget = texts.get",
    ]
    for j, (name, is_flag, settled, accept) in enumerate(plan):
        n = repr(name)
        if is_flag:
            namespace[f"T{j}"] = on = text(name, True, accept)
            if settled:
                namespace[f"F{j}"] = off = text(name, False, accept)
                if on is None and off is None:
                    continue
                lines += [f"    t = T{j} if {n} in flags else F{j}",
                          "    if t is not None:",
                          "        append(t)"]
            elif on is not None:
                lines += [f"    if {n} in flags:",
                          f"        append(T{j})"]
            continue
        namespace[f"N{j}"] = text(name, None, accept)
        namespace[f"A{j}"] = accept
        lines += [f"    v = get({n})",
                  "    if v is None:",
                  f"        t = N{j}",
                  "    else:",
                  f"        t = tget(({n}, v.__class__, v), UNSEEN)",
                  "        if t is UNSEEN:",
                  f"            t = miss({n}, v, A{j})",
                  "    if t is not None:",
                  "        append(t)"]
    lines.append("    return out")
    # Compiled once and kept between runs with the compiled rule base
    # (knowledge/codecache.py, cold start).
    exec(compiled("\n".join(lines), "exec"), namespace)
    select: Selector = namespace["select"]
    return select
