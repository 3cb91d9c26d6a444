"""The service signs heads of its trail on a schedule (issue 27 item 3:
"batch and serve can write one on a schedule"): the real service on a
loopback port, a trail with decisions, and the checkpoint log it appends to,
checked afterwards as an auditor would (``audit verify --checkpoint``)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import EXAMPLES, served

from calfrehab.cli.main import cli


def _clinic(tmp: Path, every_s: float, key: str = "clinic.key") -> Path:
    runner = CliRunner()
    assert runner.invoke(cli, ["audit", "keygen", str(tmp / "clinic.key")]).exit_code == 0
    for name in ("runner-stuck-on-two-leg.json", "plantar-single-leg-to-weighted.json"):
        out = runner.invoke(cli, ["next", str(EXAMPLES / name), "--audit",
                                  str(tmp / "audit.sqlite3")])
        assert out.exit_code == 0, out.output
    config = tmp / "cds.toml"
    config.write_text(f'audit = "{tmp / "audit.sqlite3"}"\ntimezone = "UTC"\n'
                      f'[checkpoint]\nkey = "{key}"\nlog = "checkpoints.log"\n'
                      f"every_s = {every_s}\n")
    return config


def test_the_service_appends_a_signed_head_that_verifies(tmp_path: Path) -> None:
    config = _clinic(tmp_path, every_s=0.2)
    log = tmp_path / "checkpoints.log"
    # --audit as well: CALFREHAB_AUDIT (set for every test) wins over the file.
    with served(["--config", str(config), "--audit", str(tmp_path / "audit.sqlite3")],
                tmp_path, tmp_path / "server.log"):
        deadline = time.monotonic() + 60
        while not (log.exists() and log.read_text().strip()):
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.1)
    heads = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    # Once while running, and not again at shutdown: the trail had not grown.
    assert len(heads) == 1, heads
    verified = CliRunner().invoke(cli, [
        "audit", "verify", "--audit", str(tmp_path / "audit.sqlite3"),
        "--checkpoint", str(log), "--public-key", str(tmp_path / "clinic.key.pub")])
    assert verified.exit_code == 0, verified.output


def test_a_key_that_cannot_sign_stops_the_service_at_start(tmp_path: Path) -> None:
    config = _clinic(tmp_path, every_s=3600, key="no-such.key")
    result = subprocess.run(
        [sys.executable, "-c", "from calfrehab.cli.main import cli; cli()", "serve",
         "--config", str(config), "--port", "0"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False)
    assert result.returncode != 0
    assert "checkpoint.key" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "checkpoints.log").exists()


@pytest.mark.parametrize("every_s", ["0", "-1"])
def test_a_schedule_of_no_time_is_refused(tmp_path: Path, every_s: str) -> None:
    config = _clinic(tmp_path, every_s=1)
    config.write_text(config.read_text().replace("every_s = 1", f"every_s = {every_s}"))
    result = subprocess.run(
        [sys.executable, "-c", "from calfrehab.cli.main import cli; cli()", "serve",
         "--config", str(config), "--port", "0"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False)
    assert result.returncode != 0
    assert "checkpoint.every_s" in result.stderr and "Traceback" not in result.stderr
