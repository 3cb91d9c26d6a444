"""The `calfrehab audit` commands, end to end: decisions recorded by
`calfrehab next` on the repository's own example cases (so a clone tests the
audit CLI whole, with or without ../shared beside it), then listed, shown,
verified, overridden, exported and replayed, on real files in tmp_path."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from helpers import EXAMPLES, REPO

from calfrehab.cli.main import cli
from calfrehab.engine.audit.views import compare_decisions
from calfrehab.engine.canonical import canonical_json, case_sha256
from calfrehab.engine.knowledge.loader import default_rules_dir
from calfrehab.engine.trail.audit import CSV_COLUMNS, AuditTrail
from calfrehab.engine.vocabulary import TRACKS

# One example of each kind of stored decision (examples/README.md says why
# each decides as it does): case id -> file.
CASE_FILES = {
    "RUN-0001": "runner-stuck-on-two-leg.json",  # progress, start
    "PF-0188": "plantar-next-morning-jump-flare.json",  # a flare: regress, hold
    "PF-0117": "plantar-single-leg-to-weighted.json",  # progress, hold
    "ATR-0044": "rupture-operative-gate-counted-from-surgery.json",  # held by the week-10 gate
    "ACH-0415": "red-flag-recent-fluoroquinolone.json",  # refer
}
# case id -> (outcome, per-track decisions) as the shipped rules decide them
EXPECTED = {
    "RUN-0001": ("continue", ("progress", "start", "not_started")),
    "PF-0188": ("continue", ("regress", "hold", "not_started")),
    "PF-0117": ("continue", ("progress", "hold", "not_started")),
    "ATR-0044": ("continue", ("hold", "not_started", "not_started")),
    "ACH-0415": ("refer", ("refer", "refer", "refer")),
}


def run(args: Sequence[object], env: dict[str, str] | None = None) -> Result:
    # catch_exceptions=False: an exception escaping a command (a traceback
    # for the user) fails the test instead of hiding in result.exception.
    result = CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)
    return result


def ids_by_case(path: Path) -> dict[str, str]:
    with AuditTrail(path) as trail:
        return {e.case_id: e.decision_id for e in trail.entries(kind="decision")}


@pytest.fixture(scope="module")
def recorded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trail holding one decision per chosen example, recorded by
    `calfrehab next` itself. Built once; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "audit.sqlite3"
    for name in CASE_FILES.values():
        result = run(["next", EXAMPLES / name, "--audit", path, "--clinician", "Dr Ana Berg"])
        assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def trail_path(recorded_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "audit.sqlite3"
    shutil.copy(recorded_template, target)
    return target


@pytest.fixture
def ids(trail_path: Path) -> dict[str, str]:
    return ids_by_case(trail_path)


def tamper(path: Path, *statements: str) -> None:
    """Edit the file as someone bypassing calfrehab would: drop the
    append-only triggers first, as calfrehab/engine/trail/audit.py's own tests do."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("DROP TRIGGER IF EXISTS entries_no_update")
        conn.execute("DROP TRIGGER IF EXISTS entries_no_delete")
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


def modified_rules(tmp_path: Path) -> Path:
    """The shipped rules with one threshold changed, nothing else (not even
    the version): the single-leg gate after rupture opens at week 7, not 10."""
    target = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), target)
    # The week is written once, as a rule-base parameter.
    path = target / "rulebase.yaml"
    text = path.read_text(encoding="utf-8")
    week = "rupture_single_leg_week: 10\n"
    assert text.count(week) == 1, "rulebase.yaml no longer looks as expected"
    path.write_text(text.replace(week, "rupture_single_leg_week: 7\n"), encoding="utf-8")
    return target


# ------------------------------------------------------------------- list


def test_list_table(trail_path: Path, ids: dict[str, str]) -> None:
    result = run(["audit", "list", "--audit", trail_path])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert lines[0].split() == [
        "seq", "recorded", "(UTC)", "decision", "case", "sk/bk/es", "clinician", "ovr"
    ]
    rows = {line.split()[4]: line for line in lines[1:6]}
    assert set(rows) == set(EXPECTED)
    assert "prog/strt/-" in rows["RUN-0001"]
    assert "regr/hold/-" in rows["PF-0188"]
    assert "REFER" in rows["ACH-0415"]
    assert ids["RUN-0001"][:8] in rows["RUN-0001"]
    assert "Dr Ana Be" in rows["RUN-0001"]
    assert "5 entries (5 decisions, 0 overrides)" in result.output


