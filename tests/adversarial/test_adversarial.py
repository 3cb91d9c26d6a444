"""Runs every row of the adversarial tables in tests/adversarial/*.yaml.

See tests/adversarial/README.md for the row format. A row is a probe a
careless clinic or an attacker might try; each pins the outcome the program
must give (exit status, message) and what must never happen (a traceback, a
hang, an input replaced, a flood of output).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from helpers import REPO, probe_rules

from calfrehab.cli.main import cli
from calfrehab.engine.casefile import docpath
from calfrehab.engine.knowledge.loader import default_rules_dir

# The tables sit beside this file (tests/adversarial/*.yaml).
TABLES = Path(__file__).resolve().parent
ALWAYS_FORBIDDEN = ("Traceback",)
_REPEAT = re.compile(r"\{repeat:([^:{}]*):(\d+)\}")


@dataclass
class Row:
    table: str
    id: str
    command: list[Any]
    exit: int
    setup: list[dict[str, Any]] = field(default_factory=list)
    message: list[str] = field(default_factory=list)
    must_not: list[str] = field(default_factory=list)
    max_output_bytes: int | None = None
    unchanged: list[str] = field(default_factory=list)
    file_contains: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    stdin: str | None = None
    via: str = "cli"
    timeout: float = 60
    item: int | None = None
    why: str = ""


_KEYS = {"id", "command", "exit", "setup", "message", "must_not", "max_output_bytes",
         "unchanged", "file_contains", "env", "stdin", "via", "timeout", "item", "why"}


def load_rows() -> list[Row]:
    rows: list[Row] = []
    seen: set[str] = set()
    for path in sorted(TABLES.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        assert isinstance(data, list), f"{path.name}: a table is a YAML list of rows"
        for raw in data:
            unknown = set(raw) - _KEYS
            assert not unknown, f"{path.name} {raw.get('id')}: unknown keys {sorted(unknown)}"
            assert raw["id"] not in seen, f"{path.name}: row id {raw['id']} used twice"
            seen.add(raw["id"])
            msg = raw.pop("message", [])
            rows.append(Row(table=path.name, message=[msg] if isinstance(msg, str) else msg,
                            **raw))
    # No tables found (a moved folder) would parametrize nothing, which pytest
    # reports as one skip: fail at collection instead.
    assert rows, f"no adversarial rows under {TABLES}"
    return rows


ROWS = load_rows()


def test_the_tables_are_not_empty() -> None:
    # A table that fails to load (or is emptied) must not pass quietly.
    assert len(ROWS) >= 10
    assert {r.table for r in ROWS} >= {"inputs.yaml"}


# ------------------------------------------------------------------ expansion


def _expand(text: str, tmp: Path) -> str:
    text = _REPEAT.sub(lambda m: m.group(1) * int(m.group(2)), text)
    return (text.replace("{tmp}", str(tmp)).replace("{repo}", str(REPO))
            .replace("{examples}", str(REPO / "examples"))
            .replace("{rules}", str(default_rules_dir())))


def _arg(item: Any, tmp: Path) -> str:
    if isinstance(item, dict):
        return os.fsdecode(bytes.fromhex(item["bytes_hex"]))
    return _expand(str(item), tmp)


def _case_text(spec: dict[str, Any], tmp: Path) -> str:
    doc = json.loads((REPO / spec["from"]).read_text(encoding="utf-8"))
    for path, value in (spec.get("set") or {}).items():
        docpath.set_path(doc, path, value)
    raw: dict[str, str] = {}
    for i, (path, text) in enumerate((spec.get("set_json") or {}).items()):
        marker = f"@@RAW{i}@@"
        docpath.set_path(doc, path, marker)
        raw[json.dumps(marker)] = _expand(text, tmp)
    for key, value in (spec.get("extra_keys") or {}).items():
        doc[_expand(key, tmp)] = value
    out = json.dumps(doc, ensure_ascii=False)
    for marker, text in raw.items():
        out = out.replace(marker, text)
    return out


def build(spec: dict[str, Any], tmp: Path) -> None:
    path = tmp / spec.get("path", ".")
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = spec.get("kind", "file")
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir(exist_ok=True)
    elif kind == "symlink":
        path.symlink_to(_expand(spec["target"], tmp))
    elif kind == "rules":
        shutil.copytree(default_rules_dir(), path, ignore=shutil.ignore_patterns("__*"))
        for name, text in (spec.get("files") or {}).items():
            (path / name).write_text(_expand(text, tmp), encoding="utf-8")
        if "generate" in spec:
            gen = spec["generate"]
            (path / "generated.yaml").write_text(
                probe_rules(int(gen["count"]), distinct=bool(gen.get("distinct", True))),
                encoding="utf-8")
    elif kind in ("file", "case"):
        if kind == "case":
            data = _case_text(spec, tmp).encode("utf-8")
        elif "bytes_hex" in spec:
            data = bytes.fromhex(spec["bytes_hex"])
        else:
            data = _expand(spec.get("text", ""), tmp).encode("utf-8")
        data = b"\xef\xbb\xbf" * int(spec.get("bom", 0)) + data
        path.write_bytes(data)
    elif kind == "run":
        # A calfrehab command run as setup (to record a trail, say); must succeed.
        code, output = run_row(Row(table="", id="setup", command=spec["command"],
                                   exit=0), tmp)
        assert code == 0, f"setup command failed ({code}):\n{output}"
    else:
        raise AssertionError(f"unknown setup kind {kind!r}")


def _fingerprint(path: Path) -> tuple[str, str]:
    st = os.lstat(path)
    if stat.S_ISREG(st.st_mode):
        return "file", hashlib.sha256(path.read_bytes()).hexdigest()
    if stat.S_ISLNK(st.st_mode):
        return "symlink", os.readlink(path)
    return oct(stat.S_IFMT(st.st_mode)), ""


# ------------------------------------------------------------------ running


def run_row(row: Row, tmp: Path) -> tuple[int, str]:
    env = {"CALFREHAB_AUDIT": str(tmp / "audit.sqlite3"),
           **{k: _expand(str(v), tmp) for k, v in row.env.items()}}
    args = [_arg(a, tmp) for a in row.command]
    if row.via == "cli":
        stdin = _expand(row.stdin, tmp) if row.stdin is not None else None
        result = CliRunner().invoke(cli, args, env=env, input=stdin)
        output = result.output  # stdout and stderr, interleaved
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            import traceback

            output += "Traceback (uncaught in CliRunner)\n" + "".join(
                traceback.format_exception(result.exception))
        return result.exit_code, output
    assert row.via == "subprocess", f"{row.id}: via is cli or subprocess"
    full_env = {**os.environ, **env}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "calfrehab.cli", *[os.fsencode(a) for a in args]],
            input=_expand(row.stdin, tmp).encode() if row.stdin is not None else None,
            stdin=None if row.stdin is not None else subprocess.DEVNULL,
            capture_output=True, env=full_env, timeout=row.timeout, cwd=tmp,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{row.id}: hung (no exit within {row.timeout} s)")
    out = proc.stdout + proc.stderr
    return proc.returncode, out.decode("utf-8", "backslashreplace")


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_adversarial_row(row: Row, tmp_path: Path) -> None:
    for spec in row.setup:
        build(spec, tmp_path)
    before = {p: _fingerprint(tmp_path / p) for p in row.unchanged}
    code, output = run_row(row, tmp_path)
    shown = output if len(output) < 3000 else output[:3000] + f"... ({len(output)} chars)"
    for bad in (*ALWAYS_FORBIDDEN, *row.must_not):
        assert bad not in output, f"{row.id}: {bad!r} in output:\n{shown}"
    assert code == row.exit, f"{row.id}: exit {code}, expected {row.exit}:\n{shown}"
    for want in row.message:
        assert want in output, f"{row.id}: {want!r} not in output:\n{shown}"
    if row.max_output_bytes is not None:
        size = len(output.encode("utf-8", "surrogateescape"))
        assert size <= row.max_output_bytes, f"{row.id}: {size} bytes of output"
    for p, fp in before.items():
        assert _fingerprint(tmp_path / p) == fp, f"{row.id}: {p} was changed"
    for p, want in row.file_contains.items():
        text = (tmp_path / p).read_text(encoding="utf-8")
        assert _expand(want, tmp_path) in text, f"{row.id}: {want!r} not in {p}:\n{text[:2000]}"
