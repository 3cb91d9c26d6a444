"""The batch command (calfrehab/cli/batch_cmd.py) and library (calfrehab/engine/batch.py):
mixed inputs, the errors report, formats, order, --jobs, --resume, atomic
outputs and the audit trail. Real files in tmp_path; no timing assertions."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from calfrehab.cli.batch_cmd import FORMAT_CHOICES
from calfrehab.cli.main import cli
from calfrehab.engine import batch as batch_lib
from calfrehab.engine.batch import CSV_COLUMNS, FORMATS, BatchOptions, run_batch
from calfrehab.engine.trail.audit import AuditError, AuditTrail

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _casegen() -> Any:
    spec = importlib.util.spec_from_file_location("casegen", ROOT / "benchmarks" / "casegen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CASEGEN = _casegen()


def cases(n: int, seed: int = 7) -> list[dict[str, Any]]:
    return list(CASEGEN.generate_cases(n, seed=seed))


def write_jsonl(path: Path, docs: list[dict[str, Any]], extra: dict[int, str] | None = None,
                ) -> Path:
    """JSON Lines; ``extra`` puts raw text lines before the document of that
    index (to plant bad and blank lines)."""
    lines = []
    for i, doc in enumerate(docs):
        if extra and i in extra:
            lines.append(extra[i])
        lines.append(json.dumps(doc))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(args: list[str], **kw: Any) -> Any:
    return CliRunner().invoke(cli, ["batch", *args], catch_exceptions=False, **kw)


def trail_decisions(path: Path) -> list[Any]:
    with AuditTrail(path) as trail:
        return trail.entries(kind="decision")


def no_temp_files(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.endswith(".tmp")]


def read_rows(path: Path, fmt: str) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    if fmt == "csv":
        return list(csv.DictReader(text.splitlines()))
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines()]
    data = json.loads(text)
    assert isinstance(data, list)
    return data


@pytest.fixture
def mixed(tmp_path: Path) -> dict[str, Any]:
    """A directory (2 good, 1 invalid, 1 not JSON) and a JSON Lines file
    (3 good, a line that is not JSON, a blank line, a non-UTF-8 line)."""
    good = cases(5)
    d = tmp_path / "dir"
    d.mkdir()
    (d / "a.json").write_text(json.dumps(good[0]), encoding="utf-8")
    (d / "b.json").write_text(json.dumps(good[1]), encoding="utf-8")
    invalid = dict(good[0], case_id="BAD-1", review_date="not a date")
    (d / "c-invalid.json").write_text(json.dumps(invalid), encoding="utf-8")
    (d / "d-broken.json").write_text('{"schema_version": 1, "case_id": ', encoding="utf-8")
    (d / "notes.txt").write_text("not a case", encoding="utf-8")
    jl = tmp_path / "week.jsonl"
    jl.write_text(
        json.dumps(good[2]) + "\n"
        + "{not json}\n"
        + "\n"
        + json.dumps(good[3]) + "\n",
        encoding="utf-8",
    )
    with jl.open("ab") as fh:
        fh.write(b'{"case_id": "\xff\xfe"}\n')
        fh.write(json.dumps(good[4]).encode() + b"\n")
    return {"dir": d, "jsonl": jl, "good": [good[i]["case_id"] for i in range(5)]}


# ------------------------------------------------------------ mixed inputs


def test_mixed_inputs_decide_every_good_case_and_report_the_bad(
    tmp_path: Path, mixed: dict[str, Any]
) -> None:
    out = tmp_path / "out.jsonl"
    audit = tmp_path / "audit.sqlite3"
    result = run([str(mixed["dir"]), str(mixed["jsonl"]), "--out", str(out),
                  "--audit", str(audit), "--jobs", "1"])
    assert result.exit_code == 1, result.output
    rows = read_rows(out, "jsonl")
    assert [r["case_id"] for r in rows] == mixed["good"]
    assert [r["source"] for r in rows] == [
        {"file": str(mixed["dir"] / "a.json"), "line": None},
        {"file": str(mixed["dir"] / "b.json"), "line": None},
        {"file": str(mixed["jsonl"]), "line": 1},
        {"file": str(mixed["jsonl"]), "line": 4},
        {"file": str(mixed["jsonl"]), "line": 6},
    ]
    errors_path = tmp_path / "out.errors.jsonl"
    errors = [json.loads(line) for line in errors_path.read_text().splitlines()]
    where = [(Path(e["file"]).name, e["line"], e["kind"]) for e in errors]
    assert where == [
        ("c-invalid.json", None, "invalid"),
        ("d-broken.json", None, "not_json"),
        ("week.jsonl", 2, "not_json"),
        ("week.jsonl", 5, "not_json"),
    ]
    assert "review_date" in errors[0]["message"] and errors[0]["case_id"] == "BAD-1"
    assert "not valid JSON" in errors[2]["message"]
    assert "not UTF-8" in errors[3]["message"]
    assert "Decided 5 of 9 cases" in result.output
    assert "4 errors" in result.output
    assert len(trail_decisions(audit)) == 5
    assert no_temp_files(tmp_path)


def test_all_good_exits_0_and_summarises(tmp_path: Path) -> None:
    docs = cases(6)
    out = tmp_path / "res.csv"
    result = run([str(write_jsonl(tmp_path / "in.jsonl", docs)), "--out", str(out),
                  "--audit", str(tmp_path / "a.sqlite3")])
    assert result.exit_code == 0, result.output
    assert len(read_rows(out, "csv")) == 6
    assert (tmp_path / "res.errors.jsonl").read_text() == ""
    for word in ("outcome", "straight_knee", "condition", "errors"):
        assert word in result.output


def test_examples_batch_directory_and_jsonl(tmp_path: Path) -> None:
    out = tmp_path / "week.csv"
    result = run([str(EXAMPLES / "batch"), str(EXAMPLES / "batch" / "clinic-week.jsonl"),
                  "--out", str(out), "--no-record"])
    assert result.exit_code == 0, result.output
    rows = read_rows(out, "csv")
    assert len(rows) >= 3 and all(r["outcome"] in ("continue", "refer") for r in rows)


# ------------------------------------------------------------ formats


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
def test_formats_parse(tmp_path: Path, fmt: str) -> None:
    docs = cases(4)
    out = tmp_path / f"out.{fmt}"
    result = run([str(write_jsonl(tmp_path / "in.jsonl", docs)), "--out", str(out),
                  "--no-record"])
    assert result.exit_code == 0, result.output
    rows = read_rows(out, fmt)
    assert [r["case_id"] for r in rows] == [d["case_id"] for d in docs]
    if fmt == "csv":
        assert tuple(rows[0]) == CSV_COLUMNS
        assert rows[0]["line"] == "1" and rows[0]["file"] == str(tmp_path / "in.jsonl")
        assert rows[0]["condition_kind"] == docs[0]["condition"]["kind"]
        assert rows[0]["first_reason"]
    else:
        for row in rows:
            assert row["schema_version"] == 1 and row["reasons"]
            assert set(row["tracks"]) == {"straight_knee", "bent_knee", "energy_storage"}
            assert row["source"]["file"] == str(tmp_path / "in.jsonl")


def test_format_flag_overrides_suffix_and_unknown_suffix_is_a_usage_error(
    tmp_path: Path,
) -> None:
    src = str(write_jsonl(tmp_path / "in.jsonl", cases(2)))
    out = tmp_path / "decisions.txt"
    assert run([src, "--out", str(out), "--no-record"]).exit_code == 2
    assert not out.exists()
    result = run([src, "--out", str(out), "--format", "jsonl", "--no-record"])
    assert result.exit_code == 0
    assert len(read_rows(out, "jsonl")) == 2
    assert FORMAT_CHOICES == FORMATS


def test_empty_json_output_is_an_empty_list(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out.json"
    result = run([str(empty), "--out", str(out), "--no-record"])
    assert result.exit_code == 0
    assert json.loads(out.read_text()) == []


# ------------------------------------------------------------ order and jobs


def _strip_ids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "decision_id"} for r in rows]


def test_outputs_in_input_order_and_identical_for_jobs_1_and_2(tmp_path: Path) -> None:
    docs = cases(60, seed=3)
    first = write_jsonl(tmp_path / "first.jsonl", docs[:30], extra={5: "oops"})
    d = tmp_path / "dir"
    d.mkdir()
    for doc in docs[30:45]:
        (d / f"{doc['case_id']}.json").write_text(json.dumps(doc), encoding="utf-8")
    last = write_jsonl(tmp_path / "last.jsonl", docs[45:])
    inputs = [str(first), str(d), str(last)]
    results = {}
    for jobs in ("1", "2"):
        for fmt in ("jsonl", "csv"):
            out = tmp_path / f"out-{jobs}.{fmt}"
            result = run([*inputs, "--out", str(out), "--jobs", jobs, "--no-record"])
            assert result.exit_code == 1, result.output  # the planted bad line
            results[jobs, fmt] = read_rows(out, fmt)
        errs = (tmp_path / f"out-{jobs}.errors.jsonl").read_text()
        assert json.loads(errs)["line"] == 6
    assert [r["case_id"] for r in results["1", "jsonl"]] == [d["case_id"] for d in docs]
    for fmt in ("jsonl", "csv"):
        assert _strip_ids(results["1", fmt]) == _strip_ids(results["2", fmt])


CRASHING = """
import os, sys
from pathlib import Path
import calfrehab.engine.batch as b

