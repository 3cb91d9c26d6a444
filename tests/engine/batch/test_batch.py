"""The batch command (calfrehab/cli/batch_cmd.py) and library (calfrehab/engine/batch/):
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
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import REPO

from calfrehab.cli.batch_cmd import FORMAT_CHOICES
from calfrehab.cli.main import cli
from calfrehab.engine import batch as batch_lib
from calfrehab.engine.batch import CSV_COLUMNS, FORMATS, BatchOptions, run_batch
from calfrehab.engine.batch import local as batch_local
from calfrehab.engine.safeio import TEMP_SUFFIX
from calfrehab.engine.trail.audit import AuditError, AuditTrail

ROOT = REPO
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
    return not [p for p in directory.iterdir() if p.name.endswith((".tmp", TEMP_SUFFIX))]


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
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
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
import calfrehab.engine.batch.worker as w

_decide = w.decide_item


def crashing(item, **options):  # in every worker (it imports this main module too)
    if item.line in (3, 17):
        os._exit(139)  # what a crash inside durable-rules looks like to the pool
    return _decide(item, **options)


w.decide_item = crashing

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
    real = AuditTrail.record_prepared

    def failing(self: AuditTrail, items: Any, clinician: str | None = None) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise AuditError("disk full (simulated)")
        return real(self, items, clinician)

    monkeypatch.setattr(AuditTrail, "record_prepared", failing)
    monkeypatch.setattr(batch_local, "RECORD_EVERY", 4)
    result = run([src, "--out", str(out), "--audit", str(tmp_path / "a.sqlite3"),
                  "--jobs", "1", "--force"])
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
    # An existing output is replaced only with --force (issue 21).
    refused = run([src, "--out", str(out), "--no-record"])
    assert refused.exit_code == 2 and "--force" in refused.output
    assert out.read_text() == "old\n"
    assert run([src, "--out", str(out), "--no-record", "--force"]).exit_code == 0
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


def test_discover_takes_json_in_any_case_and_lists_the_rest(tmp_path: Path) -> None:
    for name in ("a.json", "B.JSON", "c.Json", "x.txt", "y.jsonl"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "sub").mkdir()
    found = batch_lib.discover([tmp_path])
    assert [f.path.name for f in found.files] == ["B.JSON", "a.json", "c.Json"]
    assert [p.name for p in found.skipped] == ["sub", "x.txt", "y.jsonl"]


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


# ------------------------------------------------------------ issue 16: outputs that destroy data


def _refused(result: Any, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


def test_an_output_that_is_an_input_is_refused_before_any_work(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", cases(3))
    before = src.read_bytes()
    audit = tmp_path / "a.sqlite3"
    _refused(run([str(src), "--out", str(src), "--format", "jsonl", "--audit", str(audit)]),
             "refusing", "input")
    _refused(run([str(src), "--out", str(tmp_path / "o.csv"), "--errors", str(src),
                  "--audit", str(audit)]), "input")
    assert src.read_bytes() == before
    assert not audit.exists()  # nothing was decided or recorded
    d = tmp_path / "dir"
    d.mkdir()
    case = d / "case.json"
    case.write_text(json.dumps(cases(1)[0]), encoding="utf-8")
    kept = case.read_bytes()
    _refused(run([str(d), "--out", str(case), "--no-record"]), "input")
    assert case.read_bytes() == kept


def test_the_trail_and_its_wal_are_never_an_output(tmp_path: Path) -> None:
    src = str(write_jsonl(tmp_path / "in.jsonl", cases(2)))
    audit = tmp_path / "clinic.sqlite3"
    assert run([src, "--out", str(tmp_path / "o.csv"), "--audit", str(audit)]).exit_code == 0
    trail_bytes = audit.read_bytes()
    for target in (audit, tmp_path / "clinic.sqlite3-wal"):
        _refused(run([src, "--out", str(target), "--format", "csv", "--audit", str(audit)]),
                 "audit trail")
    _refused(run([src, "--out", str(tmp_path / "o2.csv"), "--errors", str(audit),
                  "--audit", str(audit)]), "audit trail")
    assert audit.read_bytes() == trail_bytes
    assert len(trail_decisions(audit)) == 2


def test_a_symlink_or_a_device_is_never_replaced(tmp_path: Path) -> None:
    src = str(write_jsonl(tmp_path / "in.jsonl", cases(2)))
    real = tmp_path / "real.csv"
    real.write_text("keep\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    _refused(run([src, "--out", str(link), "--no-record"]), "symlink")
    assert link.is_symlink() and real.read_text() == "keep\n"
    _refused(run([src, "--out", "/dev/null", "--format", "csv", "--no-record"]), "device")
    assert Path("/dev/null").is_char_device()


# ------------------------------------------------------------ issue 16: faults


def test_killing_a_worker_mid_batch_rebuilds_the_pool_and_decides_every_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = cases(240, seed=21)
    src = write_jsonl(tmp_path / "in.jsonl", docs)
    pools: list[Any] = []
    real_start = batch_local._Run._start_executor

    def start(self: Any) -> None:
        real_start(self)
        pools.append(self.executor)

    monkeypatch.setattr(batch_local._Run, "_start_executor", start)
    killed: list[int] = []

    def progress(done: int, total: int) -> None:
        if not killed and done >= 16:
            pool = pools[-1]
            pid = next(iter(pool._processes))  # one worker of the first pool
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            # Let the pool see it before the next submission: that is when
            # submit() itself raised BrokenProcessPool and ended the run.
            deadline = time.monotonic() + 20
            while not pool._broken and time.monotonic() < deadline:
                time.sleep(0.01)

    out = tmp_path / "out.jsonl"
    summary = run_batch(BatchOptions(inputs=[src], out=out, jobs=2, chunk_size=4,
                                     record=False), progress=progress)
    assert killed and len(pools) >= 2  # a worker was killed and the pool rebuilt
    assert summary.complete, summary.as_dict()
    assert [r["case_id"] for r in read_rows(out, "jsonl")] == [d["case_id"] for d in docs]


RESUMER = """
import sys
from pathlib import Path
from calfrehab.cli.main import cli
cli(["batch", sys.argv[1], "--out", sys.argv[2], "--audit", sys.argv[3], "--resume",
     "--jobs", "1", "--quiet"])