def test_list_json_and_filters(trail_path: Path, ids: dict[str, str]) -> None:
    result = run(["audit", "list", "--audit", trail_path, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
    for row in rows:
        outcome, decisions = EXPECTED[row["case_id"]]
        assert row["kind"] == "decision"
        assert row["outcome"] == outcome
        assert tuple(row["tracks"][t] for t in TRACKS) == decisions
        assert row["decision_id"] == ids[row["case_id"]]
        assert row["clinician"] == "Dr Ana Berg"
        assert row["overridden"] is False
        assert row["recorded_at"].endswith("Z")

    one = json.loads(run(["audit", "list", "--audit", trail_path, "--case", "ATR-0044",
                          "--json"]).output)
    assert [r["case_id"] for r in one] == ["ATR-0044"]
    today = datetime.now(UTC).date().isoformat()
    assert len(json.loads(run(["audit", "list", "--audit", trail_path, "--since", today,
                               "--json"]).output)) == 5
    future = run(["audit", "list", "--audit", trail_path, "--since", "2999-01-01"])
    assert future.exit_code == 0 and future.output.strip() == "no entries"
    none = run(["audit", "list", "--audit", trail_path, "--kind", "override", "--json"])
    assert json.loads(none.output) == []
    bad = run(["audit", "list", "--audit", trail_path, "--since", "20/11/2026"])
    assert bad.exit_code == 2  # a usage error, from click


def test_audit_path_from_environment(trail_path: Path) -> None:
    result = run(["audit", "list", "--json"], env={"CALFREHAB_AUDIT": str(trail_path)})
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)) == 5


# ------------------------------------------------------------------- show


def test_show_renders_stored_decision(trail_path: Path, ids: dict[str, str]) -> None:
    decision_id = ids["RUN-0001"]
    result = run(["audit", "show", decision_id[:6], "--audit", trail_path])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"Decision {decision_id}" in out
    assert "Case RUN-0001 · review 2026-11-20" in out
    assert "by Dr Ana Berg" in out
    assert "Straight knee (gastrocnemius): PROGRESS" in out
    assert "Single-leg heel raise, straight knee, 3 × 15" in out
    assert "Bent knee (soleus): START" in out
    assert "Energy storage (hops, running): not started" in out
    assert "Why" in out and "[Alfredson 1998" in out
    assert "Overrides\n  none recorded" in out
    with AuditTrail(trail_path) as trail:
        entry = trail.get(decision_id)
    assert f"  sha256       {entry.rulebase_sha256}\n" in out
    assert f"  rule base    {entry.decision['rulebase']['name']} {entry.rulebase_version}\n" in out
    assert f"  engine       calfrehab {entry.engine_version}" in out
    assert "the case this decision names" in out
    assert all(len(line) <= 80 for line in out.splitlines())


