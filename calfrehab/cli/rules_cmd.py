"""Commands on rules directories: list, show, check, test."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from calfrehab.cli.options import domain_errors, json_option, rules_option
from calfrehab.cli.render import wrap
from calfrehab.cli.stdout import say
from calfrehab.engine import api


def _fill(text: str, indent: str, first: str | None = None) -> str:
    """Fit a line to 80 columns; ids and paths are never broken."""
    return "\n".join(wrap(text, indent, first, whole_words=True))


@click.group()
def rules() -> None:
    """Inspect, check and test a rules directory.

    Example:

        calfrehab rules list
    """


@rules.command(name="list")
@rules_option
@json_option
@domain_errors(exit_code=1)
def list_(rules_dir: Path | None, as_json: bool) -> None:
    """List every rule: id, title, what it applies to, and its sources.

    Example:

        calfrehab rules list --rules ./my-clinic-rules
    """
    compiled = api.compile_rules(rules_dir)
    rows: list[dict[str, Any]] = []
    for lr in compiled.base.rules:
        r = lr.rule
        rows.append({
            "id": r.id, "title": r.title, "file": lr.file, "line": lr.line,
            "conditions": r.applies_to.conditions, "tracks": r.applies_to.tracks,
            "phase": r.phase, "sources": r.sources,
        })
    if as_json:
        say(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    # Rule text is printed escaped: a control character or newline in a
    # title cannot reach the terminal raw or forge a line (issue 27).
    say(f"{api.for_terminal(compiled.base.manifest.name)} "
               f"{api.for_terminal(compiled.version)} "
               f"({len(rows)} rules, sha256 {compiled.sha256[:12]})")
    for row in rows:
        kinds = row["conditions"] if row["conditions"] == "all" else ",".join(row["conditions"])
        tracks = ",".join(row["tracks"]) or "case"
        say(api.for_terminal(row["id"], limit=None))
        for text in (row["title"], f"applies to: {kinds}; {tracks}",
                     f"sources: {', '.join(row['sources'])}"):
            say(_fill(api.for_terminal(text, limit=None), "    "))


@rules.command()
@click.argument("rule_id")
@rules_option
@domain_errors(exit_code=1)
def show(rule_id: str, rules_dir: Path | None) -> None:
    """Show one rule as written and its compiled durable-rules form.

    Example:

        calfrehab rules show rupture-gate-single-leg
    """
    compiled = api.compile_rules(rules_dir)
    found = [lr for lr in compiled.base.rules if lr.rule.id == rule_id]
    if not found:
        click.echo(f"error: no rule `{rule_id}` (see `calfrehab rules list`)", err=True)
        sys.exit(1)
    lr = found[0]
    written = lr.rule.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    say(f"# {lr.file}:{lr.line}")
    say(yaml.safe_dump(written, sort_keys=False, allow_unicode=True, width=88).rstrip())
    say("\n# compiled (one durable-rules rule per alternative)")
    for key, inst in compiled.instances.items():
        if inst.rule.id != rule_id:
            continue
        say(f"# {key}: stratum {inst.stratum}, phase {inst.phase}")
        for d in inst.disjuncts:
            say(json.dumps({d.key: d.definition}, ensure_ascii=False))


@rules.command()
@click.argument("directory", metavar="[DIR]", required=False,
                type=click.Path(file_okay=False, path_type=Path))
@rules_option
@domain_errors(exit_code=1)
def check(directory: Path | None, rules_dir: Path | None) -> None:
    """Check a rules directory: YAML, fields, facts, types, ids, sources,
    the engine's limits, and that durable-rules takes it.

    DIR (or --rules) defaults to the shipped rules. Every problem is listed
    with file, line and rule id. After compiling, the rule base is
    registered with durable-rules and a probe case decided in a child
    process under a time limit (CALFREHAB_RULES_CHECK_TIMEOUT, 60 s by
    default): what the engine refuses is reported naming the rule, and a
    rule base it would hang on is reported instead of hanging. Exit 0 when
    the rules are usable, 1 when not.

    Example:

        calfrehab rules check ./my-clinic-rules
    """
    try:
        compiled, registration = api.check_rules(directory or rules_dir)
    except api.RuleError as exc:
        click.echo(exc.render(), err=True)
        sys.exit(1)
    if not registration.ok:
        click.echo(api.RuleError(registration.problems).render(), err=True)
        sys.exit(1)
    say(f"ok: {len(compiled.base.rules)} rules, {len(compiled.instances)} compiled "
               f"instances in {len(compiled.strata)} strata; version {compiled.version}, "
               f"sha256 {compiled.sha256}")


@rules.command(name="test")
@click.argument("directory", metavar="[DIR]", required=False,
                type=click.Path(file_okay=False, path_type=Path))
@rules_option
@json_option
@domain_errors(exit_code=1)
def test_(directory: Path | None, rules_dir: Path | None, as_json: bool) -> None:
    """Run a rules directory's case tables and report rule coverage.

    Runs every table in DIR/cases/*.cases.yaml (DIR defaults to --rules, or
    the shipped rules): each case is the table's base case with its
    changes, decided with DIR's rules and compared with the expected
    outcome, track decisions, next exercises and rule firings. Then
    coverage: rules no case fired, and decision rules no case shows not
    firing where exactly one of their conditions fails (listed in a
    case's not_fires). Exit 0 when every case passes and coverage is
    complete, 1 otherwise. The table format is described in
    calfrehab.engine.ruletest.casetable.

    Example:

        calfrehab rules test ./my-clinic-rules
    """
    report = api.run_tables(directory or rules_dir)
    if as_json:
        say(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        sys.exit(0 if report.ok else 1)
    if not report.tables:
        say(f"no case tables in {report.rules_dir / 'cases'} (*.cases.yaml)")
    for result in report.results:
        mark = "PASS" if result.passed else "FAIL"
        say(f"{mark} {result.file} :: {result.name}")
        for problem in result.problems:
            say(_fill(problem, "       ", "     - "))
    say("")
    if report.uncovered_rules:
        say(_fill(f"rules no case fired ({len(report.uncovered_rules)}): "
                         + ", ".join(report.uncovered_rules), "    ", ""))
    if report.decision_rules_without_negative_case:
        say(_fill("decision rules no case shows not firing where one condition fails "
                         f"({len(report.decision_rules_without_negative_case)}): "
                         + ", ".join(report.decision_rules_without_negative_case), "    ", ""))
    if not report.uncovered_rules and not report.decision_rules_without_negative_case:
        say(_fill(f"coverage: all {report.rule_count} rules fired; every decision rule "
                         "also shown not firing where one condition fails", "    ", ""))
    say(f"{report.passed} passed, {report.failed} failed")
    sys.exit(0 if report.ok else 1)
