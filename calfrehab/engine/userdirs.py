"""The user's own directories for calfrehab (cache, configuration, data),
as platformdirs names them, without importing platformdirs where the
answer is plain.

Every command looks in two of them (the compiled-rules cache and the
clinic configuration), and importing platformdirs costs a cold
``calfrehab next`` about 4 ms of CPU: its Unix module imports tempfile,
which imports shutil, bz2 and lzma (issue 28 item 4, cold start). On
Linux the answer is the XDG base-directory rule: ``$XDG_CACHE_HOME``
(``$XDG_CONFIG_HOME``, ``$XDG_DATA_HOME``) when it is an absolute path,
else ``~/.cache`` (``~/.config``, ``~/.local/share``) under an absolute
``$HOME``, and ``calfrehab`` in it. Anything else (another system,
Android, no or a relative ``HOME``, root's ``use_site_for_root``, which
calfrehab does not ask for) is left to platformdirs itself.
tests/engine/core/test_userdirs.py compares the two under each of these
settings, so a platformdirs that answers otherwise is noticed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Final, Literal

__all__ = ["user_dir"]

APP: Final = "calfrehab"

Kind = Literal["cache", "config", "data"]

# kind -> (XDG variable, the default under $HOME)
_XDG: Final[dict[Kind, tuple[str, str]]] = {
    "cache": ("XDG_CACHE_HOME", ".cache"),
    "config": ("XDG_CONFIG_HOME", ".config"),
    "data": ("XDG_DATA_HOME", ".local/share"),
}


def _plain_linux() -> bool:
    # platformdirs takes Android for a Linux whose environment says so.
    return sys.platform == "linux" and "ANDROID_DATA" not in os.environ


def user_dir(kind: Kind) -> Path:
    """``platformdirs.user_<kind>_dir("calfrehab", appauthor=False)``."""
    variable, default = _XDG[kind]
    if _plain_linux():
        base = os.environ.get(variable, "")
        if os.path.isabs(base):
            return Path(os.path.join(base, APP))
        home = os.environ.get("HOME", "")
        if os.path.isabs(home):
            return Path(os.path.join(home, default, APP))
    import platformdirs

    found: str = getattr(platformdirs, f"user_{kind}_dir")(APP, appauthor=False)
    return Path(found)
