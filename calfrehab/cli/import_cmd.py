"""The import command: case files from a clinic's spreadsheet export."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import click

from calfrehab.cli.options import domain_errors, rules_option
from calfrehab.cli.stdout import say
from calfrehab.engine import api


@click.command(name="import")
@click.argument("csv_path", metavar="CSV",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--into", "into", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Directory of case files: <case_id>.json is created, or added to.")
@click.option("--date-order", type=click.Choice(["dmy", "mdy"]), default=None,
              help="How to read dates like 03/04/2026: dmy (day first) or mdy (month "
                   "first). ISO dates (2026-04-03) need no flag; without it, an "
                   "ambiguous date is an error.")
@click.option("--encoding", default="utf-8", show_default=True,
              help="The text encoding the CSV was saved in: cp1252 for Excel's "
                   "\"CSV\" on Windows, latin-1, ... A byte that is not text in it "
                   "stops the import, naming the row.")
@click.option("--dry-run", is_flag=True, help="Check everything, write nothing.")
@rules_option
@domain_errors(exit_code=1)
def import_(csv_path: Path, into: Path, date_order: Literal["dmy", "mdy"] | None,
            encoding: str, dry_run: bool, rules_dir: Path | None) -> None:
    """Import a clinic's CSV export: one row per exercise per session.

    The columns (and the header spellings accepted for each) are in
    docs/csv-import.md; examples/import/clinic-export-template.csv is a
    template. A new case takes its patient and condition from the case
    columns and its programme from its last session; an existing case file
    keeps them and gains the sessions on days it does not have yet. Each
    error names the row, the column and what was expected; a bad row is
    skipped and every good row is still written. A case file that is a
    symlink (or a directory, a device) is refused, never read or written
    through. Exit 0 when every row was imported, 1 when any was not, 2 when
    a case file was refused.

    Example:

        calfrehab import examples/import/clinic-export-template.csv --into cases/
    """
    result = api.import_csv(csv_path, into, date_order=date_order, dry_run=dry_run,
                            rules_dir=rules_dir, encoding=encoding)
    verb = "would write" if dry_run else "wrote"
    for case in result.cases:
        what = "new case" if case.created else "added to"
        extra = (f", {case.sessions_already_there} session(s) already there"
                 if case.sessions_already_there else "")
        say(f"{verb} {api.for_terminal(case.path, limit=200)}: {what}, "
                   f"{case.sessions_added} session(s){extra}")
    source = api.for_terminal(str(csv_path), limit=200)
    for error in result.errors:
        # Cells in the message are escaped and clipped already; the whole is
        # kept to one line whatever a message holds.
        click.echo(f"{source}: {api.for_terminal(error.render(), limit=None)}", err=True)
    say(f"{result.rows_imported} of {result.rows_read} row(s) imported into "
               f"{len(result.cases)} case file(s); {len(result.errors)} error(s)")
    # A refused case file is exit 2, as every refused output is (the others'
    # rows are still written); any other bad row is 1.
    sys.exit(2 if result.refused else 1 if result.errors else 0)
