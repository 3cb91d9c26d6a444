"""The one durable-rules host of this process, and the seam to it.

durable-rules keeps state per host, keyed by state id (sid); its actions
are named, so a compiled rule base registers its rulesets once and looks up
actions by name. Exceptions raised inside an action come back in the state
under ``exception`` instead of being raised: :meth:`RuleHost.assert_facts`
turns them into :class:`EngineError` naming the rule.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from durable import engine as durable_engine

from calfrehab.engine.errors import EngineError

Action = Callable[[Any], None]


class _Host(durable_engine.Host):  # type: ignore[misc]
    def __init__(self, lookup: Callable[[str], Action]) -> None:
        self._lookup = lookup
        super().__init__()

    def _run(self) -> None:
        # durable-rules starts timer threads that dispatch queued actions in
        # the background. Every action here runs synchronously inside the
        # assert call, and a background dispatcher could take a case's action
        # on another thread; calfrehab uses no timers, so none are started.
        return

    def get_action(self, action_name: str) -> Action:
        return self._lookup(action_name)


class RuleHost:
    """Owns the durable-rules host; rulesets are registered once by name."""

    def __init__(self) -> None:
        self._actions: dict[str, Action] = {}
        self._host = _Host(self._action)
        self._registered: set[str] = set()
        self._lock = threading.Lock()

    def _action(self, name: str) -> Action:
        try:
            return self._actions[name]
        except KeyError:
            raise EngineError(f"no action registered under {name}") from None

    def register(self, rulesets: dict[str, dict[str, Any]], actions: dict[str, Action]) -> None:
        with self._lock:
            fresh = {n: d for n, d in rulesets.items() if n not in self._registered}
            if not fresh:
                return
            self._actions.update(actions)
            self._host.register_rulesets(fresh)
            self._registered.update(fresh)

    def is_registered(self, name: str) -> bool:
        return name in self._registered

    def assert_facts(self, ruleset: str, facts: list[dict[str, Any]]) -> None:
        """Assert a batch of facts for one sid and run every action it
        triggers, synchronously; raise if any action raised."""
        if not facts:
            return
        state = self._host.assert_facts(ruleset, facts)
        if isinstance(state, dict) and "exception" in state:
            raise EngineError(f"a rule failed while it ran: {state['exception']}")

    def delete_state(self, ruleset: str, sid: str) -> None:
        # No state for this sid means nothing to free.
        with contextlib.suppress(Exception):
            self._host.delete_state(ruleset, sid)

    def state_count(self, ruleset: str, sids: list[str]) -> int:
        """How many of ``sids`` still hold state (for leak tests)."""
        count = 0
        for sid in sids:
            try:
                self._host.get_state(ruleset, sid)
                count += 1
            except Exception:
                pass
        return count


_HOST: RuleHost | None = None
_HOST_LOCK = threading.Lock()


def get_host() -> RuleHost:
    """The process-wide host (durable-rules state is global per host)."""
    global _HOST
    with _HOST_LOCK:
        if _HOST is None:
            _HOST = RuleHost()
        return _HOST
