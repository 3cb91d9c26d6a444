"""The clinic's configuration: ``calfrehab.toml``, and the clinic's today.

One small TOML file says who the clinic is (name, phone, the clinician who
signs handouts), which time zone its calendar runs in, where its audit trail
lives and how far ahead the next review usually is. It is looked for, first
found wins:

1. ``$CALFREHAB_CONFIG`` (a file; it must exist when set);
2. ``calfrehab.toml`` in the cases directory: the directory of the case file
   a command works on, then the working directory;
3. ``calfrehab.toml`` in the user's configuration directory
   (``platformdirs.user_config_dir("calfrehab")``: ``~/.config/calfrehab`` on
   Linux, ``~/Library/Application Support/calfrehab`` on macOS,
   ``%LOCALAPPDATA%\\calfrehab`` on Windows).

With none, every setting has its default and the machine's own time zone is
the clinic's. Every table and key is checked: an unknown key or a bad value
is an error naming the file, the key and what was expected, never ignored
(a misspelt ``time_zone`` would otherwise move every date check by a day).

Sections belong to the parts of calfrehab that read them. A part that needs
its own settings adds a model and one field to :class:`ClinicConfig` (the
app its accounts, the server its public URL), and reads them with
:func:`load_config`.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from calfrehab.engine.clock import Clock, checked_now, utc_now
from calfrehab.engine.errors import ClinicConfigError as ClinicConfigError
from calfrehab.engine.textsafe import for_terminal

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from calfrehab.engine.clinicmodels import (
        AppAccount as AppAccount,
    )
    from calfrehab.engine.clinicmodels import (
        AppSection as AppSection,
    )
    from calfrehab.engine.clinicmodels import (
        ClinicConfig as ClinicConfig,
    )
    from calfrehab.engine.clinicmodels import (
        ClinicSection as ClinicSection,
    )
    from calfrehab.engine.clinicmodels import (
        LoadedConfig as LoadedConfig,
    )
    from calfrehab.engine.clinicmodels import (
        ReviewSection as ReviewSection,
    )
    from calfrehab.engine.clinicmodels import (
        TrailSection as TrailSection,
    )

# The models live in clinicmodels, imported when first asked for (a
# calfrehab.toml found, or a caller naming them): see that module.
_MODELS = frozenset({"AppAccount", "AppSection", "ClinicConfig", "ClinicSection",
                     "LoadedConfig", "ReviewSection", "TrailSection"})


def __getattr__(name: str) -> object:
    if name not in _MODELS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from calfrehab.engine import clinicmodels

    value = getattr(clinicmodels, name)
    globals()[name] = value
    return value

__all__ = [
    "CONFIG_ENV",
    "CONFIG_NAME",
    "ClinicConfig",
    "ClinicConfigError",
    "ClinicSection",
    "LoadedConfig",
    "ReviewSection",
    "TrailSection",
    "candidate_paths",
    "clinic_today",
    "configured_trail",
    "find_config",
    "load_config",
    "user_config_path",
]

CONFIG_NAME = "calfrehab.toml"
CONFIG_ENV = "CALFREHAB_CONFIG"
# A configuration file is a few hundred bytes; anything this size is not one.
_MAX_CONFIG_BYTES = 1 << 20


def user_config_path() -> Path:
    """``calfrehab.toml`` in the user's configuration directory."""
    # platformdirs' answer, without its import where that is plain (userdirs).
    from calfrehab.engine.userdirs import user_dir

    return user_dir("config") / CONFIG_NAME


def candidate_paths(near: Path | None = None) -> list[Path]:
    """Where a configuration is looked for, in order (the environment's
    file aside)."""
    places: list[Path] = []
    if near is not None:
        folder = near if near.is_dir() else near.parent
        places.append(folder / CONFIG_NAME)
    places += [Path.cwd() / CONFIG_NAME, user_config_path()]
    out: list[Path] = []
    for p in places:
        if p.absolute() not in [q.absolute() for q in out]:
            out.append(p)
    return out


