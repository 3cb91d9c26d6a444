"""Clinicians' accounts: a name and an argon2id hash of the password.

They live in the clinic configuration (``calfrehab.toml``, table
``[[app.accounts]]``); ``calfrehab app add-user`` appends one. The hash is
argon2-cffi's default (argon2id, its recommended cost), so a stolen
configuration file does not give the passwords away; verifying takes tens
of milliseconds on purpose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@ -]{0,63}$")
MIN_PASSWORD = 10


class AccountError(ValueError):
    """An account or password that cannot be used; says why."""


@dataclass(frozen=True)
class Account:
    name: str
    password_hash: str


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    return str(_hasher().hash(password))


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise AccountError(f"{name!r} is not an account name: 1-64 of A-Z a-z 0-9 . _ @ - "
                           "and spaces, starting with a letter or digit")
    return name


def verify(accounts: tuple[Account, ...], name: str, password: str) -> Account | None:
    """The account whose name and password these are, or None. A wrong name
    costs a hash too, so timing does not tell names apart."""
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = _hasher()
    found = next((a for a in accounts if a.name == name), None)
    target = found.password_hash if found is not None else _DUMMY[0] or _dummy(hasher)
    try:
        hasher.verify(target, password)
    except (VerificationError, InvalidHashError):
        return None
    return found


_DUMMY: list[str] = [""]


def _dummy(hasher: Any) -> str:
    _DUMMY[0] = str(hasher.hash("not a password of anyone"))
    return _DUMMY[0]
