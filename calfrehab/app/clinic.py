"""The app's part of the clinic configuration (``calfrehab.toml``).

The app reads the clinic's name, the trail's path, and its own table:

    [app]
    cases = "/srv/clinic/cases"      # the cases directory served by default

    [[app.accounts]]
    name = "Ana Ruiz"
    password_hash = "$argon2id$v=19$m=65536,t=3,p=4$..."

The file is the clinic configuration in force (``api.load_config``: the
library finds and checks it, the app's table included). ``add_account``
appends one account to it (creating ``calfrehab.toml`` in the cases
directory, owner-only, when there is none).
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from calfrehab.app.accounts import Account
from calfrehab.engine import api

CONFIG_NAME = "calfrehab.toml"


class ConfigProblem(Exception):
    """A configuration that cannot be used; names the file and the key."""


@dataclass(frozen=True)
class ClinicSettings:
    path: Path | None
    name: str | None = None
    cases: Path | None = None
    audit: Path | None = None
    accounts: tuple[Account, ...] = ()
    review_days: int = 7


def clinic_settings(cases: Path | None) -> ClinicSettings:
    """The clinic configuration in force for ``cases`` (or the working
    directory), as the library finds and checks it."""
    try:
        loaded = api.load_config(cases)
    except api.ClinicConfigError as exc:
        raise ConfigProblem(str(exc)) from None
    config = loaded.config
    return ClinicSettings(
        path=loaded.path,
        name=config.clinic.name,
        cases=config.app.cases,
        audit=config.trail.path,
        accounts=tuple(Account(a.name, a.password_hash) for a in config.app.accounts),
        review_days=config.review.interval_days,
    )


def _quoted(text: str) -> str:
    # A TOML basic string: backslash and quote escaped; names and argon2
    # hashes have no control characters (both are checked before).
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def add_account(cases: Path | None, name: str, password_hash: str) -> Path:
    """Append an account to the configuration in force (or a new
    ``calfrehab.toml`` in the cases directory); returns the file."""
    settings = clinic_settings(cases)
    path = settings.path or (cases or Path.cwd()) / CONFIG_NAME
    if any(a.name == name for a in settings.accounts):
        raise ConfigProblem(f"{path}: an account {name!r} is there already")
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    block = (f"\n[[app.accounts]]\nname = {_quoted(name)}\n"
             f"password_hash = {_quoted(password_hash)}\n")
    new = (text if not text or text.endswith("\n") else text + "\n") + block
    try:
        api.ClinicConfig.model_validate(tomllib.loads(new))
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise ConfigProblem(f"{path}: adding the account would break the file ({exc}); "
                            "nothing was written") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(new)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)  # password hashes: the owner's alone
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
