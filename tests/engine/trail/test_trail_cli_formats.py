"""The audit commands on format-2, format-1, read-only and sharded trails,
and on entries that were tampered with (issue 15 item 3, issue 16 items
13-15). The trails are recorded from the repository's own examples/."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import REPO
from test_trail_storage import make_case, make_decision, pair, raw
from trail_v1 import write_v1_trail

from calfrehab.cli.main import cli
from calfrehab.engine.audit.views import open_trail
from calfrehab.engine.trail.audit import AuditError, AuditTrail, prepare_entry
from calfrehab.engine.trail.chain import entry_hash
from calfrehab.engine.trail.shards import open_shard, shard_path, write_manifest

EXAMPLES = REPO / "examples"
CASES = ("runner-stuck-on-two-leg.json", "achilles-midportion-two-leg-to-single-leg.json",
         "calf-strain-soleus-pain-3-not-pain-free.json")


def run(args: Sequence[object]) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trail") / "audit.sqlite3"
    for name in CASES:
        result = run(["next", EXAMPLES / name, "--audit", path, "--clinician", "Dr Ana Berg"])
        assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def trail_path(template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "audit.sqlite3"
    shutil.copy(template, target)
    return target


def first_decision(path: Path) -> str:
    with AuditTrail(path, readonly=True) as trail:
        return trail.entries()[0].decision_id


def rewrite_with_rehash(path: Path, seq: int, column: str, value: str) -> None:
    """A forger's edit: change a column and recompute that entry's hash, so
    the entry is consistent on its own (only its neighbours and its
    documents give it away)."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    conn.execute("DROP TRIGGER IF EXISTS entries_no_update")
    row = dict(conn.execute("SELECT * FROM entries WHERE seq = ?", (seq,)).fetchone())
    row[column] = value
    row["entry_hash"] = entry_hash(row)
    conn.execute(f"UPDATE entries SET {column} = ?, entry_hash = ? WHERE seq = ?",
                 (value, row["entry_hash"], seq))
    conn.commit()
    conn.close()


# ------------------------------------------------ issue 16 item 13: read-only


