"""The batch command: many cases in, one output file and an errors report out.

Kept light at import time (the CLI imports every command on start-up, and
``calfrehab next`` should not pay for multiprocessing or rich): the library
and the progress bar are imported when the command runs.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click

from calfrehab.cli.options import audit_options, domain_errors, rules_option
from calfrehab.cli.stdout import say
from calfrehab.engine import api

FORMAT_CHOICES = ("csv", "jsonl", "json")  # engine.batch.FORMATS, without importing it
SKIPPED_SHOWN = 5  # skipped files named in the summary


@click.command()
@click.argument("inputs", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("--out", "-o", "out", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Output file, one row per decided case, in input order.")
@click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES),
              help="Output format (default: from the --out suffix: .csv, .jsonl, .json).")
@click.option("--errors", "errors_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Errors report, JSON Lines (default: beside --out, <name>.errors.jsonl).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: the number of CPUs, or 1 for fewer than 400 "
                   "cases; 1 decides in-process; at most 4 × the CPUs).")
@click.option("--dask", "dask_address", metavar="ADDRESS", default=None,
              help="Decide on a Dask cluster: a scheduler address (tcp://host:8786), or "
                   "'local' for a LocalCluster of --jobs single-threaded workers. Needs "
                   "calfrehab[dask]; inputs and outputs must be on a shared file system.")
@click.option("--resume", is_flag=True,
              help="Skip cases the audit trail already holds a decision for (same case, "
                   "same rules); their recorded decision goes to --out (which may exist).")
@click.option("--force", is_flag=True,
              help="Replace --out if it exists (never a case file or the audit trail).")
@click.option("--quiet", "-q", is_flag=True, help="No progress and no summary.")
@click.option("--checkpoint-log", "checkpoint_log", metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="After the run, append a signed checkpoint of the audit trail to this "
                   "checkpoint log (audit checkpoint --log), signed with --checkpoint-key.")
@click.option("--checkpoint-key", "checkpoint_key", metavar="KEY",
              type=click.Path(dir_okay=False, path_type=Path),
              envvar="CALFREHAB_AUDIT_KEY", show_envvar=True,
              help="The clinic's private key for --checkpoint-log (audit keygen).")
@rules_option
@audit_options
@domain_errors(exit_code=1)
def batch(inputs: tuple[Path, ...], out: Path, fmt: str | None, errors_path: Path | None,
          jobs: int | None, dask_address: str | None, resume: bool, force: bool, quiet: bool,
          checkpoint_log: Path | None, checkpoint_key: Path | None,
          rules_dir: Path | None,
          audit_path: Path | None, clinician: str | None, no_record: bool) -> None:
    """Decide many cases: files, directories (their *.json, any case) and
    JSON Lines files (one case a line), in any mix.

    Every good case is decided and written to --out (csv: one flat row;
    jsonl/json: the full decision document plus its source file and line),
    in input order. A bad case (not JSON, invalid, or an engine error) does
    not stop the batch: it goes to the errors report with its file, line
    and message. Files in a directory that are not *.json are listed as
    skipped. Every decision is recorded in the audit trail unless
    --no-record; one batch at a time records into a trail. Output files are
    replaced only when complete, and never when one would be an input, the
    audit trail, a device, a special file or a symlink (exit 2).

    CSV columns: file, line, case_id, review_date, decision_id, outcome;
    for each track (straight_knee, bent_knee, energy_storage):
    <track>_decision, <track>_next_exercise, <track>_next_load_kg,
    <track>_next_sets, <track>_next_reps, <track>_next_unit (reps,
    seconds, contacts or minutes) and <track>_reasons (that track's reasons); then condition_kind,
    reasons (those for the whole case), first_reason_rule, first_reason.
    Reasons in one cell are joined by ' | '. A text cell starting with =,
    +, -, @ is prefixed with ' so that no spreadsheet runs it as a formula.
    docs/batch.md describes each column.

    Ctrl-C stops after the cases in progress, keeps (and writes) what was
    decided, and a rerun with --resume decides the rest: each case is
    decided exactly once. Exit 0 when every case was decided, 1 when any
    was not (see the errors report), 130 when stopped by Ctrl-C.

    Example:

        calfrehab batch examples/batch/ --out week.csv
    """
    # First: the workers' forkserver imports the engine while this process
    # does (a no-op for one job, the default or Dask; refusals below still
    # come before any file is written).
    api.start_batch_workers(jobs, dask=dask_address)
    try:
        fmt = api.format_for(out, fmt)
    except api.BatchError as exc:
        raise click.UsageError(str(exc)) from None
    if resume and no_record:
        raise click.UsageError("--resume needs the audit trail; it cannot go with --no-record")
    # As every output: an existing --out only with --force (a rerun with
    # --resume rewrites the one it left), a case file or the trail never.
    # (An output that is an input, or in an input directory, is left to the
    # batch's own check, which says so.)
    target = out.resolve()
    if not any(target == p.resolve() or p.resolve() in target.parents for p in inputs):
        api.check_output(out, trail=None if no_record else audit_path)
        api.check_replace(out, force=force or resume)
    if checkpoint_log is not None:
        if no_record or dask_address is not None:
            raise click.UsageError("--checkpoint-log signs the audit trail file this batch "
                                   "records into; it cannot go with --no-record or --dask")
        if checkpoint_key is None:
            raise click.UsageError("--checkpoint-log needs --checkpoint-key (or "
                                   "CALFREHAB_AUDIT_KEY)")
        api.audit_key_check(checkpoint_key)  # a bad key fails now, not after the run

    options = api.BatchOptions(
        inputs=inputs, out=out, fmt=fmt, errors_path=errors_path, jobs=jobs,
        rules_dir=rules_dir, record=not no_record, audit_path=audit_path,
        clinician=clinician, resume=resume, dask=dask_address,
    )
    stop = threading.Event()
    reporter = _Reporter(quiet)
    restore = _on_interrupt(stop, reporter)
    try:
        with reporter:
            summary = api.run_batch(options, progress=reporter.update, stop=stop)
    except KeyboardInterrupt:
        click.echo("batch aborted: no output file was written or replaced. Decisions "
                   "recorded so far are in the audit trail; rerun with --resume to "
                   "finish.", err=True)
        sys.exit(130)
    finally:
        restore()
    if not quiet:
        say(render_summary(summary))
    if checkpoint_log is not None and checkpoint_key is not None \
            and summary.audit_path is not None:
        # After every run, complete or stopped: what was recorded is signed.
        head = api.audit_checkpoint(summary.audit_path, checkpoint_key, log=checkpoint_log)
        if not quiet:
            say(f"Checkpoint of {head['tree_size']:,} entries appended to "
                       f"{api.for_terminal(str(checkpoint_log))}.")
    if summary.interrupted:
        click.echo(
            f"Stopped by Ctrl-C after {summary.processed:,} of {summary.total:,} cases; "
            f"the decided ones are in {summary.out}. Rerun the same command with --resume "
            "to decide the rest (each case is decided once).", err=True)
        sys.exit(130)
    sys.exit(0 if summary.complete else 1)


def _on_interrupt(stop: threading.Event, reporter: _Reporter) -> Any:
    """First Ctrl-C: stop cleanly; second: abort. Returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        reporter.note("stopping after the cases in progress (Ctrl-C again to abort)")

    signal.signal(signal.SIGINT, handler)
    return lambda: signal.signal(signal.SIGINT, previous)


class _Reporter:
    """Progress on stderr: a rich progress bar on a terminal, a plain line
    every 10% (or 10 s) otherwise, nothing with --quiet."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None
        self.task: Any = None
        self.started = time.monotonic()
        self.last_line = 0.0
        self.last_step = -1

    def __enter__(self) -> _Reporter:
        if self.quiet or not sys.stderr.isatty():
            return self
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task: Any) -> Text:
                speed = task.finished_speed or task.speed
                return Text("" if speed is None else f"{speed:,.0f} cases/s")

        self.bar = Progress(
            TextColumn("deciding"), BarColumn(), MofNCompleteColumn(), Rate(),
            TextColumn("eta"), TimeRemainingColumn(),
            console=Console(stderr=True), transient=False,
        )
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.console.print(text)
        else:
            click.echo(text, err=True)

    def update(self, done: int, total: int) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            if self.task is None:
                self.task = self.bar.add_task("batch", total=total)
            self.bar.update(self.task, completed=done)
            return
        now = time.monotonic()
        step = (10 * done) // total if total else 10
        if step == self.last_step and now - self.last_line < 10 and done < total:
            return
        self.last_step, self.last_line = step, now
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        left = f", {(total - done) / rate:,.0f} s left" if rate > 0 and done < total else ""
        pct = 100 * done // total if total else 100
        click.echo(f"batch: {done:,}/{total:,} cases ({pct}%), {rate:,.0f} cases/s{left}",
                   err=True)


def render_summary(summary: Any) -> str:
    """The end-of-run summary: counts by outcome, per-track decision,
    condition, and errors."""

    def counts(counter: Any) -> str:
        return " · ".join(f"{k} {v:,}" for k, v in sorted(counter.items())) or "none"

    done = summary.decided + summary.resumed
    lines = [
        f"Decided {done:,} of {summary.total:,} cases in {summary.elapsed_s:,.1f} s "
        f"({summary.rate:,.0f} cases/s, {summary.jobs} "
        f"{'Dask worker' if summary.backend == 'dask' else 'job'}"
        f"{'s' if summary.jobs != 1 else ''}); "
        f"{summary.errors:,} error{'s' if summary.errors != 1 else ''}.",
    ]
    if summary.resumed:
        lines.append(f"  {summary.resumed:,} already in the audit trail (resumed, not "
                     f"decided again); {summary.decided:,} decided now.")
    lines.append(f"  outcome         {counts(summary.by_outcome)}")
    for track, counter in summary.by_track.items():
        lines.append(f"  {track:<15} {counts(counter)}")
    lines.append(f"  condition       {counts(summary.by_condition)}")
    lines.append(f"  errors          {counts(summary.errors_by_kind)}")
    if summary.skipped:
        shown = ", ".join(summary.skipped_shown(SKIPPED_SHOWN))
        more = len(summary.skipped) - SKIPPED_SHOWN
        lines.append(f"Skipped {len(summary.skipped):,} file"
                     f"{'s' if len(summary.skipped) != 1 else ''} that "
                     f"{'are' if len(summary.skipped) != 1 else 'is'} not a case file "
                     f"(*.json): {shown}{f', and {more:,} more' if more > 0 else ''}.")
    lines.append(f"Wrote {summary.out} ({summary.format}, {done:,} rows) and "
                 f"{summary.errors_path} ({summary.errors:,} errors).")
    if summary.audit_path is not None and summary.backend == "dask":
        lines.append(f"Recorded {summary.recorded:,} decisions in the sharded trail "
                     f"{summary.audit_path} ({summary.partitions:,} partitions; "
                     "manifest.json chains the shards).")
    elif summary.audit_path is not None:
        lines.append(f"Recorded {summary.recorded:,} decisions in {summary.audit_path}.")
    else:
        lines.append("Not recorded in the audit trail (--no-record).")
    return "\n".join(lines)
