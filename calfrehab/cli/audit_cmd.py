"""The audit commands: list, show, verify, override, export, replay, migrate.

Thin commands over :mod:`calfrehab.engine.audit.views`; this module only
turns its data into text for an 80-column terminal.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from calfrehab.cli.options import (
    audit_option,
    domain_errors,
    json_option,
    output_option,
    person_text,
    rules_option,
)
from calfrehab.cli.render import (
    COLOURS,
    DECISION_WORDS,
    TRACK_TITLES,
    dose,
    short_citation,
    use_colour,
    wrap,
)
from calfrehab.cli.stdout import say
from calfrehab.engine import api
from calfrehab.engine.api import DECISION_KINDS, TRACKS, EntryKind, ExportFormat

F = TypeVar("F", bound=Callable[..., Any])

TRACK_SHORT = {"straight_knee": "sk", "bent_knee": "bk", "energy_storage": "es"}
# Four letters or fewer, so that the three tracks fit one column of the list.
DECISION_SHORT = {
    "progress": "prog", "hold": "hold", "regress": "regr", "start": "strt",
    "not_started": "-", "refer": "refr",
}


# ``--audit PATH`` as everywhere; verify also takes a sharded trail's directory.
audit_path_option = audit_option()
audit_location_option = audit_option(
    sharded=True,
    help="Audit trail database, or the directory of a sharded trail "
         "(default: calfrehab.toml's [trail] path, else "
         "~/.local/share/calfrehab/audit.sqlite3).")


# A value longer than this (a pasted essay as an override reason) is clipped
# on the terminal; --json and export give it whole.
_SHOWN_LIMIT = 2000


def _safe(value: Any) -> Any:
    """Every string in the data, from a case file, a decision or a person
    (a clinician's name, an override reason), made safe for a terminal:
    control characters, ANSI/OSC sequences, newlines and bidi overrides
    become visible escapes (issue 16 item 11). Applied to the data before
    it is rendered, so the renderers' own colours are untouched."""
    if isinstance(value, str):
        return api.for_terminal(value, limit=_SHOWN_LIMIT)
    if isinstance(value, dict):
        return {k: _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value]
    return value


def _integrity_warnings(data: Mapping[str, Any]) -> bool:
    """Print why an entry about to be used cannot be trusted (standard
    error); True when it can."""
    check = data.get("integrity") or {"ok": True, "problems": []}
    for problem in check["problems"]:
        click.echo(f"WARNING: {api.for_terminal(problem, limit=_SHOWN_LIMIT)}", err=True)
    if not check["ok"]:
        click.echo("WARNING: this entry fails its checks: it may have been altered since it "
                   "was recorded; run `calfrehab audit verify`.", err=True)
    return bool(check["ok"])


def _dump(data: Any) -> None:
    say(json.dumps(data, indent=2, ensure_ascii=False))


def _when(recorded_at: str, seconds: bool = False) -> str:
    """``2026-11-20T14:03:12.123456Z`` as ``2026-11-20 14:03`` (UTC)."""
    moment = datetime.fromisoformat(recorded_at)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _cut(text: str | None, width: int) -> str:
    text = text or "-"
    return text if len(text) <= width else text[: width - 1] + "…"


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _word(decision: object) -> str:
    return DECISION_WORDS.get(decision, str(decision)) if isinstance(decision, str) else "?"


@dataclass(frozen=True)
class _StoredReason:
    """A reason as a stored decision document holds it (a mapping, perhaps
    from an older rule base), in the shape the explanation's wording reads."""

    rule: str
    text: str
    sources: list[str]
    track: str | None

    @classmethod
    def of(cls, reason: Mapping[str, Any]) -> _StoredReason:
        sources = reason.get("sources")
        track = reason.get("track")
        return cls(rule=str(reason.get("rule", "")), text=str(reason.get("text", "")),
                   sources=[str(s) for s in sources] if isinstance(sources, list) else [],
                   track=track if isinstance(track, str) else None)


def _rx(rx: Mapping[str, Any] | None) -> str:
    if rx is None:
        return "-"
    # A stored `current` has only the id; show the plain name the rules in
    # force give it (the stored `next` carries its own).
    name = rx.get("name") or _exercise_name(str(rx.get("exercise")))
    return f"{name}, {dose(rx)}"


@functools.cache
def _exercise_names() -> dict[str, str]:
    try:
        return {k: v.name for k, v in api.load_ladder().exercises.items()}
    except api.CalfrehabError:
        return {}  # a name is a nicety; the id is shown instead


def _exercise_name(exercise: str) -> str:
    return _exercise_names().get(exercise, exercise)


@click.group()
def audit() -> None:
    """Read, check and annotate the audit trail of decisions.

    Every `calfrehab next` records its decision, with the case it was made
    for, in an append-only SQLite file whose entries are hash-chained.
    These commands list and show what was decided, verify that nothing was
    changed since, record a clinician's override, export the trail, and
    replay a stored case under the current rules. Reading never creates a
    trail. See docs/audit-trail.md for the format.

    Example:

        calfrehab audit list --case RUN-0001 --audit ./clinic-audit.sqlite3
    """


# ---------------------------------------------------------------- list


@audit.command(name="list")
@click.option("--case", "case_id", metavar="ID", help="Only this case's entries.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="Only entries recorded on or after this date (UTC).")
@click.option("--kind", type=click.Choice(["decision", "override", "accepted"]),
              help="Only decisions, only overrides, or only acceptances.")
@audit_path_option
@json_option
@domain_errors(exit_code=1)
def list_(case_id: str | None, since: datetime | None, kind: EntryKind | None,
          audit_path: Path | None, as_json: bool) -> None:
    """List the entries of the audit trail, oldest first.

    Each row shows the entry's seq, when it was recorded (UTC), the start
    of the decision id (enough for `audit show`), the case, the decision
    per track (straight knee / bent knee / energy storage, or REFER), the
    clinician and, for a decision, how many overrides it has. An override
    row shows the track and decision the clinician chose; an accepted row,
    a decision (or its override) applied to the case's programme.

    Example:

        calfrehab audit list --since 2026-11-01 --kind decision
    """
    with api.open_trail(audit_path) as trail:
        rows = api.list_audit(trail, case_id, since.date() if since else None, kind)
    if as_json:
        _dump(rows)
        return
    if not rows:
        say("no entries")
        return
    say("\n".join(_list_table(_safe(rows))))


def _list_table(rows: list[dict[str, Any]]) -> list[str]:
    # 4 + 16 + 8 + 10 + 16 + 10 + 3 columns and 6 gaps of 2: 79 characters.
    fmt = "{:>4}  {:<16}  {:<8}  {:<10}  {:<16}  {:<10}  {:<3}"
    lines = [fmt.format("seq", "recorded (UTC)", "decision", "case", "sk/bk/es",
                        "clinician", "ovr").rstrip()]
    for r in rows:
        if r["kind"] == "decision":
            if r.get("outcome") == "refer":
                what = "REFER"
            else:
                what = "/".join(DECISION_SHORT.get(d or "", "?") for d in r["tracks"].values())
            ovr = str(r["overrides"]) if r["overrides"] else ""
        elif r["kind"] == "override":
            o = r["override"]
            # "+rx": the override carries the clinician's own prescription.
            rx = " +rx" if o.get("prescriptions") else ""
            what = (f"{'ovr' if rx else 'override'} {TRACK_SHORT.get(o['track'], '?')}→"
                    f"{DECISION_SHORT.get(o['decision'], '?')}{rx}" if o.get("track")
                    else f"override (all){rx}")
            ovr = ""
        else:
            what = ("accepted (ovr)" if r["accepted"].get("override_entry_id")
                    else "accepted")
            ovr = ""
        lines.append(fmt.format(r["seq"], _when(r["recorded_at"]), r["decision_id"][:8],
                                _cut(r["case_id"], 10), _cut(what, 16),
                                _cut(r["clinician"], 10), ovr).rstrip())
    decisions = sum(r["kind"] == "decision" for r in rows)
    accepted = sum(r["kind"] == "accepted" for r in rows)
    lines += [
        "",
        f"{_count(len(rows), 'entry', 'entries')} ({_count(decisions, 'decision')}, "
        f"{_count(len(rows) - decisions - accepted, 'override')}"
        + (f", {accepted} accepted" if accepted else "") + ")",
        "sk/bk/es: straight knee / bent knee / energy storage; prog progress, regr",
        "regress, strt start, - not started; ovr: overrides of the decision.",
        "Details: calfrehab audit show DECISION",
    ]
    return lines


# ---------------------------------------------------------------- show


@audit.command()
@click.argument("decision_id")
@audit_path_option
@json_option
@domain_errors(exit_code=1)
def show(decision_id: str, audit_path: Path | None, as_json: bool) -> None:
    """Show a recorded decision as it was made, its overrides, and what was
    accepted into the patient's programme (decision -> override ->
    accepted).

    DECISION_ID is the full id or a unique prefix of at least 4 characters.
    The case stored with the decision is checked against the case format
    and against the hash the decision names; the tracks, reasons and
    sources are those recorded, not recomputed (for that, `audit replay`).
    The rule base version and sha256 and the engine version recorded with
    the decision are shown. The entry's own hashes and links are checked
    first: an entry that fails them is still shown, with a warning on
    standard error, and the exit status is 1.

    Example:

        calfrehab audit show 48d0d212
    """
    with api.open_trail(audit_path) as trail:
        data = api.show_decision(trail, decision_id)
    if as_json:
        _dump(data)
    else:
        say(_render_show(_safe(data), colour=use_colour()))
    if not _integrity_warnings(data):
        sys.exit(1)


def _requester_lines(requester: Mapping[str, Any] | None, indent: str) -> list[str]:
    """Who asked, when a system did (a CDS Hooks call)."""
    if not requester:
        return []
    parts = [f"{label} {requester[key]}" for key, label in (
        ("hookInstance", "hook"), ("iss", "issuer"), ("sub", "subject"),
        ("fhirServer", "FHIR server")) if requester.get(key)]
    return wrap("asked by " + ", ".join(parts), indent + "  ", indent)


def _render_show(data: dict[str, Any], colour: bool) -> str:
    doc = data["decision"]
    entry = data["entry"]
    case = data["case"]
    summary = case["summary"]

    def style(text: str, decision: object) -> str:
        fg = COLOURS.get(decision) if isinstance(decision, str) else None
        return click.style(text, fg=fg, bold=True) if colour and fg else text

    who = f" by {entry['clinician']}" if entry["clinician"] else ""
    asked = _requester_lines(entry.get("requester"), "")
    condition = (f"condition {summary['condition']}, side {summary['side']}"
                 if summary["condition"] else "")
    lines = [
        f"Decision {data['decision_id']}",
        f"Recorded {_when(entry['recorded_at'], seconds=True)} UTC{who} · audit entry "
        f"{entry['seq']}",
        f"Case {data['case_id']} · review {data['review_date']}"
        + (f" · {condition}" if condition else ""),
        *asked,
        "Decision support: the treating clinician decides.",
    ]
    if data["overrides"]:
        n = len(data["overrides"])
        lines.append(style(f"OVERRIDDEN by a clinician ({n} override{'s' if n > 1 else ''}, "
                           "see below).", "hold"))
    lines.append("")
    tracks = doc.get("tracks") if isinstance(doc.get("tracks"), Mapping) else {}
    if doc.get("outcome") == "refer":
        lines += [style("REFER: stop progression and refer. No exercise is prescribed.",
                        "refer"), ""]
    else:
        for track in TRACKS:
            td = tracks.get(track)
            if not isinstance(td, Mapping):
                continue
            decision = td.get("decision")
            lines.append(f"{TRACK_TITLES[track]}: {style(_word(decision), decision)}")
            if isinstance(td.get("current"), Mapping):
                lines += wrap(_rx(td["current"]), "        ", "  now   ")
            nxt = td.get("next")
            if isinstance(nxt, Mapping):
                lines += wrap(f"{nxt.get('name') or nxt.get('exercise')}, {dose(nxt)}",
                               "        ", "  next  ")
                extra = "; ".join(str(nxt[k]) for k in ("tempo", "frequency", "surface")
                                  if nxt.get(k))
                if extra:
                    lines += wrap(extra, "        ")
                for cue in nxt.get("cues") or []:
                    lines += wrap(str(cue), "          ", "        - ")
            elif decision == "regress":
                lines.append("  next  pause this track")
            lines.append("")
    lines.append("Why")
    # A reason one rule gives alike for several tracks is said once, as
    # `next` says it; the stored document (--json) keeps every one.
    in_play = [t for t, td in tracks.items()
               if isinstance(td, Mapping) and td.get("current") is not None]
    stored = [_StoredReason.of(r) for r in doc.get("reasons") or [] if isinstance(r, Mapping)]
    for reason in api.merge_reasons(stored, {}, in_play):
        cites = "; ".join(short_citation(s) for s in reason.sources)
        lines += wrap(f"{reason.text} [{cites}]", "    ", "  - ")
    lines += ["", "Overrides"]
    if not data["overrides"]:
        lines.append("  none recorded")
    for o in data["overrides"]:
        what = (f"{TRACK_TITLES.get(o['track'], o['track'])} → {_word(o['decision'])}"
                if o["track"] else "the decision as a whole")
        lines += wrap(f"{_when(o['recorded_at'])} UTC · {o['clinician']} · {what}",
                       "      ", "  - ")
        lines += wrap(f"reason: {o['reason']}", "      ")
        for track, rx in (o.get("prescriptions") or {}).items():
            title = TRACK_TITLES.get(track, track)
            lines += wrap(f"prescribes {title}: " + ("nothing (track emptied)" if rx is None
                                                     else _rx(rx)), "      ")
        lines += _requester_lines(o.get("requester"), "      ")
    if data.get("accepted"):
        lines += ["", "Accepted into the programme"]
    by_id = {o["entry_id"]: o for o in data["overrides"]}
    for a in data.get("accepted") or []:
        applied = a.get("override_entry_id")
        if applied:
            seq = by_id.get(applied, {}).get("seq", "?")
            what = f"the override at audit entry {seq}"
        else:
            what = "the decision as recorded"
        who = f" · {a['clinician']}" if a.get("clinician") else ""
        lines += wrap(f"{_when(a['recorded_at'])} UTC{who} · applied {what}", "      ", "  - ")
        program = a.get("program") if isinstance(a.get("program"), Mapping) else {}
        for track in TRACKS:
            rx = program.get(track)
            lines += wrap(f"{TRACK_TITLES[track]}: "
                          + (_rx(rx) if isinstance(rx, Mapping) else "nothing loaded"),
                          "      ")
        lines += wrap(f"programme sha256 {a.get('program_sha256')}", "      ")
        lines += _requester_lines(a.get("requester"), "      ")
    rb, engine = data["rulebase"], data["engine"]
    durable = f" (durable-rules {engine['durable_rules']})" if engine["durable_rules"] else ""
    lines += [
        "",
        "Recorded with",
        f"  rule base    {rb['name'] + ' ' if rb['name'] else ''}{rb['version']}",
        f"  sha256       {rb['sha256']}",
        f"  engine       calfrehab {engine['version'] or 'unknown'}{durable}",
    ]
    if case["sha256_matches"]:
        lines.append(f"  case sha256  {case['sha256'][:12]}…, the case this decision names")
    else:
        lines += wrap("WARNING: the stored case does not hash to the case_sha256 the "
                       "decision names", " " * 15, "  case sha256  ")
    if not case["valid"]:
        lines += wrap(f"WARNING: the stored case does not pass the current case format "
                       f"({len(case['errors'])} error(s)):", "  ", "  ")
        for e in case["errors"]:
            got = f" (got {e['value']})" if "value" in e else ""
            lines += wrap(f"{e['path'] or '(document)'}: {e['message']}{got}", "      ",
                           "    - ")
    return "\n".join(lines)


# -------------------------------------------------------------- verify


def checkpoint_file_option(fn: F) -> F:
    return click.option(
        "--checkpoint", "checkpoint", type=click.Path(dir_okay=False, path_type=Path),
        metavar="FILE",
        help="A checkpoint (audit checkpoint --out) or a checkpoint log (--log).",
    )(fn)


def public_key_option(fn: F) -> F:
    return click.option(
        "--public-key", "public_key", type=click.Path(dir_okay=False, path_type=Path),
        metavar="FILE", envvar="CALFREHAB_AUDIT_PUBLIC_KEY", show_envvar=True,
        help="The clinic's public key (audit keygen's KEY.pub): the checkpoints must be "
             "signed with it.",
    )(fn)


@audit.command()
@click.option("--shard", type=click.IntRange(0, 9_999_999), metavar="N",
              help="With a sharded trail: check only partition N's shard.")
@checkpoint_file_option
@public_key_option
@audit_location_option
@json_option
@domain_errors(exit_code=1)
def verify(shard: int | None, checkpoint: Path | None, public_key: Path | None,
           audit_path: Path | None, as_json: bool) -> None:
    """Check the hash chain: that no entry was changed, removed or added.

    Recomputes every entry's hash (and every stored document's) in order
    and compares the end with the count and last hash the trail keeps.
    Exit 0 and print the last hash when intact (write it down elsewhere:
    it is what catches a rewritten tail); exit 1 naming the first bad
    entry and the problem otherwise. --audit may be a sharded trail's
    directory (one shard per batch partition), or the file given to
    `batch --dask` (its shards are in FILE.shards/): then the manifest's
    chain of shard heads, every shard and the file (if any) are checked,
    or one shard with --shard.

    With --checkpoint (a checkpoint or a checkpoint log kept away from the
    trail), it also checks that the trail still holds what each checkpoint
    signed: a trail cut short, rewritten or forked since fails, as does a
    checkpoint not signed with --public-key when that is given.

    Example:

        calfrehab audit verify --checkpoint /records/clinic.log \\
            --public-key clinic.pub
    """
    report = api.verify_audit(audit_path, shard, checkpoint, public_key)
    if as_json:
        _dump(report)
        sys.exit(0 if report["ok"] else 1)
    report = _safe(report)
    if report["sharded"]:
        _render_sharded_verify(report, shard)
    elif report["ok"]:
        say(f"ok: {report['entries_checked']} entries, chain intact "
                   f"(last hash {report['last_hash']})")
        _render_checkpoint_check(report.get("checkpoint"))
    elif report.get("checkpoint") and not report["checkpoint"]["ok"] and report["problem"] is None:
        say(f"FAILED: audit trail {report['path']} does not hold what its checkpoints "
                   f"signed: {report['checkpoint']['problem']}")
    else:
        where = (f"at entry seq {report['first_bad_seq']}"
                 if report["first_bad_seq"] is not None else "in its meta table")
        say(f"FAILED: audit trail {report['path']} fails verification {where}: "
                   f"{report['problem']}")
        good = (report["first_bad_seq"] or report["entries_checked"] + 1) - 1
        if good > 0:
            say(f"entries 1-{good} are intact (hash of entry {good}: "
                       f"{report['last_hash']})")
    sys.exit(0 if report["ok"] else 1)


def _render_checkpoint_check(check: Mapping[str, Any] | None) -> None:
    if not check:
        return
    pinned = "the pinned key" if check["pinned"] else (
        f"key {check['key_id'][:16]}… (not pinned: give --public-key)")
    say(f"ok: {_count(check['checked'], 'checkpoint')} hold; the latest signed "
               f"{check['latest_size']} entries at {check['latest_time']}, by {pinned}")


def _render_sharded_verify(report: Mapping[str, Any], shard: int | None) -> None:
    shards = report["shards"]
    if report["ok"] and shard is not None:
        one = shards[str(shard)]
        say(f"ok: shard {shard}: {one['entries_checked']} entries, chain intact "
                   f"(last hash {one['last_hash']})"
                   + (", as the manifest records" if report["manifest_head"] else ""))
    elif report["ok"]:
        trail = " and the trail file" if "trail" in report else ""
        say(f"ok: {report['entries_checked']} entries in {len(shards)} shards{trail}, "
                   f"every chain intact (manifest head {report['manifest_head']})")
    else:
        say(f"FAILED: sharded audit trail {report['path']} fails verification: "
                   f"{report['problem']}")
        good = [n for n, r in shards.items() if r["ok"] and n != str(report["bad_shard"])]
        if good:
            say(f"shards checked and intact: {', '.join(good)}")


# --------------------------------------------------------- checkpoints


@audit.command()
@click.argument("key", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@domain_errors(exit_code=1)
def keygen(key: Path, as_json: bool) -> None:
    """Make the clinic's key for signing checkpoints of the trail.

    Writes an Ed25519 private key to KEY (readable by its owner only) and
    its public key to KEY.pub; neither may exist. Keep KEY where only the
    person or service that signs checkpoints can read it, apart from the
    trail; give KEY.pub to whoever checks the trail (an auditor, the
    records officer).

    Example:

        calfrehab audit keygen ~/.config/calfrehab/clinic-audit.key
    """
    data = api.audit_keygen(key)
    if as_json:
        _dump(data)
        return
    data = _safe(data)
    say(f"wrote the private key {data['private_key']} (owner-only) and the public "
               f"key {data['public_key']}")
    say(f"key id {data['key_id']}")


@audit.command()
@click.option("--key", required=True, type=click.Path(dir_okay=False, path_type=Path),
              envvar="CALFREHAB_AUDIT_KEY", show_envvar=True, metavar="KEY",
              help="The clinic's private key (audit keygen).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write the checkpoint to FILE (an existing FILE only with --force).")
@click.option("--log", "log", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Append the checkpoint to the checkpoint log FILE (one per line).")
@click.option("--force", is_flag=True, help="Replace an existing --out file.")
@audit_path_option
@json_option
@domain_errors(exit_code=1)
def checkpoint(key: Path, out: Path | None, log: Path | None, force: bool,
               audit_path: Path | None, as_json: bool) -> None:
    """Sign a checkpoint of the trail: its entry count, Merkle root, time.

    The checkpoint (a signed tree head, as in Certificate Transparency)
    names the trail, how many entries it has, the RFC 6962 Merkle tree
    hash over them and its last entry hash, the time, and is signed with
    the clinic's Ed25519 key. Kept away from the trail (--out to a file the
    records officer keeps, or --log to append to a checkpoint log), it lets
    `audit verify --checkpoint` show a trail cut short, rewritten or forked
    since, and `audit prove` prove one entry against it. Without --out or
    --log the checkpoint is printed.

    Example:

        calfrehab audit checkpoint --key clinic.key --log /records/clinic.log
    """
    doc = api.audit_checkpoint(audit_path, key, out=out, log=log, force=force)
    if as_json or (out is None and log is None):
        _dump(doc)
        return
    where = " and ".join(str(p) for p in (out, log) if p is not None)
    say(api.for_terminal(
        f"checkpoint of {doc['tree_size']} entries (root {doc['root_hash'][:16]}…) signed at "
        f"{doc['timestamp']} by key {doc['key_id'][:16]}…, written to {where}", limit=None))


@audit.command()
@click.argument("entry")
@checkpoint_file_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write the proof to FILE instead of standard output.")
@audit_path_option
@domain_errors(exit_code=1)
def prove(entry: str, checkpoint: Path | None, out: Path | None,
          audit_path: Path | None) -> None:
    """Print a proof that one entry is in the trail a checkpoint signs.

    ENTRY is an entry's seq, its entry id, or a decision id (or unique
    prefix). The proof (JSON) holds the entry's hashed fields, the RFC
    6962 audit path from it to the Merkle root, and the checkpoint (the
    latest of a log given with --checkpoint): an auditor checks it with
    `audit check-proof`, without the trail.

    Example:

        calfrehab audit prove 48d0d212 --checkpoint /records/clinic.log
    """
    with api.open_trail(audit_path) as trail:
        proof = api.audit_prove(trail, entry, checkpoint)
    text = json.dumps(proof, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        say(text, nl=False)
    else:
        api.write_output(out, text, trail=audit_path)
        click.echo(f"wrote the proof of entry {proof['seq']} to {api.for_terminal(str(out))}",
                   err=True)


@audit.command(name="check-proof")
@click.argument("proof", type=click.Path(dir_okay=False, path_type=Path))
@checkpoint_file_option
@public_key_option
@json_option
@domain_errors(exit_code=1)
def check_proof(proof: Path, checkpoint: Path | None, public_key: Path | None,
                as_json: bool) -> None:
    """Check an inclusion proof without the trail.

    Checks that the entry's fields hash to the entry hash, that the audit
    path leads from it to the Merkle root, and that the checkpoint (the
    proof's own, or the published one given with --checkpoint) signs that
    root, with --public-key's key when given. Exit 0 when all hold, 1
    naming what fails.

    Example:

        calfrehab audit check-proof proof.json --public-key clinic.pub
    """
    result = api.audit_check_proof(proof, checkpoint, public_key)
    if as_json:
        _dump(result)
        return
    result = _safe(result)
    pinned = "the pinned key" if result["pinned"] else (
        f"key {result['key_id'][:16]}… (not pinned: give --public-key)")
    say(f"ok: entry seq {result['seq']} (a {result['kind']} entry, decision "
               f"{result['decision_id']}, case {result['case_id']}) is in the trail of "
               f"{result['tree_size']} entries signed at {result['timestamp']} by {pinned}")


# ------------------------------------------------------------- migrate


@audit.command()
@click.option("--chunk", type=click.IntRange(1, 1_000_000), default=2000, show_default=True,
              help="Entries copied per transaction (what an interruption can lose).")
@click.option("--no-vacuum", is_flag=True,
              help="Do not rewrite the file afterwards to give back the space format 1 took.")
@audit_path_option
@json_option
@domain_errors(exit_code=1)
def migrate(chunk: int, no_vacuum: bool, audit_path: Path | None, as_json: bool) -> None:
    """Upgrade an audit trail to the current format (4), in place.

    Format 4 stores the documents as zstd frames; a format-3 trail is
    still appended to (with zlib) until it is upgraded, and formats 1 and 2
    are only read. The trail is verified first (one that fails is left as
    it is, exit 1), every document is recompressed and checked against the
    bytes it held, and the result is verified against the head it started
    from before it commits, in one transaction (interrupted, the trail is
    as it was). A format-1 trail is copied in chunks first (an interrupted
    copy carries on where it stopped when run again) and keeps its format-1
    hashes; no other hash changes, so a head written down before still
    checks out. On a current trail it only brings the indexes up to date
    (no entry changes), or changes nothing. Every audit
    command reads every format; recording needs format 3 or 4.

    Example:

        calfrehab audit migrate --audit ./clinic-audit.sqlite3
    """
    report = api.migrate_audit(audit_path, chunk, not no_vacuum)
    if as_json:
        _dump(report)
    elif not report["migrated"]:
        done = ("its indexes brought up to date (no entry changed)"
                if report.get("indexes_updated") else "nothing to do")
        say(f"{report['path']} is already format {report['to_version']} "
                   f"({report['entries']} entries); {done}")
    else:
        resumed = (f", carrying on after entry {report['resumed_at']}"
                   if report["resumed_at"] else "")
        say(f"migrated {report['path']} from format {report['from_version']} to "
                   f"{report['to_version']}: {report['entries']} entries{resumed}; "
                   f"{report['bytes_before']:,} -> {report['bytes_after']:,} bytes")
        if report["v1_last_hash"]:
            say(f"format-1 head (still checkable): {report['v1_last_hash']}")
        else:
            say("every entry keeps its hash: a head written down before still holds")
        say(f"new head: entry {report['entries']}, hash {report['last_hash']}")


# ------------------------------------------------------------ override


@audit.command()
@click.argument("decision_id")
@click.option("--clinician", required=True, callback=person_text,
              help="Who overrides the decision.")
@click.option("--reason", required=True, callback=person_text, help="Why, in a sentence.")
@click.option("--track", type=click.Choice(TRACKS),
              help="The track overridden (with --decision).")
@click.option("--decision", "track_decision", type=click.Choice(DECISION_KINDS),
              help="What the clinician decided for --track.")
@click.option("--exercise", metavar="ID",
              help="The clinician's own prescription for --track: the exercise (an id of "
                   "the track's ladder), with --sets and --reps.")
@click.option("--sets", type=int, metavar="N", help="Sets of the prescribed exercise (1-10).")
@click.option("--reps", type=int, metavar="N",
              help="Repetitions (or seconds of a hold) per set (1-50).")
@click.option("--load-kg", "load_kg", type=float, metavar="KG",
              help="Added load in kg (default 0).")
@audit_path_option
@json_option
@domain_errors(exit_code=1)
def override(decision_id: str, clinician: str, reason: str, track: str | None,
             track_decision: str | None, exercise: str | None, sets: int | None,
             reps: int | None, load_kg: float | None, audit_path: Path | None,
             as_json: bool) -> None:
    """Record a clinician's override of a recorded decision.

    The decision entry is never changed: the override is a new entry that
    points at it. With --track and --decision it records what the clinician
    chose for that track; without them, disagreement with the decision as
    a whole (e.g. a referral the rules did not make). With --exercise,
    --sets and --reps (and --load-kg) it also records the clinician's own
    prescription for --track, which accepting the decision applies.
    DECISION_ID may be a unique prefix. Prints the new entry's id. A shard
    of a sharded trail takes no overrides: give the batch's --audit file.

    Example:

        calfrehab audit override 48d0d212 --clinician "Dr A. Berg" \\
            --reason "pain 6/10 next morning" --track bent_knee --decision hold \\
            --exercise seated_calf_raise --sets 3 --reps 15
    """
    prescriptions = _prescription_option(track, exercise, sets, reps, load_kg)
    # One writable connection, opened for this write (issue 27 item 1).
    entry = api.override_decision(audit_path, decision_id, clinician, reason, track,
                                  track_decision, prescriptions=prescriptions)
    if as_json:
        _dump(entry)
    else:
        entry = _safe(entry)
        say(f"recorded override {entry['entry_id']} (audit entry {entry['seq']}) "
                   f"of decision {entry['decision_id']}, case {entry['case_id']}")


def _prescription_option(track: str | None, exercise: str | None, sets: int | None,
                         reps: int | None, load_kg: float | None
                         ) -> dict[str, dict[str, Any]] | None:
    given = {"--exercise": exercise, "--sets": sets, "--reps": reps, "--load-kg": load_kg}
    if all(v is None for v in given.values()):
        return None
    if track is None:
        raise click.UsageError("a prescription (--exercise, --sets, --reps, --load-kg) is "
                               "for one track: give --track and --decision too")
    missing = [k for k in ("--exercise", "--sets", "--reps") if given[k] is None]
    if missing:
        raise click.UsageError(f"a prescription needs {', '.join(missing)} as well")
    rx: dict[str, Any] = {"exercise": exercise, "sets": sets, "reps": reps}
    if load_kg is not None:
        rx["load_kg"] = load_kg
    return {track: rx}


# -------------------------------------------------------------- export


@audit.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl",
              show_default=True, help="jsonl: every field; csv: one flat row per entry.")
@output_option("--out", help="Write to FILE (atomically) instead of standard output.")
@audit_path_option
@domain_errors(exit_code=1)
def export(fmt: ExportFormat, out: Path | None, audit_path: Path | None) -> None:
    """Export every entry of the audit trail, oldest first.

    jsonl gives one JSON object per line with every stored field and the
    case and decision documents, enough to re-check the hash chain
    elsewhere; csv gives a header and one flat row per entry (outcome,
    per-track decisions, override fields, versions, hashes) for a
    spreadsheet. With --out the file is replaced only once complete.

    Example:

        calfrehab audit export --format csv --out audit-2026-11.csv
    """
    with api.open_trail(audit_path) as trail:
        if out is not None:
            n = api.export_audit(trail, fmt, out)
            click.echo(f"exported {n} entries to {out}", err=True)
            return
        try:
            trail.export(fmt, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:
            # `audit export | head`: the reader left; not an error.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)


# -------------------------------------------------------------- replay


@audit.command()
@click.argument("decision_id")
@rules_option
@audit_path_option
@json_option
@domain_errors(exit_code=1)
def replay(decision_id: str, rules_dir: Path | None, audit_path: Path | None,
           as_json: bool) -> None:
    """Decide a recorded case again with the current rules and compare.

    Shows, per track, the decision then and now (with the next exercise and
    dose), whether the rule base differs from the one recorded, and the
    rules that fired then but not now and the other way round. Ends with
    "same decision" or "differs"; exit 0 either way. Nothing is recorded.
    The entry's own hashes and links are checked first: a replay of an
    entry that fails them carries a warning on standard error and exits 1.

    Example:

        calfrehab audit replay 55609168 --rules ./my-clinic-rules
    """
    with api.open_trail(audit_path) as trail:
        data = api.replay_decision(trail, decision_id, rules_dir)
    if as_json:
        _dump(data)
    else:
        say(_render_replay(_safe(data)))
    if not _integrity_warnings(data):
        sys.exit(1)


def _rulebase_line(rb: Mapping[str, Any]) -> str:
    sha = rb.get("sha256") or "?"
    return f"{rb.get('name') or 'rule base'} {rb.get('version')} (sha256 {sha[:12]})"


def _rulebase_note(rb: Mapping[str, Any]) -> str:
    if not rb["changed"]:
        return "  the same rule base as recorded"
    if rb["then"].get("version") == rb["now"].get("version"):
        return ("  the rule base differs from the one recorded (same version label: its "
                "files changed)")
    return "  the rule base differs from the one recorded"


def _track_now(state: Mapping[str, Any]) -> str:
    word = _word(state["decision"])
    return word if state["next"] is None else f"{word} → {_rx(state['next'])}"


def _render_replay(data: dict[str, Any]) -> str:
    rb = data["rulebase"]
    lines = [
        f"Replay of decision {data['decision_id']}",
        f"Case {data['case_id']} · review {data['review_date']} · recorded "
        f"{_when(data['entry']['recorded_at'])} UTC",
        f"Rules then  {_rulebase_line(rb['then'])}",
        f"Rules now   {_rulebase_line(rb['now'])}",
        _rulebase_note(rb),
    ]
    ev = data["engine_version"]
    if ev["then"] != ev["now"]:
        lines.append(f"Engine      calfrehab {ev['then']} then, {ev['now']} now")
    oc = data["outcome"]
    lines += ["", f"Outcome: {oc['then']} then, {oc['now']} now"
              + ("" if oc["then"] == oc["now"] else "  (differs)"), ""]
    for t in data["tracks"]:
        label = "same" if t["same"] else "differs"
        title = TRACK_TITLES.get(t["track"], t["track"])
        lines.append(f"{title}: {label}")
        lines += wrap(_track_now(t["then"]), "        ", "  then  ")
        lines += wrap(_track_now(t["now"]), "        ", "  now   ")
    lines.append("")
    gone, new = data["fired_then_not_now"], data["fired_now_not_then"]
    if not gone and not new:
        lines.append("The same rules fired then and now.")
    if gone:
        lines.append(f"Rules that fired then but not now ({len(gone)})")
        lines += [f"  - {r}" for r in gone]
    if new:
        lines.append(f"Rules that fire now but did not then ({len(new)})")
        lines += [f"  - {r}" for r in new]
    lines.append("")
    if data["same"]:
        lines.append("Result: same decision")
    else:
        changed = [t["track"] for t in data["tracks"]
                   if not t["same"]]
        if oc["then"] != oc["now"]:
            changed.insert(0, "outcome")
        lines.append(f"Result: differs ({', '.join(changed)})")
    return "\n".join(lines)
