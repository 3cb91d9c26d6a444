"""The app's part of the clinic configuration (``calfrehab.toml``).

The app reads the clinic's name, the trail's path, and its own table:

    [app]
    cases = "/srv/clinic/cases"      # the cases directory served by default

    [[app.accounts]]
    name = "Ana Ruiz"
    password_hash = "$argon2id$v=19$m=65536,t=3,p=4$..."

The file is looked for as the clinic configuration is: ``$CALFREHAB_CONFIG``,
then ``calfrehab.toml`` in the cases directory, then in the working
directory. ``add_account`` appends one account to it (creating it,
owner-only, when there is none).
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calfrehab.app.accounts import Account

CONFIG_NAME = "calfrehab.toml"
CONFIG_ENV = "CALFREHAB_CONFIG"


class ConfigProblem(Exception):
    """A configuration that cannot be used; names the file and the key."""


@dataclass(frozen=True)
class ClinicSettings:
    path: Path | None
    name: str | None = None
    cases: Path | None = None
    audit: Path | None = None
    accounts: tuple[Account, ...] = ()


def find_config(cases: Path | None) -> Path | None:
    env = os.environ.get(CONFIG_ENV, "").strip()
    if env:
        if not Path(env).is_file():
            raise ConfigProblem(f"{CONFIG_ENV}={env}: no such file")
        return Path(env)
    for folder in ([cases] if cases is not None else []) + [Path.cwd()]:
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigProblem(f"{path}: cannot read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigProblem(f"{path}: not valid TOML: {exc}") from None


def _path(base: Path, value: Any, key: str, source: Path) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigProblem(f"{source}: {key} must be a path (text)")
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def clinic_settings(cases: Path | None) -> ClinicSettings:
    path = find_config(cases)
    if path is None:
        return ClinicSettings(path=None)
    data = _read(path)
    base = path.parent
    app = data.get("app", {})
    if not isinstance(app, dict):
        raise ConfigProblem(f"{path}: [app] must be a table")
    unknown = sorted(set(app) - {"cases", "accounts"})
    if unknown:
        raise ConfigProblem(f"{path}: app.{unknown[0]}: unknown key (expected cases, accounts)")
    accounts: list[Account] = []
    for n, item in enumerate(app.get("accounts", [])):
        if not isinstance(item, dict) or set(item) != {"name", "password_hash"} \
                or not all(isinstance(v, str) and v for v in item.values()):
            raise ConfigProblem(f"{path}: app.accounts[{n}] needs exactly name and "
                                "password_hash (add accounts with calfrehab app add-user)")
        if not item["password_hash"].startswith("$argon2"):
            raise ConfigProblem(f"{path}: app.accounts[{n}].password_hash is not an argon2 "
                                "hash (add accounts with calfrehab app add-user)")
        if any(a.name == item["name"] for a in accounts):
            raise ConfigProblem(f"{path}: app.accounts: {item['name']!r} is there twice")
        accounts.append(Account(item["name"], item["password_hash"]))
    clinic = data.get("clinic", {}) if isinstance(data.get("clinic"), dict) else {}
    trail = data.get("trail", {}) if isinstance(data.get("trail"), dict) else {}
    name = clinic.get("name")
    return ClinicSettings(
        path=path,
        name=name if isinstance(name, str) else None,
        cases=_path(base, app.get("cases"), "app.cases", path),
        audit=_path(base, trail.get("path"), "trail.path", path),
        accounts=tuple(accounts),
    )


def _quoted(text: str) -> str:
    # A TOML basic string: backslash and quote escaped; names and argon2
    # hashes have no control characters (both are checked before).
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def add_account(cases: Path | None, name: str, password_hash: str) -> Path:
    """Append an account to the configuration in force (or a new
    ``calfrehab.toml`` in the cases directory); returns the file."""
    path = find_config(cases) or (cases or Path.cwd()) / CONFIG_NAME
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if text:
        settings = clinic_settings(cases)
        if any(a.name == name for a in settings.accounts):
            raise ConfigProblem(f"{path}: an account {name!r} is there already")
    block = (f"\n[[app.accounts]]\nname = {_quoted(name)}\n"
             f"password_hash = {_quoted(password_hash)}\n")
    new = (text if not text or text.endswith("\n") else text + "\n") + block
    try:
        tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:
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
