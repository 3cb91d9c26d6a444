"""Commands on case files: validate, schema, next, explain."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import click

from calfrehab.cli.options import (
    audit_options,
    domain_errors,
    json_option,
    prepared,
    rules_option,
)
from calfrehab.cli.render import render_explain, render_next, use_colour
from calfrehab.cli.stdout import say
from calfrehab.engine import api


def _expand(paths: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if p != "-" and path.is_dir():
            # .json in any case, as batch does: C.JSON is a case file too.
            out += [str(x) for x in sorted(path.iterdir())
                    if x.suffix.lower() == ".json" and x.is_file()]
        else:
            out.append(p)
    return out


@click.command()
@click.argument("paths", nargs=-1, required=True)
@json_option
@domain_errors(exit_code=1)
def validate(paths: tuple[str, ...], as_json: bool) -> None:
    """Check case files against the case format, version 1.

    PATHS are files, directories (their *.json) or - for standard input.
    Prints a line per file and every error of an invalid one, each with its
    path in the file, the value and what was expected. Values a calf cannot
    produce (outside rules/records/plausibility.yaml's ranges) are warned
    about on standard error; they do not make a file invalid. Exit 0 when
    all are valid, 1 when any is not.

    Example:

        calfrehab validate examples/ ../shared/examples/invalid-case.json
    """
    results = []
    files = _expand(paths)
    if not files:
        click.echo(f"error: no case file found in {', '.join(paths)} "
                   "(a case file's name ends in .json)", err=True)
        sys.exit(1)
    for p in files:
        try:
            case = api.validate_path(p)
            unusual = api.unusual_values(case)
            results.append({"file": p, "valid": True, "errors": [],
                            "warnings": [u.model_dump() for u in unusual]})
            if not as_json:
                for u in unusual:
                    click.echo(f"warning {api.for_terminal(p, limit=200)}: "
                               f"{api.for_terminal(u.render())}", err=True)
        except api.CaseValidationError as exc:
            results.append({"file": p, "valid": False,
                            "errors": [e.as_dict() for e in exc.errors], "warnings": []})
            if not as_json:
                say(f"INVALID {exc.render()}")
                continue
        if not as_json and results[-1]["valid"]:
            say(f"ok      {api.for_terminal(p, limit=200)}")
    if as_json:
        say(json.dumps(results, indent=2, ensure_ascii=False))
    elif len(results) > 1:
        bad = sum(not r["valid"] for r in results)
        say(f"{len(results) - bad} valid, {bad} invalid")
    sys.exit(0 if all(r["valid"] for r in results) else 1)


@click.command()
@domain_errors(exit_code=1)
def schema() -> None:
    """Print the JSON Schema of the case format (version 1).

    Cross-field rules (dates not after review_date, an exercise on its own
    track, what a rupture requires) are listed in the schema's description.

    Example:

        calfrehab schema > case.schema.json
    """
    say(json.dumps(api.case_json_schema(), indent=2, ensure_ascii=False))


@click.command(name="next")
@click.argument("case", type=str, required=False)
@click.option("--fhir", "fhir_bundle", type=str, default=None, metavar="BUNDLE",
              help="Decide from a FHIR Bundle (docs/integration.md) instead of a case file.")
@click.option("--review-date", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              metavar="YYYY-MM-DD",
              help="Decide for this day, stated explicitly (a review date after today is "
                   "otherwise refused: time gates count to it).")
@click.option("--accept", "accept_it", is_flag=True,
              help="Also apply the decision to the case file's programme and record that "
                   "(as `calfrehab accept` does), for a clinician who agrees.")
@rules_option
@json_option
@audit_options
@domain_errors(exit_code=1)
def next_(case: str | None, fhir_bundle: str | None, review_date: datetime | None,
          accept_it: bool, rules_dir: Path | None, as_json: bool, audit_path: Path | None,
          clinician: str | None, no_record: bool) -> None:
    """Decide the next step of a case's calf rehab, per track, with reasons.

    CASE is a case file or - for standard input; --fhir BUNDLE reads a FHIR
    Bundle instead (see docs/integration.md). The decision is recorded in
    the audit trail unless --no-record. Exit 0 when a decision was made, 1
    when the case is invalid (its errors are printed), 2 for usage errors.

    Example:

        calfrehab next examples/runner-stuck-on-two-leg.json --no-record
    """
    if (case is None) == (fhir_bundle is None):
        raise click.UsageError("give a CASE file or --fhir BUNDLE (one of them)")
    if review_date is not None and fhir_bundle is not None:
        raise click.UsageError("--review-date is for a CASE file")
    if accept_it and (case is None or case == "-" or no_record or review_date is not None):
        raise click.UsageError("--accept needs a CASE file, recorded (no --no-record), and "
                               "no --review-date (a projection is not a programme)")
    decided = api.decide_and_record(
        api.FromBundleFile(fhir_bundle) if fhir_bundle is not None else api.FromCaseFile(
            str(case), review_date.date() if review_date is not None else None),
        prepared(rules_dir), audit_path=audit_path, clinician=clinician,
        record=not no_record)
    if as_json:
        say(api.decision_json(decided), nl=False)
    else:
        # A FHIR Bundle has no case file to explain: the hint names none.
        say(render_next(decided, colour=use_colour(), source=case or "CASE"))
    if accept_it:
        from calfrehab.cli.accept_cmd import report_accepted

        done = api.accept(Path(str(case)), audit_path, decision=decided.decision.decision_id,
                          clinician=clinician)
        if as_json:
            click.echo(f"accepted into {api.for_terminal(str(case))}: audit entry "
                       f"{done.seq}", err=True)
        else:
            say("")
            report_accepted(done, Path(str(case)))


@click.command()
@click.argument("case", type=str)
@rules_option
@json_option
@click.option("--ids", is_flag=True,
              help="The auditor's view: rule ids, fact names and case-file paths.")
@domain_errors(exit_code=1)
def explain(case: str, rules_dir: Path | None, as_json: bool, ids: bool) -> None:
    """Show the full decision trail of a case: HOW, WHY-NOT and sources.

    HOW lists each rule that fired, in order, with each condition as a
    physiotherapist reads it: the measure, its value and what the rule
    needs, with the session dates it came from. WHY-NOT shows, for each
    track that did not progress, the rules that would have moved it and
    what each still lacks. --ids shows rule ids, fact names and case-file
    paths instead (for an audit). Nothing is recorded.

    Example:

        calfrehab explain ../shared/examples/rupture-week-7.json
    """
    decided = api.decide_path(case, prepared(rules_dir))
    if as_json:
        say(api.explanation_json(decided), nl=False)
    else:
        say(render_explain(decided, api.explanation(decided), ids=ids))