def test_show_refer_and_json(trail_path: Path, ids: dict[str, str]) -> None:
    out = run(["audit", "show", ids["ACH-0415"], "--audit", trail_path]).output
    assert "REFER: stop progression and refer" in out
    assert "Straight knee" not in out  # nothing is prescribed

    result = run(["audit", "show", ids["ATR-0044"], "--audit", trail_path, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    with AuditTrail(trail_path) as trail:
        entry = trail.get(ids["ATR-0044"])
    assert data["decision"] == entry.decision
    assert data["case"]["document"] == entry.case
    assert data["case"]["valid"] is True and data["case"]["errors"] == []
    assert data["case"]["sha256"] == case_sha256(entry.case or {}) == entry.case_sha256
    assert data["case"]["sha256_matches"] is True
    assert data["case"]["summary"]["condition"] == "achilles_rupture"
    assert data["rulebase"]["sha256"] == entry.rulebase_sha256
    assert data["engine"]["version"] == entry.engine_version
    assert data["overrides"] == []


def test_show_unknown_short_and_ambiguous_ids(trail_path: Path, ids: dict[str, str]) -> None:
    missing = run(["audit", "show", "ffffffffffff", "--audit", trail_path])
    assert missing.exit_code == 1
    assert missing.output.startswith("error: no decision ffffffffffff")
    short = run(["audit", "show", ids["RUN-0001"][:3], "--audit", trail_path])
    assert short.exit_code == 1 and "at least 4 characters" in short.output

    # Two decisions whose ids share a prefix (recorded through the library).
    with AuditTrail(trail_path) as trail:
        base = trail.get(ids["RUN-0001"])
        for suffix in ("1", "2"):
            trail.record({**base.decision, "decision_id": f"cafe0000{suffix}"}, base.case or {})
    ambiguous = run(["audit", "show", "cafe", "--audit", trail_path])
    assert ambiguous.exit_code == 1
    assert "matches 2 decisions" in ambiguous.output and "cafe00001" in ambiguous.output
    exact = run(["audit", "show", "cafe00002", "--audit", trail_path])
    assert exact.exit_code == 0 and "Decision cafe00002" in exact.output


def test_show_flags_a_case_that_no_longer_validates(trail_path: Path, ids: dict[str, str]) -> None:
    with AuditTrail(trail_path) as trail:
        base = trail.get(ids["RUN-0001"])
        case = {**(base.case or {}), "patient": {"age_years": 7}}  # below the allowed 12
        trail.record({**base.decision, "decision_id": "oldcase1", "case_sha256": "0" * 64}, case)
    result = run(["audit", "show", "oldcase1", "--audit", trail_path])
    assert result.exit_code == 0, result.output
    assert "WARNING: the stored case does not pass the current case format" in result.output
    assert "patient.age_years" in result.output
    assert "does not hash to the case_sha256" in result.output


# ----------------------------------------------------------------- verify


def test_verify_ok(trail_path: Path) -> None:
    result = run(["audit", "verify", "--audit", trail_path])
    assert result.exit_code == 0, result.output
    with AuditTrail(trail_path) as trail:
        head = trail.verify().last_hash
    assert result.output == f"ok: 5 entries, chain intact (last hash {head})\n"
    data = json.loads(run(["audit", "verify", "--audit", trail_path, "--json"]).output)
    assert data["ok"] is True and data["entries_checked"] == 5 and data["last_hash"] == head


@pytest.mark.parametrize(
    ("statements", "seq", "words"),
    [
        (["UPDATE entries SET clinician = 'Mallory' WHERE seq = 2"], 2, "was altered"),
        # another entry's (intact) decision document put in place of seq 4's
        (["UPDATE entries SET decision_body = "
          "(SELECT decision_body FROM entries WHERE seq = 3) WHERE seq = 4"],
         4, "was altered"),
        (["DELETE FROM entries WHERE seq = 3"], 3, "deleted"),
        (["DELETE FROM entries WHERE seq = 5"], 5, "removed from the end"),
    ],
)
def test_verify_names_the_first_tampered_entry(
    trail_path: Path, statements: list[str], seq: int, words: str
) -> None:
    tamper(trail_path, *statements)
    result = run(["audit", "verify", "--audit", trail_path])
    assert result.exit_code == 1
    assert f"entry seq {seq}" in result.output
    assert words in result.output
    assert "Traceback" not in result.output
    data = json.loads(run(["audit", "verify", "--audit", trail_path, "--json"]).output)
    assert data["ok"] is False and data["first_bad_seq"] == seq


# --------------------------------------------------------------- override


def test_override_then_list_and_show(trail_path: Path, ids: dict[str, str]) -> None:
    decision_id = ids["PF-0188"]
    result = run([
        "audit", "override", decision_id[:8], "--audit", trail_path,
        "--clinician", "Dr Ben Okafor", "--reason", "pain settled by the review; hold instead",
        "--track", "straight_knee", "--decision", "hold",
    ])
    assert result.exit_code == 0, result.output
    with AuditTrail(trail_path) as trail:
        [entry] = trail.overrides_for(decision_id)
        assert trail.verify().ok
    assert entry.entry_id in result.output and f"decision {decision_id}" in result.output
    assert entry.decision == {
        "decision_id": decision_id, "clinician": "Dr Ben Okafor",
        "reason": "pain settled by the review; hold instead",
        "track": "straight_knee", "decision": "hold",
    }

    whole = run(["audit", "override", ids["ACH-0415"], "--audit", trail_path, "--json",
                 "--clinician", "Dr Ben Okafor", "--reason", "already referred yesterday"])
    assert whole.exit_code == 0, whole.output
    data = json.loads(whole.output)
    assert data["kind"] == "override" and data["seq"] == 7
    assert data["override"]["track"] is None and data["override"]["decision"] is None

    rows = json.loads(run(["audit", "list", "--audit", trail_path, "--json"]).output)
    assert [r["overrides"] for r in rows if r["kind"] == "decision" and
            r["case_id"] in ("PF-0188", "ACH-0415")] == [1, 1]
    assert [r["kind"] for r in rows].count("override") == 2
    table = run(["audit", "list", "--audit", trail_path]).output
    assert "override sk→hold" in table and "override (all)" in table
    only = json.loads(run(["audit", "list", "--audit", trail_path, "--kind", "override",
                           "--case", "PF-0188", "--json"]).output)
    assert [r["seq"] for r in only] == [6]

    shown = run(["audit", "show", decision_id, "--audit", trail_path])
    assert "OVERRIDDEN by a clinician (1 override" in shown.output
    assert "Dr Ben Okafor · Straight knee (gastrocnemius) → HOLD" in shown.output
    assert "reason: pain settled by the review; hold instead" in shown.output
    shown_json = json.loads(run(["audit", "show", decision_id, "--audit", trail_path,
                                 "--json"]).output)
    [o] = shown_json["overrides"]
    assert (o["clinician"], o["track"], o["decision"], o["seq"]) == (
        "Dr Ben Okafor", "straight_knee", "hold", 6)
    assert o["recorded_at"].endswith("Z")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--track", "bent_knee"], "track and decision together"),
        # (straight_knee may now start or be not_started: nothing is loaded
        # yet at a first visit or before a rupture's first gate)
        (["--decision", "hold"], "track and decision together"),
        (["--reason", "   "], "needs a reason"),
        # a dose out of range is worded as a case file's errors are
        (["--track", "bent_knee", "--decision", "hold", "--exercise",
          "two_leg_bent_knee_heel_raise", "--sets", "30", "--reps", "15"],
         "prescription for bent_knee: sets: expected a value ≤ 10 (got 30)"),
    ],
)
def test_override_refused_cleanly(
    trail_path: Path, ids: dict[str, str], extra: list[str], message: str
) -> None:
    args = ["audit", "override", ids["RUN-0001"], "--audit", trail_path,
            "--clinician", "Dr B", "--reason", "why"]
    result = run([*args, *extra])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and message in result.output
    with AuditTrail(trail_path) as trail:
        assert len(trail) == 5  # nothing appended


