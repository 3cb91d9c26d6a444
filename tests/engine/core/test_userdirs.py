"""engine/userdirs.py answers as platformdirs does, under every setting
of the XDG variables and HOME it answers itself, and leaves the rest to
platformdirs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import python_output

# Each environment is run in a fresh interpreter: platformdirs reads the
# environment when asked, but a fresh process is what a command is.
_COMPARE = """\
import json
import platformdirs
from calfrehab.engine.userdirs import user_dir
print(json.dumps({kind: [str(user_dir(kind)),
                         getattr(platformdirs, f"user_{kind}_dir")("calfrehab", appauthor=False)]
                  for kind in ("cache", "config", "data")}))
"""

_VARS = ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "HOME", "ANDROID_DATA")


def _env(tmp: Path, **settings: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _VARS}
    env["HOME"] = str(tmp / "home")
    for key, value in settings.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value.replace("TMP", str(tmp))
    return env


@pytest.mark.parametrize("settings", [
    {},  # HOME only: ~/.cache, ~/.config, ~/.local/share
    {"XDG_CACHE_HOME": "TMP/xc", "XDG_CONFIG_HOME": "TMP/xf", "XDG_DATA_HOME": "TMP/xd"},
    {"XDG_CACHE_HOME": "TMP/xc/", "XDG_CONFIG_HOME": "TMP/a b/", "XDG_DATA_HOME": "TMP/ü"},
    # Relative or empty XDG variables are ignored (the spec), HOME used.
    {"XDG_CACHE_HOME": "relative", "XDG_CONFIG_HOME": "", "XDG_DATA_HOME": " "},
    {"HOME": "TMP/home/"},
    {"HOME": "/"},
])
def test_the_answer_is_platformdirs_answer(tmp_path: Path, settings: dict[str, str]) -> None:
    answers = json.loads(python_output(_COMPARE, _env(tmp_path, **settings)))
    for kind, (ours, theirs) in answers.items():
        assert ours == theirs, kind


@pytest.mark.parametrize("settings", [
    {"HOME": None},  # no HOME: platformdirs asks the password database
    {"HOME": "relative/home"},
    {"ANDROID_DATA": "/data"},
])
def test_what_is_not_plain_goes_to_platformdirs(tmp_path: Path,
                                                settings: dict[str, str | None]) -> None:
    code = ("import sys\n" + _COMPARE
            + "print('platformdirs' in sys.modules)\n")
    # What the two say here is platformdirs' own business (it may even
    # refuse a relative HOME); that ours is theirs, or theirs failing alike,
    # is what counts.
    env = _env(tmp_path, **settings)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=False)
    if done.returncode == 0:
        answers, loaded = done.stdout.splitlines()
        for kind, (ours, theirs) in json.loads(answers).items():
            assert ours == theirs, kind
        assert loaded == "True"
    else:
        # platformdirs refused; userdirs must have raised platformdirs' error
        # too, not answered on its own: the traceback ends in platformdirs.
        assert "platformdirs" in done.stderr


def test_a_plain_answer_imports_no_platformdirs(tmp_path: Path) -> None:
    code = ("import json, sys\nfrom calfrehab.engine.userdirs import user_dir\n"
            "print(json.dumps([str(user_dir('cache')),"
            " [m for m in sys.modules if m.startswith(('platformdirs', 'tempfile'))]]))\n")
    env = _env(tmp_path)
    path, loaded = json.loads(python_output(code, env))
    assert path == str(tmp_path / "home" / ".cache" / "calfrehab")
    assert loaded == []
