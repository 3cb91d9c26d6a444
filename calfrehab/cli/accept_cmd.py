"""The accept command: a recorded decision becomes the patient's programme."""

from __future__ import annotations

import json
from pathlib import Path

import click

from calfrehab.cli.options import audit_option, domain_errors, json_option, person_text
from calfrehab.cli.stdout import say
from calfrehab.engine import api


def report_accepted(done: api.Accepted, case: Path) -> None:
    """What accepting changed, one line a track, and the trail entry."""
    applied = done.applied
    how = (f", as overridden (override {applied.override_entry_id[:8]}: "
           f"{api.for_terminal(done.override_reason or '', limit=120)})"
           if applied.override_entry_id else "")
    say(f"accepted decision {applied.decision_id[:8]}{how} into "
               f"{api.for_terminal(str(case))}:")
    for change in applied.changes or ["no track changed"]:
        say(f"  {api.for_terminal(change, limit=None)}")
    say(f"recorded as audit entry {done.seq} (accepted {done.entry_id}); "
               f"programme sha256 {applied.program_sha256[:12]}…")


@click.command()
@click.argument("case", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--decision", "decision_ref", metavar="ID",
              help="The decision to apply (an id or unique prefix; default: the case's "
                   "latest in the trail).")
@click.option("--force", is_flag=True,
              help="Apply a decision made for an older version of the case file.")
@audit_option(help="Audit trail holding the decision (default: calfrehab.toml's [trail] "
                   "path, else ~/.local/share/calfrehab/audit.sqlite3).")
@click.option("--clinician", default=None, callback=person_text,
              help="Who accepts the decision (recorded).")
@json_option
@domain_errors(exit_code=1)
def accept(case: Path, decision_ref: str | None, force: bool, audit_path: Path | None,
           clinician: str | None, as_json: bool) -> None:
    """Apply a recorded decision to the case file's programme.

    Each track's next dose becomes its prescription; a decision a clinician
    overrode applies the override (its own prescription per track, or the
    dose kept where the override holds). The trail gains an accepted entry
    linking the decision, the override and the sha256 of the programme
    written. A decision made for an older version of the file (a session
    logged since) is refused, naming both hashes, unless --force; another
    patient's decision always.

    Example:

        calfrehab accept ana.json --clinician "A. Berg"
    """
    done = api.accept(case, audit_path, decision=decision_ref, clinician=clinician,
                      force=force)
    if as_json:
        say(json.dumps(done.model_dump(mode="json"), indent=2, ensure_ascii=False))
    else:
        report_accepted(done, case)
