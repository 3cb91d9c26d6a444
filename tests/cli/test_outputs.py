"""No output replaces what it should not (issue 21 item 4): every -o/--out
refuses an existing file unless --force; a case file is replaced only by the
same patient's case, never by another patient's or by a report, not even
with --force. Every refusal leaves the file byte-identical."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import EXAMPLES

from calfrehab.cli.main import cli

RUNNER = EXAMPLES / "runner-stuck-on-two-leg.json"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def refused(path: Path, *args: str) -> str:
    before = path.read_bytes()
    code, out = run(*args)
    assert code == 2, out
    assert path.read_bytes() == before
    return out


@pytest.mark.parametrize("command", [
    ["report", str(RUNNER), "-o"],
    ["handout", str(RUNNER), "-o"],
    ["fhir", "export", str(RUNNER), "--no-record", "-o"],
    ["audit", "export", "--out"],
    ["batch", str(RUNNER), "--no-record", "--quiet", "--format", "csv", "-o"],
])
def test_an_existing_output_needs_force(tmp_path: Path, command: list[str]) -> None:
    if command[0] == "audit":
        assert run("next", str(RUNNER))[0] == 0
    out = tmp_path / "out.txt"
    out.write_text("yesterday's\n", encoding="utf-8")
    message = refused(out, *command, str(out))
    assert "it exists; give --force" in message
    code, message = run(*command, str(out), "--force")
    assert code == 0, message
    assert out.read_text(encoding="utf-8") != "yesterday's\n"


@pytest.mark.parametrize("command", [
    ["report", str(RUNNER), "-o"],
    ["handout", str(RUNNER), "-o"],
    ["fhir", "export", str(RUNNER), "--no-record", "-o"],
])
def test_a_case_file_is_never_replaced_by_an_output(tmp_path: Path, command: list[str]) -> None:
    case = tmp_path / "mia.json"
    shutil.copy(EXAMPLES / "plantar-single-leg-to-weighted.json", case)
    message = refused(case, *command, str(case), "--force")
    assert "it is the case file of case" in message and "not even with --force" in message


def _bundle(case: Path, tmp_path: Path) -> Path:
    bundle = tmp_path / f"{case.stem}.bundle.json"
    code, out = run("fhir", "export", str(case), "--case-only", "-o", str(bundle))
    assert code == 0, out
    return bundle


def test_fhir_import_replaces_only_the_same_patients_case(tmp_path: Path) -> None:
    bundle = _bundle(RUNNER, tmp_path)
    mia = tmp_path / "mia.json"
    shutil.copy(EXAMPLES / "plantar-single-leg-to-weighted.json", mia)
    message = refused(mia, "fhir", "import", str(bundle), "-o", str(mia), "--force")
    assert "never replaced by case RUN-0001" in message
    refused(mia, "fhir", "import", str(bundle), "-o", str(mia))
    same = tmp_path / "run.json"
    assert run("fhir", "import", str(bundle), "-o", str(same))[0] == 0
    message = refused(same, "fhir", "import", str(bundle), "-o", str(same))
    assert "--force" in message
    code, message = run("fhir", "import", str(bundle), "-o", str(same), "--force")
    assert code == 0, message
    assert json.loads(same.read_text(encoding="utf-8"))["case_id"] == "RUN-0001"
