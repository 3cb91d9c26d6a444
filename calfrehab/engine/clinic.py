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
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from calfrehab.engine.clock import Clock, checked_now, utc_now
from calfrehab.engine.errors import ClinicConfigError as ClinicConfigError
from calfrehab.engine.textsafe import for_terminal

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


class _Section(BaseModel):
    # Built on first use: a run with no calfrehab.toml validates none of
    # these (load_config constructs the defaults), so `calfrehab next`
    # does not pay for building them (issue 28 item 4, cold start).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ClinicSection(_Section):
    """Who the clinic is: printed on handouts and reports."""

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    phone: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    clinician: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    time_zone: str | None = Field(
        default=None, description="IANA time zone name, e.g. Europe/Stockholm; "
        "default: the machine's own")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a time zone name in the IANA database; expected "
                             "e.g. Europe/London or Australia/Sydney") from None
        return value


class TrailSection(_Section):
    """The audit trail used when neither ``--audit`` nor ``CALFREHAB_AUDIT`` names one."""

    path: Path | None = None


class ReviewSection(_Section):
    """The review the clinic books by default after a decision."""

    interval_days: Annotated[int, Field(strict=True, ge=1, le=365)] = 7


class AppAccount(_Section):
    """A clinician who may sign in to ``calfrehab app``: the name the trail
    records, and an argon2 hash of the password (``calfrehab app add-user``
    writes both; the password itself is never stored)."""

    name: Annotated[str, Field(min_length=1, max_length=64,
                               pattern=r"^[A-Za-z0-9][A-Za-z0-9._@ -]*$")]
    password_hash: Annotated[str, Field(pattern=r"^\$argon2(id|i|d)\$")]


class AppSection(_Section):
    """``calfrehab app``: the cases directory it serves by default, and the
    accounts that may sign in (none: one local user, on loopback only)."""

    cases: Path | None = None
    accounts: list[AppAccount] = Field(default_factory=list)

    @field_validator("accounts")
    @classmethod
    def _unique(cls, value: list[AppAccount]) -> list[AppAccount]:
        names = [a.name for a in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"{twice[0]!r} is there twice; give each account once")
        return value


class ClinicConfig(_Section):
    """The whole file. Add a section here (a model and one field) to give a
    part of calfrehab its own settings."""

    # The defaults, constructed rather than validated (their fields' own
    # defaults, which need no checking): validating them here, at import,
    # would build every section's validator (see _Section).
    clinic: ClinicSection = ClinicSection.model_construct()
    trail: TrailSection = TrailSection.model_construct()
    review: ReviewSection = ReviewSection.model_construct()
    app: AppSection = AppSection.model_construct()

    def zone(self) -> ZoneInfo | None:
        return ZoneInfo(self.clinic.time_zone) if self.clinic.time_zone else None


class LoadedConfig(BaseModel):
    """A configuration and where it came from (None: the defaults)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    path: Path | None
    config: ClinicConfig

    def shown(self) -> dict[str, Any]:
        """The values in force, every section, as ``calfrehab config`` prints them."""
        return self.config.model_dump(mode="json")


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


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def parse_config(text: str, source: str) -> ClinicConfig:
    """A configuration from TOML text; errors name ``source`` and the key."""
    # Imported here: only a clinic with a calfrehab.toml needs it.
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ClinicConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        return ClinicConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = _location(err["loc"])
            if err["type"] == "extra_forbidden":
                known = _known_keys(err["loc"][:-1])
                problems.append(f"{key}: unknown key (expected one of {', '.join(known)})")
                continue
            got = err.get("input")
            shown = (f" (got {for_terminal(repr(got), limit=80)})"
                     if not isinstance(got, dict) else "")
            problems.append(f"{key}: {err['msg'].removeprefix('Value error, ')}{shown}")
        raise ClinicConfigError(f"{source}: " + "; ".join(problems)) from None


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] = ClinicConfig
    for part in loc:
        annotation = model.model_fields[str(part)].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def load_config(near: Path | None = None) -> LoadedConfig:
    """The clinic configuration in force for work on ``near`` (a case file
    or a cases directory; None: the working directory)."""
    path = find_config(near)
    if path is None:
        # The defaults, as validating ClinicConfig() would give them, without
        # building the validators a file needs (see _Section).
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
    return load_config(near).config.trail.path


def clinic_today(config: ClinicConfig | None = None, *, near: Path | None = None,
                 clock: Clock = utc_now) -> date:
    """Today in the clinic's time zone (the machine's own when the
    configuration names none): the day a session entered now belongs to,
    and the latest date a record may carry (clinical-basis §8). A session
    logged at 8 in the morning in Sydney is that day's, not the day before
    (as it still is in UTC)."""
    if config is None:
        config = load_config(near).config
    moment: datetime = checked_now(clock)
    zone = config.zone()
    return moment.astimezone(zone).date() if zone is not None else moment.astimezone().date()
