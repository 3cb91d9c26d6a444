"""Settings from the environment (CALFREHAB_*): a value that cannot be used
is one line naming the setting, never a traceback (issue 27: a huge input
cap overflowed an index deep in a read; a zero check timeout escaped
`rules check` as a traceback)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import REPO

CASE = str(REPO / "examples" / "runner-stuck-on-two-leg.json")


def calfrehab(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "calfrehab.cli", *args], capture_output=True,
                          text=True, env={**os.environ, **env}, check=False, timeout=120)


@pytest.mark.parametrize(("setting", "value", "expected"), [
    ("CALFREHAB_MAX_INPUT_BYTES", "99999999999999999999999",
     "too large; expected a whole number from 1 to 9_007_199_254_740_992"),
    ("CALFREHAB_MAX_INPUT_BYTES", "-1", "expected a whole number greater than 0"),
    ("CALFREHAB_MAX_INPUT_BYTES", "ten", "expected a whole number greater than 0"),
])
def test_a_bad_input_cap_is_one_line_naming_it(setting: str, value: str, expected: str) -> None:
    result = calfrehab("next", CASE, "--no-record", **{setting: value})
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"error: {setting}={value!r}: {expected}\n"


def test_a_zero_rules_check_timeout_is_one_line_naming_it() -> None:
    result = calfrehab("rules", "check", CALFREHAB_RULES_CHECK_TIMEOUT="0")
    assert result.returncode == 1
    assert result.stderr == ("error: CALFREHAB_RULES_CHECK_TIMEOUT='0': expected a whole "
                             "number greater than 0\n")


def test_a_large_but_sane_cap_still_reads_in_pieces() -> None:
    # 2**53 is allowed; reading must not try to allocate it.
    result = calfrehab("next", CASE, "--no-record", "--json",
                       CALFREHAB_MAX_INPUT_BYTES=str(2**53))
    assert result.returncode == 0, result.stderr