_decide = b._decide_item


def crashing(item):  # in every worker (it imports this main module too)
    if item.line in (3, 17):
        os._exit(139)  # what a crash inside durable-rules looks like to the pool
    return _decide(item)


b._decide_item = crashing

if __name__ == "__main__":
    s = b.run_batch(b.BatchOptions(inputs=[sys.argv[1]], out=Path(sys.argv[2]), jobs=2,
                                   record=False, chunk_size=8))
    print(s.decided, s.errors)
"""


def test_a_crashing_worker_is_an_engine_error_not_the_end_of_the_batch(
    tmp_path: Path,
) -> None:
    docs = cases(30, seed=9)
    src = write_jsonl(tmp_path / "in.jsonl", docs)
    script = tmp_path / "crash.py"
    script.write_text(CRASHING, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    done = subprocess.run([sys.executable, str(script), str(src), str(out)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["28", "2"]
    rows = read_rows(out, "jsonl")
    assert [r["source"]["line"] for r in rows] == [n for n in range(1, 31) if n not in (3, 17)]
    errors = [json.loads(x) for x in (tmp_path / "out.errors.jsonl").read_text().splitlines()]
    assert [(e["line"], e["kind"]) for e in errors] == [(3, "engine"), (17, "engine")]
    assert "crashed" in errors[0]["message"]


# ------------------------------------------------------------ resume


def test_resume_after_a_partial_run_decides_each_case_once(tmp_path: Path) -> None:
    docs = cases(40, seed=11)
    src = write_jsonl(tmp_path / "in.jsonl", docs)
    audit = tmp_path / "audit.sqlite3"
    out = tmp_path / "out.jsonl"
    stop = threading.Event()

    def progress(done: int, total: int) -> None:
        if done >= 10:
            stop.set()  # what Ctrl-C does in the command

    partial = run_batch(
        BatchOptions(inputs=[src], out=out, jobs=1, audit_path=audit, chunk_size=4,
                     record_every=3),
        progress=progress, stop=stop,
    )
    assert partial.interrupted and 10 <= partial.decided < 40
    assert len(read_rows(out, "jsonl")) == partial.decided  # what was decided was written
    assert len(trail_decisions(audit)) == partial.decided

    result = run([str(src), "--out", str(out), "--audit", str(audit), "--resume",
                  "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert f"{partial.decided} already in the audit trail" in result.output
    entries = trail_decisions(audit)
    assert len(entries) == 40
    assert sorted(e.case_id for e in entries) == sorted(d["case_id"] for d in docs)
    assert len({e.case_sha256 for e in entries}) == 40
    rows = read_rows(out, "jsonl")
    assert [r["case_id"] for r in rows] == [d["case_id"] for d in docs]  # complete, in order
    recorded = {e.decision_id for e in entries}
    assert {r["decision_id"] for r in rows} == recorded

    again = run([str(src), "--out", str(out), "--audit", str(audit), "--resume"])
    assert again.exit_code == 0
    assert len(trail_decisions(audit)) == 40


def test_resume_needs_the_trail(tmp_path: Path) -> None:
    src = str(write_jsonl(tmp_path / "in.jsonl", cases(1)))
    result = run([src, "--out", str(tmp_path / "o.csv"), "--resume", "--no-record"])
    assert result.exit_code == 2


def test_ctrl_c_stops_cleanly_keeps_the_decided_and_says_how_to_resume(
    tmp_path: Path,
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", cases(600, seed=5))
    out = tmp_path / "out.csv"
    audit = tmp_path / "audit.sqlite3"
    cmd = [sys.executable, "-c", "from calfrehab.cli.main import cli; cli()", "batch",
           str(src), "--out", str(out), "--audit", str(audit), "--jobs", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    first = proc.stderr.readline()  # the first progress line: it is running
    assert first.startswith("batch:"), first
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr
    rows = read_rows(out, "csv")
    assert 0 < len(rows) < 600
    assert len(trail_decisions(audit)) == len(rows)
    assert no_temp_files(tmp_path)


# ------------------------------------------------------------ atomic outputs


def test_a_failing_run_leaves_no_half_written_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = str(write_jsonl(tmp_path / "in.jsonl", cases(40)))
    out = tmp_path / "out.jsonl"
    out.write_text("previous complete output\n")
    calls = {"n": 0}
    real = AuditTrail.record_many

    def failing(self: AuditTrail, items: Any, clinician: str | None = None) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise AuditError("disk full (simulated)")
        return real(self, items, clinician)

    monkeypatch.setattr(AuditTrail, "record_many", failing)
    monkeypatch.setattr(batch_lib, "RECORD_EVERY", 4)
    result = run([src, "--out", str(out), "--audit", str(tmp_path / "a.sqlite3"),
                  "--jobs", "1"])
    assert result.exit_code == 1
    assert "disk full" in result.output
    assert "Traceback" not in result.output
    assert out.read_text() == "previous complete output\n"
    assert not (tmp_path / "out.errors.jsonl").exists()
    assert no_temp_files(tmp_path)


def test_successful_run_leaves_no_temp_files_and_replaces_the_output(tmp_path: Path) -> None:
    src = str(write_jsonl(tmp_path / "in.jsonl", cases(3)))
    out = tmp_path / "out.csv"
    out.write_text("old\n")
    assert run([src, "--out", str(out), "--no-record"]).exit_code == 0
    assert len(read_rows(out, "csv")) == 3
    assert no_temp_files(tmp_path)
    # The one atomic writer: batch output holds patient data, so owner-only.
    assert out.stat().st_mode & 0o777 == 0o600


# ------------------------------------------------------------ the trail


def test_no_record_writes_no_trail(tmp_path: Path) -> None:
    audit = tmp_path / "audit.sqlite3"
    src = str(write_jsonl(tmp_path / "in.jsonl", cases(3)))
    result = run([src, "--out", str(tmp_path / "o.csv"), "--audit", str(audit),
                  "--no-record"])
    assert result.exit_code == 0
    assert not audit.exists()
    assert "--no-record" in result.output


def test_every_decision_recorded_once_with_the_clinician(tmp_path: Path) -> None:
    audit = tmp_path / "audit.sqlite3"
    docs = cases(7)
    out = tmp_path / "o.jsonl"
    result = run([str(write_jsonl(tmp_path / "in.jsonl", docs)), "--out", str(out),
                  "--audit", str(audit), "--clinician", "J. Physio"])
    assert result.exit_code == 0
    entries = trail_decisions(audit)
    assert [e.case_id for e in entries] == [d["case_id"] for d in docs]
    assert {e.clinician for e in entries} == {"J. Physio"}
    assert [e.decision_id for e in entries] == [r["decision_id"] for r in read_rows(out, "jsonl")]
    with AuditTrail(audit) as trail:
        assert trail.verify().ok


def test_audit_env_var_is_used(tmp_path: Path) -> None:
    audit = tmp_path / "env.sqlite3"
    src = str(write_jsonl(tmp_path / "in.jsonl", cases(2)))
    result = run([src, "--out", str(tmp_path / "o.csv")],
                 env={"CALFREHAB_AUDIT": str(audit)})
    assert result.exit_code == 0
    assert len(trail_decisions(audit)) == 2


# ------------------------------------------------------------ library details


def test_discover_skips_the_outputs_and_non_json(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "out.json").write_text("[]")
    (tmp_path / "x.txt").write_text("")
    found = batch_lib.discover([tmp_path], exclude=[tmp_path / "out.json"])
    assert [f.path.name for f in found] == ["a.json"]


def test_quiet_prints_nothing_on_success(tmp_path: Path) -> None:
    src = str(write_jsonl(tmp_path / "in.jsonl", cases(2)))
    result = run([src, "--out", str(tmp_path / "o.csv"), "--no-record", "--quiet"])
    assert result.exit_code == 0
    assert result.output == ""


def test_missing_input_is_a_usage_error(tmp_path: Path) -> None:
    result = run([str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 2


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux CPU affinity")
def test_default_jobs_is_the_cpu_count() -> None:
    assert batch_lib.default_jobs() == len(os.sched_getaffinity(0))
