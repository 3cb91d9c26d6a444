"""One source for every number: parameters in conditions, and titles and
reasons rendered from the conditions.

A threshold, count or window is written once. A condition may name a
rule-base parameter instead of a literal (``value: {param: pain_during_margin}``;
parameters are ``rulebase.yaml``'s ``parameters`` and ``settings``). A
rule's ``title`` and ``reason`` never repeat a number: they render it.

- ``{=FACT}``: the value the rule's condition compares FACT with, as the
  rule writes the fact (``{=track.pain_during_max_window}``).
- ``{param.NAME}``: a rule-base parameter or setting.
- ``{opens=FACT}``: for a fact counted in weeks from a case date, the date
  and week the condition's bound on FACT is reached (a gate's opening);
  filled in per case.

These are filled in when the rules are loaded, so every reader (decision,
explanation, ``rules list``, the generated clinical basis) sees the same
text, and a clinic that changes a threshold changes its every mention.
The checker refuses a title or reason that states a literal number its
condition does not use (a count left behind when a window changed). The
NRS scale in ``N/10`` is not a threshold and is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

Number = int | float

_STATIC = re.compile(r"\{(=|param\.|opens=)([a-z_][a-z0-9_.]*)\}")
_ANY_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w])")
_SCALE = re.compile(r"/10\b")


class TextProblem(ValueError):
    """A title or reason that cannot be rendered, or states a stray number."""


def resolve_params(when: Any, params: Mapping[str, Number]) -> tuple[Any, list[str]]:
    """The condition tree with every ``{param: NAME}`` value replaced by the
    parameter's number; problems name unknown parameters."""
    problems: list[str] = []

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(x) for x in node]
        if not isinstance(node, dict):
            return node
        out = {k: walk(v) for k, v in node.items() if k != "value"}
        if "value" in node:
            value = node["value"]
            if isinstance(value, dict) and set(value) == {"param"}:
                name = value["param"]
                if not isinstance(name, str) or name not in params:
                    problems.append(f"unknown parameter `{name}` (known: "
                                    f"{', '.join(sorted(params)) or 'none'})")
                    out["value"] = value
                else:
                    out["value"] = params[name]
            else:
                out["value"] = value
        return out

    return walk(when), problems


def compares(when: Any) -> Iterator[dict[str, Any]]:
    """Every comparison of a (raw) condition tree."""
    if isinstance(when, list):
        for x in when:
            yield from compares(x)
    elif isinstance(when, dict):
        if "fact" in when:
            yield when
        for key in ("all", "any", "not"):
            if key in when:
                yield from compares(when[key])


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value)
    return str(value)


def condition_numbers(when: Any) -> set[float]:
    out: set[float] = set()
    for cmp in compares(when):
        values = cmp.get("value")
        for v in values if isinstance(values, list) else [values]:
            if isinstance(v, int | float) and not isinstance(v, bool):
                out.add(float(v))
    return out


def _threshold(when: Any, fact: str) -> Any:
    found = [c.get("value") for c in compares(when)
             if c.get("fact") == fact and c.get("op") not in ("exists", "missing")
             and "to_fact" not in c]
    distinct = []
    for v in found:
        if v not in distinct:
            distinct.append(v)
    if not distinct:
        raise TextProblem(f"`{{={fact}}}`: the condition does not compare `{fact}` with a value")
    if len(distinct) > 1:
        raise TextProblem(f"`{{={fact}}}`: the condition compares `{fact}` with "
                          f"{', '.join(_show(v) for v in distinct)}; say which in the text")
    return distinct[0]


def render_static(text: str, when: Any, params: Mapping[str, Number]) -> str:
    """Fill ``{=FACT}`` and ``{param.NAME}``; turn ``{opens=FACT}`` into the
    per-case placeholder ``{opens:FACT:N}``."""

    def sub(m: re.Match[str]) -> str:
        kind, name = m.group(1), m.group(2)
        if kind == "param.":
            if name not in params:
                raise TextProblem(f"`{{param.{name}}}`: unknown parameter")
            return _show(params[name])
        value = _threshold(when, name)
        if kind == "=":
            return _show(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise TextProblem(f"`{{opens={name}}}` needs a whole number of weeks in the condition")
        return f"{{opens:{name}:{value}}}"

    return _STATIC.sub(sub, text)


def stray_numbers(text: str, when: Any) -> list[str]:
    """Literal numbers in a title or reason (outside placeholders, the NRS
    ``/10`` aside) that the condition does not use."""
    used = condition_numbers(when)
    bare = _SCALE.sub("", _ANY_PLACEHOLDER.sub(" ", text))
    out = []
    for m in _NUMBER.finditer(bare):
        if float(m.group(1)) not in used and m.group(1) not in out:
            out.append(m.group(1))
    return out


def render_rule(
    raw: dict[str, Any], params: Mapping[str, Number]
) -> tuple[dict[str, Any], list[str]]:
    """A raw rule entry with its parameters resolved and its title and reason
    rendered; problems say what is wrong, in the rule author's terms."""
    problems: list[str] = []
    out = dict(raw)
    if "when" in raw:
        out["when"], found = resolve_params(raw["when"], params)
        problems += [f"when: {p}" for p in found]
    for field in ("title", "reason"):
        text = raw.get(field)
        if not isinstance(text, str):
            continue
        stray = stray_numbers(text, out.get("when"))
        if stray:
            problems.append(
                f"{field} states {', '.join(stray)}, which the condition does not use: render "
                "the number from the condition ({=FACT} or {param.NAME}) so it cannot go stale")
        try:
            out[field] = render_static(text, out.get("when"), params)
        except TextProblem as exc:
            problems.append(f"{field}: {exc}")
    then = raw.get("then")
    cues = then.get("prescribe", {}).get("cues") if isinstance(then, dict) else None
    if isinstance(cues, list) and all(isinstance(c, str) for c in cues):
        # A cue is read by the patient: the same numbers, from the same source.
        rendered = []
        for cue in cues:
            stray = stray_numbers(cue, out.get("when"))
            if stray:
                problems.append(f"cue {cue!r} states {', '.join(stray)}, which the condition "
                                "does not use: render it ({=FACT} or {param.NAME})")
            try:
                rendered.append(render_static(cue, out.get("when"), params))
            except TextProblem as exc:
                problems.append(f"cue: {exc}")
                rendered.append(cue)
        assert isinstance(then, dict)
        out["then"] = {**then, "prescribe": {**then["prescribe"], "cues": rendered}}
    return out, problems
