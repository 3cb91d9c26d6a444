"""The fhir commands: a FHIR Bundle into a case file, a decision out as FHIR."""

from __future__ import annotations

from pathlib import Path

import click

from calfrehab.cli.options import audit_options, domain_errors, output_option, rules_option
from calfrehab.cli.stdout import say
from calfrehab.engine import api


def _emit(text: str, output: Path | None, source: str, trail: Path | None = None) -> None:
    if output is None:
        say(text, nl=False)
    else:
        api.write_output(output, text, inputs=(source,), trail=trail)


_OUTPUT = "Write here instead of standard output."


@click.group()
def fhir() -> None:
    """Read and write FHIR R4: a Bundle into a case file, a decision out.

    The mapping (resources, codes, extensions) is the table in
    docs/integration.md. Use `calfrehab next --fhir BUNDLE` to decide
    straight from a Bundle.

    Example:

        calfrehab fhir import bundle.json -o case.json
    """


@fhir.command(name="import")
@click.argument("bundle", type=str)
@output_option("-o", "--output", dest="output", help=_OUTPUT, case_file=True, keep_force=True)
@click.option("--ignore-unrelated", is_flag=True,
              help="Skip resources that carry none of the mapping's codes (a whole "
                   "chart's export) instead of refusing them.")
@domain_errors(exit_code=1)
def import_(bundle: str, output: Path | None, force: bool, ignore_unrelated: bool) -> None:
    """Turn a FHIR Bundle into a case file.

    BUNDLE is a JSON file or - for standard input. Anything in it that
    cannot be mapped to the case format is an error naming the resource
    and the element; nothing is dropped silently. Exit 0 when the case was
    written, 1 when the Bundle does not map to a valid case.

    Example:

        calfrehab fhir import bundle.json -o case.json
    """
    _case, document = api.read_fhir_case(bundle, ignore_unrelated=ignore_unrelated)
    if output is None:
        say(api.case_json(document), nl=False)
        return
    # Written as every case file is (issue 27 item 2): under its lock,
    # atomically, replacing only the same patient's case and only with --force.
    api.check_output(output, inputs=(bundle,))
    api.check_replace(output, force=force, case_id=_case.case_id)
    api.write_case_document(output, document, overwrite=force)


@fhir.command(name="export")
@click.argument("case", type=str)
@output_option("-o", "--output", dest="output", help=_OUTPUT)
@click.option("--case-only", is_flag=True,
              help="Write only the case's resources: no decision is made or recorded.")
@rules_option
@audit_options
@domain_errors(exit_code=1)
def export(case: str, output: Path | None, case_only: bool, rules_dir: Path | None,
           audit_path: Path | None, clinician: str | None, no_record: bool) -> None:
    """Decide a case and write case and decision as one FHIR Bundle.

    CASE is a case file, a FHIR Bundle, or - for standard input. The
    decision becomes a GuidanceResponse, a RequestGroup with the proposed
    next exercise of each track (ServiceRequest), a DetectedIssue when the
    case is referred, and a Provenance naming the rule base's version and
    sha256. It is recorded in the audit trail unless --no-record.

    Example:

        calfrehab fhir export examples/runner-stuck-on-two-leg.json --no-record
    """
    if case_only:
        the_case, _document = api.read_case_or_bundle(case)
        _emit(api.fhir_json(api.case_to_fhir(the_case)), output, case)
        return
    api.check_output(output, inputs=(case,), trail=None if no_record else audit_path)
    decided = api.decide_and_record(api.FromEitherFile(case), api.prepare(rules_dir),
                                    audit_path=audit_path, clinician=clinician,
                                    record=not no_record)
    # What a clinician already decided for the case (an override, an
    # acceptance), named in the GuidanceResponse: the export is the rules'
    # proposal on the file as it is, never that decision (clinical-basis §8).
    acted_on = None
    if api.trail_location(audit_path).exists():
        state = api.case_state(audit_path, decided.decision.case_id, acted_on=True,
                               current=decided.document)
        acted_on = None if state is None else state.model_dump(mode="json", exclude={"case"})
    _emit(api.fhir_json(api.decision_to_fhir(decided, acted_on=acted_on)), output, case,
          None if no_record else audit_path)
    if output is not None:
        click.echo(f"wrote {output} (decision {decided.decision.decision_id})", err=True)


__all__ = ["fhir"]