def test_override_of_unknown_decision(trail_path: Path) -> None:
    result = run(["audit", "override", "0123456789", "--audit", trail_path,
                  "--clinician", "Dr B", "--reason", "why"])
    assert result.exit_code == 1
    assert result.output.startswith("error: no decision 0123456789")


# ----------------------------------------------------------------- export


def test_export_jsonl_to_stdout(trail_path: Path) -> None:
    result = run(["audit", "export", "--format", "jsonl", "--audit", trail_path])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == 5
    with AuditTrail(trail_path) as trail:
        entries = trail.entries()
    for line, entry in zip(lines, entries, strict=True):
        obj = json.loads(line)
        assert obj["seq"] == entry.seq and obj["entry_hash"] == entry.entry_hash
        assert obj["decision"] == entry.decision
        assert case_sha256(obj["case"]) == entry.case_sha256
        assert line == canonical_json(obj)


def test_export_csv_to_file_atomically(trail_path: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    target = out_dir / "audit.csv"
    target.write_text("stale content that must disappear\n" * 1000, encoding="utf-8")
    # An existing output is replaced only with --force (issue 21).
    refused = run(["audit", "export", "--format", "csv", "--out", target, "--audit", trail_path])
    assert refused.exit_code == 2 and "--force" in refused.output
    result = run(["audit", "export", "--format", "csv", "--out", target, "--audit", trail_path,
                  "--force"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out_dir.iterdir()) == ["audit.csv"]  # no temp file left
    text = target.read_text(encoding="utf-8")
    assert "stale" not in text
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 6
    by_case = {r[CSV_COLUMNS.index("case_id")]: r for r in rows[1:]}
    assert by_case["ACH-0415"][CSV_COLUMNS.index("outcome")] == "refer"
    assert by_case["RUN-0001"][CSV_COLUMNS.index("bent_knee")] == "start"
    # the same bytes as the stdout export
    stdout = run(["audit", "export", "--format", "csv", "--audit", trail_path]).output
    assert stdout == text


def test_export_refusals(trail_path: Path, tmp_path: Path) -> None:
    over_trail = run(["audit", "export", "--out", trail_path, "--audit", trail_path])
    # Issue 16 item 3: an output that is the trail is refused before any work, exit 2.
    assert over_trail.exit_code == 2 and "it is the audit trail" in over_trail.output
    assert run(["audit", "verify", "--audit", trail_path]).exit_code == 0
    no_dir = run(["audit", "export", "--out", tmp_path / "nowhere" / "x.jsonl",
                  "--audit", trail_path])
    assert no_dir.exit_code == 1 and no_dir.output.startswith("error: cannot write ")
    assert "nowhere/x.jsonl" in no_dir.output
    bad_format = run(["audit", "export", "--format", "xml", "--audit", trail_path])
    assert bad_format.exit_code == 2


# ----------------------------------------------------------------- replay


def test_replay_with_the_same_rules_is_the_same(trail_path: Path, ids: dict[str, str]) -> None:
    for case_id, decision_id in ids.items():
        result = run(["audit", "replay", decision_id, "--audit", trail_path])
        assert result.exit_code == 0, result.output
        assert result.output.rstrip().endswith("Result: same decision"), case_id
        assert "the same rule base as recorded" in result.output
        assert "The same rules fired then and now." in result.output
    with AuditTrail(trail_path) as trail:
        assert len(trail) == 5  # replay records nothing


def test_replay_with_changed_rules(
    trail_path: Path, ids: dict[str, str], tmp_path: Path
) -> None:
    rules = modified_rules(tmp_path)
    result = run(["audit", "replay", ids["ATR-0044"], "--rules", rules, "--audit", trail_path])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "the rule base differs from the one recorded" in out
    assert "Straight knee (gastrocnemius): differs\n  then  HOLD" in out
    assert "now   PROGRESS → Single-leg heel raise, straight knee" in out
    gone = out.split("Rules that fired then but not now")[1]
    assert "rupture-gate-single-leg@straight_knee" in gone
    assert "Rules that fire now but did not then" in out
    assert "progress-track@straight_knee" in out.split("Rules that fire now but did not then")[1]
    assert out.rstrip().splitlines()[-1].startswith("Result: differs (straight_knee")

    data = json.loads(run(["audit", "replay", ids["ATR-0044"], "--rules", rules, "--json",
                           "--audit", trail_path]).output)
    assert data["same"] is False
    assert data["rulebase"]["changed"] is True
    assert data["rulebase"]["then"]["version"] == data["rulebase"]["now"]["version"]
    sk = data["tracks"][0]
    assert (sk["track"], sk["then"]["decision"], sk["now"]["decision"]) == (
        "straight_knee", "hold", "progress")
    assert "rupture-gate-single-leg@straight_knee" in data["fired_then_not_now"]

    # A case the changed gate does not touch: same decision, new rule base.
    other = run(["audit", "replay", ids["RUN-0001"], "--rules", rules, "--audit", trail_path])
    assert other.exit_code == 0
    assert "the rule base differs" in other.output
    assert other.output.rstrip().endswith("Result: same decision")


def test_compare_decisions_counts_the_next_prescription() -> None:
    def doc(load: float) -> dict[str, Any]:
        nxt = {"exercise": "weighted_single_leg_heel_raise", "load_kg": load, "sets": 3,
               "reps": 12}
        return {
            "outcome": "continue",
            "tracks": {"straight_knee": {"decision": "progress", "next": nxt}},
            "firings": [{"rule": "progress-track@straight_knee"}],
            "rulebase": {"name": "x", "version": "1", "sha256": "a"},
        }

    assert compare_decisions(doc(10), doc(10))["same"] is True
    changed = compare_decisions(doc(10), doc(12.5))
    assert changed["same"] is False
    assert [t["same"] for t in changed["tracks"]] == [False, True, True]
    assert changed["fired_then_not_now"] == changed["fired_now_not_then"] == []


# --------------------------------------------------- not a trail, no trail


SUBCOMMANDS = [
    ["list"],
    ["show", "abcdef"],
    ["verify"],
    ["export"],
    ["replay", "abcdef"],
    ["override", "abcdef", "--clinician", "Dr B", "--reason", "why"],
]


@pytest.mark.parametrize("args", SUBCOMMANDS, ids=lambda a: a[0])
def test_not_a_trail(tmp_path: Path, args: list[str]) -> None:
    text_file = tmp_path / "notes.txt"
    text_file.write_text("these are not the decisions you are looking for\n" * 10)
    result = run(["audit", *args, "--audit", text_file])
    assert result.exit_code == 1
    assert result.stdout == ""  # the message goes to stderr
    assert result.stderr == (
        f"error: {text_file} is not a SQLite database, so not a calfrehab audit trail\n"
    )

    other_db = tmp_path / "other.sqlite3"
    conn = sqlite3.connect(other_db)
    conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('format', 'something-else')")
    conn.commit()
    conn.close()
    result = run(["audit", *args, "--audit", other_db])
    assert result.exit_code == 1
    assert result.output == f"error: {other_db} is not a calfrehab audit trail\n"
    conn = sqlite3.connect(other_db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # left as it was
    conn.close()


@pytest.mark.parametrize("args", SUBCOMMANDS, ids=lambda a: a[0])
def test_missing_or_empty_trail_is_not_created(tmp_path: Path, args: list[str]) -> None:
    missing = tmp_path / "sub" / "audit.sqlite3"
    result = run(["audit", *args, "--audit", missing])
    assert result.exit_code == 1
    assert result.output.startswith(f"error: no audit trail at {missing}")
    assert not missing.parent.exists()

    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    result = run(["audit", *args, "--audit", empty])
    assert result.exit_code == 1 and "empty file" in result.output
    assert empty.stat().st_size == 0


def test_every_command_has_an_example() -> None:
    from calfrehab.cli.audit_cmd import audit

    assert "Example:" in (audit.help or "")
    for name, command in audit.commands.items():
        assert "Example:" in (command.help or ""), name
        result = run(["audit", name, "--help"])
        assert result.exit_code == 0
        if name not in ("keygen", "check-proof"):  # these two never read a trail
            assert "--audit" in result.output and "CALFREHAB_AUDIT" in result.output
        assert all(len(line) <= 80 for line in result.output.splitlines()), name


# ------------------------------------------------------------------- docs


def test_documented_export_checker_agrees_with_verify(trail_path: Path, tmp_path: Path) -> None:
    """docs/audit-trail.md gives a stand-alone checker of a jsonl export;
    it must accept a real export (with an override in it) and name the
    same head as `audit verify`, and reject an edited line."""
    import re
    import subprocess
    import sys

    page = (REPO / "docs" / "audit-trail.md").read_text("utf-8")
    match = re.search(
        r"<!-- verify-export:start -->\n```python\n(.*?)```\n<!-- verify-export:end -->",
        page, re.DOTALL,
    )
    assert match, "the export checker is missing from docs/audit-trail.md"
    checker = tmp_path / "verify_export.py"
    checker.write_text(match.group(1), encoding="utf-8")

    with AuditTrail(trail_path) as trail:
        decision_id = trail.entries()[0].decision_id
    run(["audit", "override", decision_id, "--audit", trail_path, "--clinician", "Dr Ünal",
         "--reason", "genou fléchi: hold", "--track", "bent_knee", "--decision", "hold"])
    export = run(["audit", "export", "--audit", trail_path]).output
    with AuditTrail(trail_path) as trail:
        head = trail.verify().last_hash

    ok = subprocess.run([sys.executable, str(checker)], input=export, capture_output=True,
                        text=True, encoding="utf-8", check=False)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"ok: 6 entries, last hash {head}"

    edited = export.replace('"clinician":"Dr Ünal"', '"clinician":"Dr Other"', 1)
    assert edited != export
    bad = subprocess.run([sys.executable, str(checker)], input=edited, capture_output=True,
                         text=True, encoding="utf-8", check=False)
    assert bad.returncode == 1 and "entry seq 6 was altered" in bad.stderr


def test_show_says_a_reason_given_alike_for_several_tracks_once(tmp_path: Path) -> None:
    # The rupture's isometric gate holds every loaded track for one reason:
    # the stored document keeps one reason per track, `audit show` says it
    # once (as `next` does) and --json keeps every one.
    trail = tmp_path / "audit.sqlite3"
    case = REPO / "examples" / "rupture-nonop-week-4-isometric-gate.json"
    decided = run(["next", str(case), "--audit", trail, "--clinician", "Dr B", "--json"])
    assert decided.exit_code == 0, decided.output
    decision_id = json.loads(decided.output)["decision_id"]
    stored = json.loads(run(["audit", "show", decision_id, "--audit", trail, "--json"])
                        .output)["decision"]["reasons"]
    texts = [r["text"] for r in stored]
    repeated = {t for t in texts if texts.count(t) > 1}
    assert repeated  # the example gives one reason for several tracks
    out = run(["audit", "show", decision_id, "--audit", trail]).output
    why = out.split("\nWhy\n", 1)[1].split("\n\nOverrides", 1)[0]
    flat = " ".join(why.split())
    for text in repeated:
        assert flat.count(" ".join(text.split())) == 1, text
    for text in set(texts) - repeated:
        assert " ".join(text.split()) in flat
