"""The service's own limits and configuration, apart from a record
system's calls: a decision past its time limit, a full queue, and
configurations that must not start."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from helpers import EXAMPLES, served

from calfrehab.cli.main import cli

RUNNER = EXAMPLES / "runner-stuck-on-two-leg.json"


def slow_case() -> bytes:
    """The runner's case with its sessions logged 6,000 times over (12,000
    sessions, about 2 MB): a few hundred milliseconds to decide. The
    example itself decides in a few milliseconds, which a busy machine can
    take to get from sending a decision to waiting for it, so the 504 must
    come from a decision that is slow in itself, not from a race."""
    doc = json.loads(RUNNER.read_text(encoding="utf-8"))
    doc["sessions"] = doc["sessions"] * 6000
    return json.dumps(doc).encode()


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A development server (no auth, loopback) whose decisions may take
    a microsecond, and of which only one may wait."""
    tmp = tmp_path_factory.mktemp("tight")
    (tmp / "tight.toml").write_text(
        f'audit = "{tmp / "audit.sqlite3"}"\n'
        "[limits]\ndecision_timeout_s = 0.000001\nmax_pending = 1\n"
        "max_body_bytes = 8388608\n")
    log = tmp / "server.log"
    with served(["--config", str(tmp / "tight.toml"), "--insecure-dev-no-auth"], tmp, log) as base:
        yield base, log


def test_a_decision_past_its_limit_is_504_and_the_service_goes_on(
        tight: tuple[str, Path]) -> None:
    base, log = tight

    body = slow_case()

    async def calls() -> list[int]:
        async with httpx.AsyncClient(timeout=120) as client:
            responses = await asyncio.gather(*(
                client.post(base + "/v1/decide?record=false", content=body,
                            headers={"Content-Type": "application/json"})
                for _ in range(5)))
        return [r.status_code for r in responses]

    statuses = asyncio.run(calls())
    # One decision may wait; it runs past its microsecond: 504. The others
    # found the one waiting place taken, or the worker restarting: 503.
    assert 504 in statuses
    assert set(statuses) <= {503, 504}
    # the worker was replaced, and the service still answers
    assert httpx.get(base + "/cds-services", timeout=30).status_code == 200
    text = log.read_text()
    assert "restarting the worker" in text
    assert "AUTHENTICATION IS OFF" in text and "UNAUTHENTICATED call accepted" in text


def run_serve(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["serve", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output + (result.stderr or "")


def test_no_auth_is_refused_off_loopback() -> None:
    code, out = run_serve("--insecure-dev-no-auth", "--host", "0.0.0.0")
    assert code == 2 and "loopback" in out


@pytest.mark.parametrize(("toml", "says"), [
    ('[[issuers]]\niss = "x"\njwks = {keys = []}\nalgorithms = ["HS256"]\n', "HS256"),
    ('[[issuers]]\niss = "x"\njwks_file = "missing.json"\n', "cannot read JWK Set"),
    ("[limits]\nmax_body_bytes = -1\n", "limits.max_body_bytes"),
    ("port = 'eighty'\n", "port"),
    ("nonsense = 1\n", "nonsense"),
    ("not toml [", "not valid TOML"),
])
def test_a_bad_configuration_is_refused_naming_the_key(tmp_path: Path, toml: str,
                                                       says: str) -> None:
    config = tmp_path / "cds.toml"
    config.write_text(toml)
    code, out = run_serve("--config", str(config))
    assert code == 1 and says in out, out
