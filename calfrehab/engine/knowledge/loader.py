"""Load a rules directory and check it before anything is evaluated.

A rules directory holds ``rulebase.yaml`` (name, version, settings),
``sources.yaml`` (the citations rules name), ``ladder.yaml`` (the rungs and
their doses) and rule files (every other ``*.yaml``). Case tables live in
``cases/`` and do not count towards the rule base's hash.

Every problem is reported with file, line and rule id, all at once; a rules
directory with any problem is never evaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from calfrehab.engine.errors import InputError, RuleError, RuleProblem
from calfrehab.engine.knowledge.ladder import Ladder
from calfrehab.engine.knowledge.rulebase import (
    LADDER,
    MANIFEST,
    RESERVED,
    SOURCES,
    LocatedRule,
    RuleBase,
    default_rules_dir,
    rule_files,
    rulebase_sha256,
)
from calfrehab.engine.knowledge.rulelang import Manifest, RuleFile, SourcesFile
from calfrehab.engine.knowledge.ruletext import render_rule
from calfrehab.engine.limits import limit, max_input_bytes
from calfrehab.engine.safeio import read_input_bytes

# The rules directory's types, where the shipped rules are and the hash of a
# directory live in rulebase.py (what a run needs whose compiled rule base
# comes from the cache); re-exported here, where they always were.
__all__ = ["LADDER", "MANIFEST", "RESERVED", "SOURCES", "LocatedRule", "RuleBase",
           "default_rules_dir", "load_ladder", "load_rulebase", "rule_files", "rulebase_sha256"]

if TYPE_CHECKING:
    # PyYAML is imported where a file is parsed: a run whose compiled rule
    # base comes from knowledge/cache.py parses none (issue 28 item 4).
    import yaml


def _yaml(path: Path, problems: list[RuleProblem]) -> tuple[Any, yaml.Node | None]:
    try:
        # Only a regular file within the input size cap: a FIFO or a device
        # named *.yaml is a problem to report, not a hang.
        text = read_input_bytes(path, cap_bytes=max_input_bytes()).decode("utf-8")
    except InputError as exc:
        problems.append(RuleProblem(path.name, exc.reason))
        return None, None
    except UnicodeDecodeError:
        problems.append(RuleProblem(path.name, "cannot read: not UTF-8 text"))
        return None, None
    import yaml

    # Parse once into nodes (for line numbers) and build the data from them;
    # libyaml's safe loader when PyYAML has it (parsing is most of start-up).
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        if node is not None and (bomb := _alias_bomb(node)) is not None:
            problems.append(RuleProblem(path.name, bomb, node.start_mark.line + 1))
            return None, None
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problems.append(RuleProblem(path.name, f"not valid YAML: {getattr(exc, 'problem', exc)}",
                                    line))
        return None, None
    finally:
        loader.dispose()
    if node is None:
        # An emptied rule file would silently drop its rules (red flags, say).
        problems.append(RuleProblem(path.name, "empty file: expected a YAML mapping"))
        return None, None
    return data, node


def _alias_bomb(root: yaml.Node) -> str | None:
    """Why a composed document must not be built, or None. Aliases share
    nodes, so the node graph is small while the data it stands for can be
    exponentially large (649 bytes of ``&a [*b, *b, ...]`` ran ``rules
    check`` to a 6 GB MemoryError). Its expanded size is counted here, in
    time linear in the nodes, before anything is built from it."""
    import yaml

    cap = limit("max_yaml_nodes")
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_.discard(key)
            children = (node.value if isinstance(node, yaml.SequenceNode)
                        else [n for pair in node.value for n in pair])
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            continue
        if key in sizes:
            continue
        if key in open_:
            return "a YAML alias refers to the node that holds it (a cycle)"
        if not isinstance(node, yaml.SequenceNode | yaml.MappingNode):
            sizes[key] = 1
            continue
        open_.add(key)
        stack.append((node, True))
        children = (node.value if isinstance(node, yaml.SequenceNode)
                    else [n for pair in node.value for n in pair])
        stack.extend((c, False) for c in children)
    if sizes[id(root)] > cap:
        return (f"YAML aliases expand this file to over {cap:,} values (limits.toml "
                "max_yaml_nodes); write the rule out, or split it")
    return None


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """Line (1-based) of the YAML node at ``loc``, or of its nearest parent."""
    import yaml

    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for key, value in node.value:
                if key.value == part:
                    nxt = value
                    break
            if nxt is None:
                return line
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
        else:
            return line
        line = node.start_mark.line + 1
    return line


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _model_problems(
    exc: ValidationError, file: str, node: yaml.Node | None, data: Any
) -> Iterator[RuleProblem]:
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        rule_id = None
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            rules = data.get("rules") if isinstance(data, dict) else None
            if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], dict):
                rule_id = rules[loc[1]].get("id")
        msg = err["msg"]
        if err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] == "extra_forbidden":
            msg = "unknown field"
        yield RuleProblem(file, f"{_where(loc)}: {msg}", _line_of(node, loc), rule_id)


def _parse(
    model: type[BaseModel], path: Path, problems: list[RuleProblem],
    transform: Callable[[Any, yaml.Node | None], Any] | None = None,
) -> tuple[Any, yaml.Node | None, Any]:
    data, node = _yaml(path, problems)
    if data is None and node is None:
        return None, None, None
    if transform is not None:
        data = transform(data, node)
    try:
        return model.model_validate(data), node, data
    except ValidationError as exc:
        # A union of condition shapes reports every branch; keep the first
        # problem per location so the list reads like a list of mistakes.
        seen: set[tuple[str, int | None]] = set()
        for p in _model_problems(exc, path.name, node, data):
            key = (p.message.split(":")[0], p.line)
            if key not in seen:
                seen.add(key)
                problems.append(p)
        return None, node, data


def load_ladder(directory: Path | None = None) -> Ladder:
    """Only the ladder of a rules directory (plain exercise names, doses)."""
    directory = Path(directory) if directory is not None else default_rules_dir()
    problems: list[RuleProblem] = []
    ladder, _, _ = _parse(Ladder, directory / LADDER, problems)
    if problems or ladder is None:
        raise RuleError(problems or [RuleProblem(LADDER, "missing")])
    result: Ladder = ladder
    return result


def load_rulebase(directory: Path | None = None) -> RuleBase:
    """Read and check a rules directory; raise RuleError listing every
    problem. Semantic checks (facts, types, strata) run in the compiler."""
    directory = Path(directory) if directory is not None else default_rules_dir()
    problems: list[RuleProblem] = []
    if not directory.is_dir():
        raise RuleError([RuleProblem(str(directory), "not a directory")])
    for name in RESERVED:
        if not (directory / name).exists():
            problems.append(RuleProblem(name, "missing from the rules directory"))
    if problems:
        raise RuleError(problems)

    manifest, _, _ = _parse(Manifest, directory / MANIFEST, problems)
    sources_file, _, _ = _parse(SourcesFile, directory / SOURCES, problems)
    ladder, _, _ = _parse(Ladder, directory / LADDER, problems)
    if manifest is None:
        # Every rule is rendered with the manifest's parameters: without
        # them each rule would add a problem of its own (1,636 for one
        # unparsable rulebase.yaml), burying the one that matters.
        raise RuleError(problems)

    located: list[LocatedRule] = []
    seen_ids: dict[str, str] = {}
    files = rule_files(directory)
    if not files:
        problems.append(RuleProblem(str(directory), "no rule files (*.yaml) found"))
    params = manifest.params() if manifest is not None else {}

    def rendered(file: str) -> Callable[[Any, yaml.Node | None], Any]:
        # Parameters into conditions, numbers into titles and reasons, before
        # the rule is checked: every later reader sees the rendered rule.
        def transform(data: Any, node: yaml.Node | None) -> Any:
            if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
                return data
            out = []
            for i, raw in enumerate(data["rules"]):
                if not isinstance(raw, dict):
                    out.append(raw)
                    continue
                new, found = render_rule(raw, params)
                rule_id = raw.get("id") if isinstance(raw.get("id"), str) else None
                for message in found:
                    problems.append(RuleProblem(file, message, _line_of(node, ("rules", i)),
                                                rule_id))
                out.append(new)
            return {**data, "rules": out}

        return transform

    for path in files:
        parsed, node, _ = _parse(RuleFile, path, problems, rendered(path.name))
        if parsed is None:
            continue
        for i, rule in enumerate(parsed.rules):
            line = _line_of(node, ("rules", i)) or 1
            if rule.id in seen_ids:
                problems.append(RuleProblem(
                    path.name, f"duplicate rule id (also in {seen_ids[rule.id]})", line, rule.id))
            seen_ids[rule.id] = f"{path.name}:{line}"
            located.append(LocatedRule(rule, path.name, line))

    if sources_file is not None:
        for lr in located:
            for key in lr.rule.sources:
                if key not in sources_file.sources:
                    problems.append(RuleProblem(
                        lr.file, f"unknown source `{key}` (not in {SOURCES})", lr.line, lr.rule.id))
        if ladder is not None:
            cited = [*ladder.load.sources]
            cited += [k for s in ladder.load.schemes.values() for k in s.sources]
            cited += [k for t in ladder.tracks.values() for r in t.rungs for k in r.sources]
            for key in sorted(set(cited)):
                if key not in sources_file.sources:
                    problems.append(
                        RuleProblem(LADDER, f"unknown source `{key}` (not in {SOURCES})"))
    if problems:
        raise RuleError(problems)
    assert manifest is not None and sources_file is not None and ladder is not None
    return RuleBase(
        directory=directory,
        manifest=manifest,
        sources=dict(sources_file.sources),
        ladder=ladder,
        rules=located,
        sha256=rulebase_sha256(directory),
        files=[p.name for p in files],
    )
