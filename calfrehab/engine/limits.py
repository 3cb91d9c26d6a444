"""Program limits (input size cap, the rules check's time limit, and the
numbers :mod:`.knowledge.durable_limits` checks rule bases against), read
once from the shipped ``limits.toml`` and overridable per run from the
environment.

These protect the program, not the patient: clinical thresholds live in
``rules/``. Each limit is documented in ``docs/limits.md``.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from calfrehab.engine.errors import SettingError

# The largest value any limit may be set to (2**53: a byte count, a number
# of seconds or of rules beyond it is a typo, and Python's reads index with
# 63-bit integers).
MAX_SETTING = 2**53

# Limit name in limits.toml -> environment variable that overrides it.
ENV_OVERRIDES: dict[str, str] = {
    "max_input_bytes": "CALFREHAB_MAX_INPUT_BYTES",
    "rules_check_timeout_s": "CALFREHAB_RULES_CHECK_TIMEOUT",
    "max_yaml_nodes": "CALFREHAB_MAX_YAML_NODES",
    # For probing the engine itself (a future durable-rules, or a test of
    # what it does past a limit); docs/rule-language.md, Engine limits.
    "engine_max_rules_per_ruleset": "CALFREHAB_ENGINE_MAX_RULES_PER_RULESET",
    "engine_max_rules_per_test": "CALFREHAB_ENGINE_MAX_RULES_PER_TEST",
    "engine_max_tests_per_fact": "CALFREHAB_ENGINE_MAX_TESTS_PER_FACT",
}


# A line of limits.toml as it is written: a bare key, =, a decimal whole
# number (underscores between digits, no leading zero), nothing after it.
_PLAIN_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*(0|[1-9](?:_?[0-9])*)")
# A comment line: TOML allows no control character in it but the tab.
_COMMENT = re.compile(r"#[^\x00-\x08\x0a-\x1f\x7f]*")


def plain_toml(text: str) -> dict[str, int] | None:
    """The values of a TOML text made only of comments, blank lines and
    ``key = 123`` lines, as tomllib reads them; None for any other text
    (tomllib reads that). Every command reads limits.toml, and importing
    tomllib (its regular expressions compiled) costs a cold `calfrehab
    next` about 2 ms of CPU (issue 28 item 4)."""
    out: dict[str, int] = {}
    for raw in text.split("\n"):  # TOML's newlines only (not str.splitlines' many)
        line = raw.removesuffix("\r").strip(" \t")
        if not line or _COMMENT.fullmatch(line):
            continue
        match = _PLAIN_LINE.fullmatch(line)
        if match is None or match[1] in out:  # (tomllib refuses a key given twice)
            return None
        out[match[1]] = int(match[2].replace("_", ""))
    return out


@functools.cache
def _shipped() -> dict[str, int]:
    # Beside this module, as the shipped rules are (knowledge.loader): a
    # plain path, not importlib.resources, whose import (zipfile among it)
    # would cost a cold `calfrehab next` a few ms (issue 28 item 4).
    text = Path(__file__).with_name("limits.toml").read_text(encoding="utf-8")
    plain = plain_toml(text)
    if plain is not None:
        return plain
    import tomllib

    data = tomllib.loads(text)
    return {k: int(v) for k, v in data.items()}


def limit(name: str) -> int:
    """The value of one limit: the environment's override, else the shipped
    value. A malformed override is an error, never silently ignored."""
    env = ENV_OVERRIDES.get(name)
    raw = os.environ.get(env) if env else None
    if raw is None or raw.strip() == "":
        return _shipped()[name]
    try:
        value = int(raw.strip().replace("_", ""))
    except ValueError:
        value = 0
    shown = raw if len(raw) <= 40 else raw[:39] + "…"
    if value <= 0:
        raise SettingError(f"{env}={shown!r}: expected a whole number greater than 0")
    if value > MAX_SETTING:
        # 10**23 overflowed an index deep in a read (a traceback): refused here.
        raise SettingError(f"{env}={shown!r}: too large; expected a whole number from 1 "
                           f"to {MAX_SETTING:_}")
    return value


def max_input_bytes() -> int:
    return limit("max_input_bytes")


def rules_check_timeout_s() -> int:
    return limit("rules_check_timeout_s")
