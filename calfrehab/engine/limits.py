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
import tomllib
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


@functools.cache
def _shipped() -> dict[str, int]:
    # Beside this module, as the shipped rules are (knowledge.loader): a
    # plain path, not importlib.resources, whose import (zipfile among it)
    # would cost a cold `calfrehab next` a few ms (issue 28 item 4).
    text = Path(__file__).with_name("limits.toml").read_text(encoding="utf-8")
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