def find_config(near: Path | None = None) -> Path | None:
    """The configuration file in force, or None."""
    env = os.environ.get(CONFIG_ENV)
    if env is not None and env.strip():
        path = Path(env)
        if not path.is_file():
            raise ClinicConfigError(f"{CONFIG_ENV}={for_terminal(env)}: no such file")
        return path
    for p in candidate_paths(near):
        if p.is_file():
            return p
    return None


def parse_config(text: str, source: str) -> ClinicConfig:
    """A configuration from TOML text; errors name ``source`` and the key."""
    # Imported here: only a clinic with a calfrehab.toml needs them.
    import tomllib

    from pydantic import ValidationError

    from calfrehab.engine.clinicmodels import ClinicConfig, config_problems

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ClinicConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        return ClinicConfig.model_validate(data)
    except ValidationError as exc:
        problems = config_problems(exc, ClinicConfig)
        raise ClinicConfigError(f"{source}: " + "; ".join(problems)) from None


def load_config(near: Path | None = None) -> LoadedConfig:
    """The clinic configuration in force for work on ``near`` (a case file
    or a cases directory; None: the working directory)."""
    return _load_found(find_config(near))


def _load_found(path: Path | None) -> LoadedConfig:
    from calfrehab.engine.clinicmodels import ClinicConfig, LoadedConfig, TrailSection

    if path is None:
        # The defaults, as validating ClinicConfig() would give them, without
        # building the validators a file needs (see clinicmodels._Section).
        return LoadedConfig.model_construct(path=None, config=ClinicConfig.model_construct())
    try:
        with open(path, "rb") as fh:
            raw = fh.read(_MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ClinicConfigError(f"{path}: cannot read ({exc.strerror})") from None
    if len(raw) > _MAX_CONFIG_BYTES:
        raise ClinicConfigError(f"{path}: over {_MAX_CONFIG_BYTES:,} bytes; "
                                "not a calfrehab configuration")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ClinicConfigError(f"{path}: not UTF-8 text") from None
    config = parse_config(text, str(path))
    trail = config.trail.path
    if trail is not None and not trail.expanduser().is_absolute():
        # A relative trail path is the clinic's, beside its configuration,
        # not wherever a command happens to be run from.
        config = config.model_copy(update={"trail": TrailSection(path=path.parent / trail)})
    elif trail is not None:
        config = config.model_copy(update={"trail": TrailSection(path=trail.expanduser())})
    cases = config.app.cases
    if cases is not None:
        # Like the trail: a relative cases directory is beside the configuration.
        cases = cases.expanduser()
        config = config.model_copy(update={"app": config.app.model_copy(update={
            "cases": cases if cases.is_absolute() else path.parent / cases})})
    return LoadedConfig(path=path, config=config)


def configured_trail(near: Path | None = None) -> Path | None:
    """The audit trail the configuration names (None: it names none)."""
    path = find_config(near)
    if path is None:  # the defaults name none (and need no model)
        return None
    return _load_found(path).config.trail.path


def clinic_today(config: ClinicConfig | None = None, *, near: Path | None = None,
                 clock: Clock = utc_now) -> date:
    """Today in the clinic's time zone (the machine's own when the
    configuration names none): the day a session entered now belongs to,
    and the latest date a record may carry (clinical-basis §8). A session
    logged at 8 in the morning in Sydney is that day's, not the day before
    (as it still is in UTC)."""
    zone: ZoneInfo | None = None
    if config is None:
        path = find_config(near)
        # No file: the defaults, whose time zone is the machine's own (and
        # which need no model, see clinicmodels).
        if path is not None:
            zone = _load_found(path).config.zone()
    else:
        zone = config.zone()
    moment: datetime = checked_now(clock)
    return moment.astimezone(zone).date() if zone is not None else moment.astimezone().date()
