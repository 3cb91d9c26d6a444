"""The clinic configuration's models: the sections of ``calfrehab.toml``
and the file as a whole (see :mod:`calfrehab.engine.clinic`, which reads
the file and serves these names).

A module of their own: a command run where there is no calfrehab.toml
(the usual case) finds none and never imports them, so a cold ``calfrehab
next`` does not pay for defining seven models and their validators' class
machinery (about 2.5 ms of CPU, issue 28 item 4).
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from calfrehab.engine.textsafe import for_terminal

__all__ = ["AppAccount", "AppSection", "ClinicConfig", "ClinicSection", "LoadedConfig",
           "ReviewSection", "TimeZoneName", "TrailSection", "config_problems",
           "known_time_zone"]


def known_time_zone(value: str) -> str:
    """``value`` if it names a zone of the IANA database, else a ValueError
    saying what is expected: the one check of a time zone name, for the
    clinic configuration (calfrehab.toml) and the CDS service's (serve
    --config), so that both say the same thing about the same mistake."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not a time zone name in the IANA database; expected "
                         "e.g. Europe/London or Australia/Sydney") from None
    return value


# A configuration's time zone: an IANA name, checked when the file is read.
TimeZoneName = Annotated[str, AfterValidator(known_time_zone)]


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
    time_zone: TimeZoneName | None = Field(
        default=None, description="IANA time zone name, e.g. Europe/Stockholm; "
        "default: the machine's own")


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


def config_problems(exc: ValidationError, model: type[BaseModel]) -> list[str]:
    """Each problem of a configuration file validated as ``model``, in the
    words calfrehab.toml's (engine/clinic.py) and the CDS service's
    (serve --config) both use: the key (dotted), what was wrong and the value
    given unless it is a table; for an unknown key, the keys expected there.
    A field that is the program's, not the file's, is left out of those
    (``Field(exclude=True)``)."""
    problems = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            known = _known_keys(model, err["loc"][:-1])
            expected = f" (expected one of {', '.join(known)})" if known else ""
            problems.append(f"{key}: unknown key{expected}")
            continue
        got = err.get("input")
        shown = (f" (got {for_terminal(repr(got), limit=80)})"
                 if not isinstance(got, dict) else "")
        problems.append(f"{key}: {err['msg'].removeprefix('Value error, ')}{shown}")
    return problems


def _known_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys ``model`` takes at ``loc`` (a table's path, a list's items
    by their index), or none when that is not a table of the model's."""
    at: Any = model
    for part in loc:
        if isinstance(part, int):
            continue  # an item of the list whose item type was taken below
        if not (isinstance(at, type) and issubclass(at, BaseModel)) or part not in at.model_fields:
            return []
        at = _inner(at.model_fields[part].annotation)
    if not (isinstance(at, type) and issubclass(at, BaseModel)):
        return []
    return [name for name, field in at.model_fields.items() if not field.exclude]


def _inner(annotation: Any) -> Any:
    """What a field's value is a table of: an optional section (``X | None``,
    the service's ``checkpoint``) is the section, a list (``issuers``) its
    item, so that an unknown key inside either is offered the keys there."""
    args = typing.get_args(annotation)
    if len(args) == 2 and type(None) in args:
        annotation = args[0] if args[1] is type(None) else args[1]
    if typing.get_origin(annotation) is list:
        annotation = typing.get_args(annotation)[0]
    return annotation