@pytest.mark.parametrize("command", [
    ["audit", "verify"], ["audit", "list"], ["audit", "show", "{id}"],
    ["audit", "export"], ["audit", "export", "--format", "csv"], ["audit", "replay", "{id}"],
])
def test_reading_commands_leave_the_trail_exactly_as_it_was(
    trail_path: Path, command: list[str]
) -> None:
    # A trail in rollback-journal mode (copied by a tool, or made read-only
    # by the clinic): reading it must not switch it to WAL or write at all.
    conn = sqlite3.connect(trail_path)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    decision_id = first_decision(trail_path)
    before = trail_path.read_bytes()
    args = [a.replace("{id}", decision_id) for a in command]
    result = run([*args, "--audit", trail_path])
    assert result.exit_code == 0, result.output
    assert trail_path.read_bytes() == before
    assert not Path(f"{trail_path}-wal").exists()
    conn = sqlite3.connect(trail_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


# -------------------------------------------- issue 16 item 14: show/replay


@pytest.mark.parametrize("command", ["show", "replay"])
def test_show_and_replay_warn_on_a_rewritten_entry(trail_path: Path, command: str) -> None:
    with AuditTrail(trail_path, readonly=True) as trail:
        second = trail.entries()[1]
    rewrite_with_rehash(trail_path, 2, "case_id", "SOMEONE-ELSE")
    result = run(["audit", command, second.decision_id, "--audit", trail_path])
    assert result.exit_code == 1
    assert "WARNING" in result.stderr
    assert "case_id" in result.stderr and "does not link" in result.stderr
    as_json = run(["audit", command, second.decision_id, "--audit", trail_path, "--json"])
    data = json.loads(as_json.stdout)
    assert data["integrity"]["ok"] is False


@pytest.mark.parametrize("command", ["show", "replay"])
def test_show_and_replay_of_an_intact_entry_do_not_warn(trail_path: Path, command: str) -> None:
    result = run(["audit", command, first_decision(trail_path), "--audit", trail_path])
    assert result.exit_code == 0, result.output
    assert "WARNING" not in result.stderr


def test_show_warns_when_the_case_sha256_was_rewritten(trail_path: Path) -> None:
    decision_id = first_decision(trail_path)
    rewrite_with_rehash(trail_path, 1, "case_sha256", "0" * 64)
    result = run(["audit", "show", decision_id, "--audit", trail_path])
    assert result.exit_code == 1
    assert "case_sha256" in result.stderr


# ------------------------------------------------- issue 16 item 15: export


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_reports_a_blob_in_a_text_column_as_corrupt(trail_path: Path, fmt: str) -> None:
    with raw(trail_path) as conn:
        conn.execute("UPDATE entries SET clinician = ? WHERE seq = 2", (b"\xff\x00blob",))
    out = trail_path.parent / f"out.{fmt}"
    for extra in ([], ["--out", out]):
        result = run(["audit", "export", "--format", fmt, "--audit", trail_path, *extra])
        assert result.exit_code == 1
        assert "seq 2 is corrupt" in result.stderr
        assert "column clinician holds a BLOB" in result.stderr
    assert not out.exists()
    verify = run(["audit", "verify", "--audit", trail_path])
    assert verify.exit_code == 1 and "seq 2" in verify.stdout


# ---------------------------------------------------------- format 1 + migrate


def test_every_command_reads_format_1_and_migrate_upgrades_it(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    pairs = [pair(n) for n in (1, 2, 3)]
    v1_head = write_v1_trail(path, pairs, [(pairs[0][0]["decision_id"], "dr o", "disagree")])
    decision_id = pairs[1][0]["decision_id"]
    for args in (["verify"], ["list"], ["show", decision_id], ["export"]):
        result = run(["audit", *args, "--audit", path])
        assert result.exit_code == 0, (args, result.output)
    assert v1_head in run(["audit", "verify", "--audit", path]).stdout
    refused = run(["next", EXAMPLES / CASES[0], "--audit", path])
    assert refused.exit_code != 0 and "audit migrate" in refused.output
    assert "Traceback" not in refused.output

    result = run(["audit", "migrate", "--audit", path, "--chunk", "2"])
    assert result.exit_code == 0, result.output
    assert "from format 1 to 4: 4 entries" in result.stdout
    assert v1_head in result.stdout
    verify = run(["audit", "verify", "--audit", path, "--json"])
    assert json.loads(verify.stdout)["ok"] is True
    assert run(["audit", "show", decision_id, "--audit", path]).exit_code == 0
    assert run(["next", EXAMPLES / CASES[0], "--audit", path]).exit_code == 0
    again = run(["audit", "migrate", "--audit", path])
    assert again.exit_code == 0 and "nothing to do" in again.stdout


def test_migrate_refuses_a_tampered_trail(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    write_v1_trail(path, [pair(1), pair(2)])
    with raw(path) as conn:
        conn.execute("UPDATE entries SET clinician = 'mallory' WHERE seq = 1")
    result = run(["audit", "migrate", "--audit", path])
    assert result.exit_code == 1
    assert "refusing to migrate" in result.stderr


# ------------------------------------------------------------------ shards


@pytest.fixture
def sharded(tmp_path: Path) -> Path:
    root = tmp_path / "run.d"
    for partition in range(3):
        with open_shard(root, partition) as shard:
            prepared = []
            for i in range(2):
                case = make_case(i, case_id=f"S{partition}-{i}")
                prepared.append(prepare_entry(make_decision(case, i), case))
            shard.record_prepared(prepared)
    write_manifest(root)
    return root


def test_verify_a_sharded_trail_whole_and_one_shard(sharded: Path) -> None:
    result = run(["audit", "verify", "--audit", sharded])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: 6 entries in 3 shards")
    one = run(["audit", "verify", "--audit", sharded, "--shard", "1"])
    assert one.exit_code == 0 and "shard 1: 2 entries" in one.stdout
    data = json.loads(run(["audit", "verify", "--audit", sharded, "--json"]).stdout)
    assert data["sharded"] is True and sorted(data["shards"]) == ["0", "1", "2"]
    # a shard file is an ordinary trail too
    alone = run(["audit", "verify", "--audit", shard_path(sharded, 2)])
    assert alone.exit_code == 0


def test_verify_finds_the_shards_of_the_trail_given_to_batch(tmp_path: Path) -> None:
    # batch --dask --audit clinic.sqlite3 puts its shards in clinic.sqlite3.shards/
    trail = tmp_path / "clinic.sqlite3"
    root = tmp_path / "clinic.sqlite3.shards"
    with open_shard(root, 0) as shard:
        case = make_case(1)
        shard.record_prepared([prepare_entry(make_decision(case, 1), case)])
    write_manifest(root)
    result = run(["audit", "verify", "--audit", trail])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: 1 entries in 1 shards, every chain intact")
    assert run(["next", EXAMPLES / CASES[0], "--audit", trail]).exit_code == 0
    both = run(["audit", "verify", "--audit", trail])
    assert both.exit_code == 0 and "2 entries in 1 shards and the trail file" in both.stdout
    with raw(trail) as conn:
        conn.execute("UPDATE entries SET clinician = 'x' WHERE seq = 1")
    failed = run(["audit", "verify", "--audit", trail])
    assert failed.exit_code == 1 and "seq 1" in failed.stdout


def test_verify_names_the_tampered_shard(sharded: Path) -> None:
    with raw(shard_path(sharded, 1)) as conn:
        conn.execute("UPDATE entries SET case_id = 'X' WHERE seq = 1")
    result = run(["audit", "verify", "--audit", sharded])
    assert result.exit_code == 1
    assert "shard 1" in result.stdout and "altered" in result.stdout
    assert run(["audit", "verify", "--audit", sharded, "--shard", "0"]).exit_code == 0
    assert run(["audit", "verify", "--audit", sharded, "--shard", "1"]).exit_code == 1


def test_other_commands_take_a_shard_file_not_the_directory(sharded: Path) -> None:
    result = run(["audit", "list", "--audit", sharded])
    assert result.exit_code == 2 and "is a directory" in result.output
    assert "Traceback" not in result.output
    one = run(["audit", "list", "--audit", shard_path(sharded, 1)])
    assert one.exit_code == 0 and "S1-0" in one.stdout
    with pytest.raises(AuditError, match=r"sharded audit trail.*shard-00000\.sqlite3"):
        open_trail(sharded)


# ------------------------------------------- issue 16 items 11, 12: escaping


HOSTILE_NAME = "=HYPERLINK(\"http://x\")\x1b]8;;http://evil\x07Dr\x1b[31m Red\nok: forged"
HOSTILE_REASON = "@SUM(A1)\u202e reversed\x1b[2J cleared"


def _hostile_override(path: Path) -> str:
    decision_id = first_decision(path)
    with AuditTrail(path) as trail:
        trail.override(decision_id, HOSTILE_NAME, HOSTILE_REASON)
    return decision_id


@pytest.mark.parametrize("command", ["show", "list", "replay"])
def test_names_and_reasons_reach_the_terminal_escaped(trail_path: Path, command: str) -> None:
    decision_id = _hostile_override(trail_path)
    args = ["audit", command, "--audit", trail_path]
    if command != "list":
        args.insert(2, decision_id)
    result = run(args)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "\u202e" not in result.output
    assert "\nok: forged" not in result.output
    if command == "show":
        assert "\\x1b]8;;http://evil\\x07Dr" in result.output  # shown, visibly
        assert "\\u202e" in result.output


def test_csv_export_neutralises_formulas(trail_path: Path) -> None:
    _hostile_override(trail_path)
    result = run(["audit", "export", "--format", "csv", "--audit", trail_path])
    assert result.exit_code == 0
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    override = rows[-1]
    assert override["clinician"] == "'" + HOSTILE_NAME
    assert override["reason"] == "'" + HOSTILE_REASON
    # every cell a spreadsheet could read as a formula starts with a quote
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r"))
    # the JSON Lines export keeps the text exactly (it is data, not a sheet)
    jsonl = run(["audit", "export", "--audit", trail_path]).stdout.splitlines()
    assert json.loads(jsonl[-1])["clinician"] == HOSTILE_NAME