"""


def test_two_concurrent_resumes_on_one_trail_decide_each_case_once(tmp_path: Path) -> None:
    docs = cases(150, seed=23)
    src = write_jsonl(tmp_path / "in.jsonl", docs)
    audit = tmp_path / "audit.sqlite3"
    script = tmp_path / "resume.py"
    script.write_text(RESUMER, encoding="utf-8")
    procs = [subprocess.Popen([sys.executable, str(script), str(src),
                               str(tmp_path / f"out{i}.csv"), str(audit)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outcomes = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in procs]
    for code, err in outcomes:
        assert code in (0, 2), err
        if code == 2:
            assert "another batch" in err and "Traceback" not in err
    entries = trail_decisions(audit)
    assert sorted(e.case_id for e in entries) == sorted(d["case_id"] for d in docs)


def test_a_batch_holding_the_trail_refuses_a_second_one(tmp_path: Path) -> None:
    from calfrehab.engine.batch.lock import TrailRunLock

    audit = tmp_path / "audit.sqlite3"
    src = str(write_jsonl(tmp_path / "in.jsonl", cases(2)))
    with TrailRunLock(audit):
        result = run([src, "--out", str(tmp_path / "o.csv"), "--audit", str(audit),
                      "--resume"])
        _refused(result, "another batch", f"process {os.getpid()}")
    assert run([src, "--out", str(tmp_path / "o.csv"), "--audit", str(audit),
                "--resume"]).exit_code == 0  # released


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat_file.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_workers_die_with_a_killed_parent_and_temp_files_are_swept(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", cases(3000, seed=25))
    out = tmp_path / "out.csv"
    cmd = [sys.executable, "-c", "from calfrehab.cli.main import cli; cli()", "batch",
           str(src), "--out", str(out), "--no-record", "--jobs", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()  # the first progress line: workers are deciding
    assert line.startswith("batch:"), line
    family = _descendants(proc.pid)
    assert len(family) >= 2  # the forkserver and the workers (and the resource tracker)
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_running(p) for p in family):
        time.sleep(0.2)
    assert not [p for p in family if _running(p)]
    assert not no_temp_files(tmp_path)  # the killed run left its temporary output
    small = write_jsonl(tmp_path / "small.jsonl", cases(2))
    assert run([str(small), "--out", str(out), "--no-record"]).exit_code == 0
    assert no_temp_files(tmp_path)  # swept by the next run


# ------------------------------------------------------------ issue 16: smaller


def test_upper_case_json_is_decided_and_skipped_files_are_listed(tmp_path: Path) -> None:
    d = tmp_path / "dir"
    d.mkdir()
    docs = cases(2, seed=27)
    (d / "c.JSON").write_text(json.dumps(docs[0]), encoding="utf-8")
    (d / "d.json").write_text(json.dumps(docs[1]), encoding="utf-8")
    (d / "notes.txt").write_text("x")
    (d / "week.jsonl").write_text("")
    out = tmp_path / "o.csv"
    result = run([str(d), "--out", str(out), "--no-record"])
    assert result.exit_code == 0, result.output
    assert [r["case_id"] for r in read_rows(out, "csv")] == [docs[0]["case_id"],
                                                           docs[1]["case_id"]]
    assert "Skipped 2 files that are not a case file" in result.output
    assert "notes.txt" in result.output and "week.jsonl" in result.output


def test_an_empty_directory_says_no_case_file_was_found(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "o.csv"
    result = run([str(empty), "--out", str(out), "--no-record"])
    assert result.exit_code == 1
    assert "no case file found" in result.output
    assert not out.exists()


@pytest.mark.parametrize("jobs", ["99999999999999999999", "1000"])
def test_jobs_is_capped_with_a_clear_message(tmp_path: Path, jobs: str) -> None:
    src = str(write_jsonl(tmp_path / "in.jsonl", cases(2)))
    result = run([src, "--out", str(tmp_path / "o.csv"), "--no-record", "--jobs", jobs])
    _refused(result, f"at most {batch_lib.max_jobs()}")
    assert not (tmp_path / "o.csv").exists()


FSIZE = """
import resource, sys
from calfrehab.cli.main import cli
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
cli(["batch", sys.argv[1], "--out", sys.argv[2], "--no-record", "--jobs", "1", "--quiet"])
"""


def test_a_write_error_on_output_is_a_clean_error_naming_the_file(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", cases(40))
    out = tmp_path / "o.jsonl"
    script = tmp_path / "fsize.py"
    script.write_text(FSIZE, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), str(src), str(out)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"cannot write {out}" in done.stderr and "too large" in done.stderr
    assert not out.exists() and no_temp_files(tmp_path)


def test_csv_cells_are_neutralised_against_formula_injection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    d = tmp_path / "dir"
    d.mkdir()
    doc = cases(1, seed=29)[0]
    names = ["+1.json", "-1.json", "=HYPERLINK(1).json", "@SUM(1).json"]
    for name in names:
        (d / name).write_text(json.dumps(doc), encoding="utf-8")
    monkeypatch.chdir(d)  # the file cell is then the bare name, starting with the trigger
    out = tmp_path / "o.csv"
    assert run([".", "--out", str(out), "--no-record"]).exit_code == 0
    rows = read_rows(out, "csv")
    assert [r["file"] for r in rows] == ["'" + n for n in names]
    assert all(not r["line"] for r in rows)  # numbers are not touched


# ------------------------------------------------------------ the CSV columns (issue 13)


def test_csv_has_review_date_units_and_a_reason_column_per_track(tmp_path: Path) -> None:
    docs = cases(30, seed=31)
    out_csv = tmp_path / "o.csv"
    out_jsonl = tmp_path / "o.jsonl"
    src = str(write_jsonl(tmp_path / "in.jsonl", docs))
    assert run([src, "--out", str(out_csv), "--no-record"]).exit_code == 0
    assert run([src, "--out", str(out_jsonl), "--no-record"]).exit_code == 0
    for row, decision in zip(read_rows(out_csv, "csv"), read_rows(out_jsonl, "jsonl"),
                             strict=True):
        assert row["review_date"] == decision["review_date"]
        texts = {t: [r["text"] for r in decision["reasons"] if r.get("track") == t]
                 for t in ("straight_knee", "bent_knee", "energy_storage", None)}
        for track, info in decision["tracks"].items():
            nxt = info["next"] or {}
            assert row[f"{track}_next_unit"] == (nxt.get("unit") or "")
            assert row[f"{track}_reasons"].split(" | ") == (texts[track] or [""])
        assert row["reasons"].split(" | ") == (texts[None] or [""])


def test_every_csv_column_is_documented_in_the_help_and_the_docs() -> None:
    help_text = " ".join(CliRunner().invoke(cli, ["batch", "--help"]).output.split())
    docs = (ROOT / "docs" / "batch.md").read_text(encoding="utf-8")
    for column in CSV_COLUMNS:
        generic = column
        for track in ("straight_knee", "bent_knee", "energy_storage"):
            generic = generic.replace(f"{track}_", "<track>_", 1) if column.startswith(
                track) else generic
        assert generic in help_text, column
        assert f"`{column}`" in docs or f"`{generic}`" in docs, column
    assert set(batch_lib.CSV_COLUMN_DOCS) == set(CSV_COLUMNS)


def test_validate_on_an_empty_directory_says_no_case_file_was_found(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    result = CliRunner().invoke(cli, ["validate", str(empty)])
    assert result.exit_code == 1
    assert "no case file found" in result.output
    (empty / "C.JSON").write_text(json.dumps(cases(1)[0]), encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", str(empty)])
    assert result.exit_code == 0 and "C.JSON" in result.output


# ------------------------------------------------------------ Dask (issue 15)


def test_dask_local_cluster_gives_the_local_batch_rows_and_a_verified_sharded_trail(
    tmp_path: Path,
) -> None:
    pytest.importorskip("distributed", reason="calfrehab[dask] is part of the test extras")
    from calfrehab.engine.trail.shards import read_manifest, shard_path, verify_sharded

    docs = cases(90, seed=33)
    src = write_jsonl(tmp_path / "in.jsonl", docs, extra={40: "not json"})
    d = tmp_path / "dir"
    d.mkdir()
    (d / "X.JSON").write_text(json.dumps(cases(1, seed=34)[0]), encoding="utf-8")
    local_out, dask_out = tmp_path / "local.csv", tmp_path / "dask.csv"
    assert run([str(src), str(d), "--out", str(local_out), "--jobs", "1",
                "--no-record"]).exit_code == 1
    audit = tmp_path / "audit.sqlite3"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f".dask.csv.{dead}.parts.x1"  # what a killed Dask batch leaves
    stale.mkdir()
    (stale / "part-00000.csv").write_text("x")
    summary = run_batch(BatchOptions(inputs=[src, d], out=dask_out, jobs=2, dask="local",
                                     audit_path=audit, partition_size=25))
    assert not stale.exists()  # swept by the next run
    assert summary.decided == 91 and summary.errors == 1 and summary.partitions == 4
    assert _strip_ids(read_rows(dask_out, "csv")) == _strip_ids(read_rows(local_out, "csv"))
    local_errors = (tmp_path / "local.errors.jsonl").read_text()
    assert (tmp_path / "dask.errors.jsonl").read_text() == local_errors
    shards = tmp_path / "audit.sqlite3.shards"
    report = verify_sharded(shards)
    assert report.ok and report.entries_checked == 91, report
    assert len(read_manifest(shards).shards) == 4
    assert verify_sharded(shards, partition=1).ok  # one shard alone
    recorded = {r["decision_id"] for r in read_rows(dask_out, "csv")}
    in_shards: set[str] = set()
    for i in range(4):
        with AuditTrail(shard_path(shards, i)) as trail:
            in_shards |= {e.decision_id for e in trail.entries(kind="decision")}
    assert in_shards == recorded
    assert not [p for p in tmp_path.iterdir() if ".parts." in p.name]  # parts merged, removed
    # A shard removed breaks the whole.
    shard_path(shards, 2).unlink()
    assert not verify_sharded(shards).ok


def test_a_local_dask_cluster_serves_http_on_loopback_and_no_fixed_port() -> None:
    """``--dask local``: the scheduler's own HTTP server (health, metrics)
    listens on 127.0.0.1 at a free port; a fixed 8787 would clash with a
    second batch (or any other Dask) on the machine."""
    from calfrehab.engine.batch import dask_backend

    client, cluster = dask_backend._client("local", 1)
    try:
        http = cluster.scheduler.http_server
        assert http.address == "127.0.0.1"
        assert http.port != 8787
    finally:
        client.close()
        cluster.close()


def test_a_worker_killed_while_sending_its_result_cannot_hang_the_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The CPython hang: the dead worker left half a message in the result
    # pipe, so the pool's manager thread never fails the future. The batch
    # kills the other workers and closes the parent's end of the pipe; the
    # manager thread then reads end-of-file and breaks the pool.
    import threading
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    monkeypatch.setattr(batch_local, "WORKER_DEATH_GRACE_S", 0.2)
    fut: Future[Any] = Future()
    killed: list[str] = []

    class Process:
        def __init__(self, name: str, alive: bool) -> None:
            self.name, self.alive = name, alive

        def is_alive(self) -> bool:
            return self.alive

        def kill(self) -> None:
            killed.append(self.name)

    class Writer:
        def close(self) -> None:  # what the manager thread then sees
            fut.set_exception(BrokenProcessPool("end of file on the result pipe"))

    class Queue:
        _writer = Writer()

    class StuckPool:
        def __init__(self) -> None:
            self._processes = {1: Process("dead", alive=False), 2: Process("waiting", alive=True)}
            self._result_queue = Queue()

    run = batch_local._Run.__new__(batch_local._Run)
    run.executor = StuckPool()
    # Without the remedy the wait would never end: a result arrives after
    # 10 s instead, and the test fails rather than hangs.
    def arrive_late() -> None:
        if not fut.done():
            fut.set_result(["hung"])

    threading.Timer(10, arrive_late).start()
    with pytest.raises(BrokenProcessPool):
        run._result_of(fut)
    assert "waiting" in killed


def test_a_slow_result_with_every_worker_alive_is_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading
    from concurrent.futures import Future

    monkeypatch.setattr(batch_local, "WORKER_DEATH_GRACE_S", 0.1)
    fut: Future[Any] = Future()

    class Alive:
        def is_alive(self) -> bool:
            return True

        def kill(self) -> None:
            raise AssertionError("a live pool is never killed")

    class Pool:
        def __init__(self) -> None:
            self._processes = {1: Alive()}

    run = batch_local._Run.__new__(batch_local._Run)
    run.executor = Pool()
    threading.Timer(1.2, fut.set_result, args=(["decided"],)).start()
    assert run._result_of(fut) == ["decided"]


def test_the_trail_is_recorded_in_large_transactions_then_short_ones_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # RECORD_EVERY decisions a transaction while more than that are still to
    # come; RECORD_TAIL in the last ones, which run beside fewer workers
    # (the very last one after they finish).
    sizes: list[int] = []
    real = AuditTrail.record_prepared

    def counted(self: AuditTrail, items: Any, clinician: str | None = None) -> Any:
        sizes.append(len(items))
        return real(self, items, clinician)

    monkeypatch.setattr(AuditTrail, "record_prepared", counted)
    monkeypatch.setattr(batch_local, "RECORD_EVERY", 8)
    monkeypatch.setattr(batch_local, "RECORD_TAIL", 3)
    src = write_jsonl(tmp_path / "in.jsonl", cases(30))
    audit = tmp_path / "audit.sqlite3"
    summary = run_batch(BatchOptions(inputs=[src], out=tmp_path / "out.csv", jobs=1,
                                     audit_path=audit, chunk_size=1))
    assert summary.decided == summary.recorded == 30
    # 8 at 8 and 16 seen; from 23 seen (7 to come) at 3: the 7 held, 3, 3, the last one
    assert sizes == [8, 8, 7, 3, 3, 1]
    assert len(trail_decisions(audit)) == 30


def test_the_heap_is_trimmed_after_each_transaction_once_its_results_are_freed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # glibc keeps the memory a transaction's results leave free unless told
    # to give it back: without a trim a long batch's resident memory crept up
    # with it (benchmarks/memory_plateau.py). One trim per transaction, after
    # the rows are written and the results dropped; none without a trail.
    events: list[str] = []
    real = AuditTrail.record_prepared

    def recorded(self: AuditTrail, items: Any, clinician: str | None = None) -> Any:
        events.append(f"record {len(items)}")
        return real(self, items, clinician)

    real_trim = batch_local.release_free_heap

    def trimmed() -> bool:
        events.append("trim")
        return real_trim()

    monkeypatch.setattr(AuditTrail, "record_prepared", recorded)
    monkeypatch.setattr(batch_local, "RECORD_EVERY", 8)
    monkeypatch.setattr(batch_local, "RECORD_TAIL", 8)
    src = write_jsonl(tmp_path / "in.jsonl", cases(20))
    monkeypatch.setattr(batch_local, "release_free_heap", trimmed)
    summary = run_batch(BatchOptions(inputs=[src], out=tmp_path / "out.csv", jobs=1,
                                     audit_path=tmp_path / "audit.sqlite3", chunk_size=1))
    assert summary.recorded == 20
    assert events == ["record 8", "trim", "record 8", "trim", "record 4", "trim"]
    events.clear()
    run_batch(BatchOptions(inputs=[src], out=tmp_path / "out2.csv", jobs=1, record=False,
                           chunk_size=1))
    assert events == []
    # On glibc (this machine's libc) the trim is glibc's own.
    assert real_trim() is (batch_local._malloc_trim() is not None)
