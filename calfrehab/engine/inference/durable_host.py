"""The one durable-rules engine of this process, and the seam to it.

This talks to durable-rules' C extension (``durable_rules_engine``) on the
ruleset handles directly, without durable's Python host: no ``Host``,
``Closure``, ``Promise`` or ``Content`` layers, no state document parsed
and re-serialised after every action, and no clock read per action (which
on Python 3.12+ also raised a deprecation warning per action). Per batch of
facts it makes the calls durable's own host makes, in the same order:

1. ``assert_facts`` (one JSON text for the whole batch);
2. ``start_action_for_state``, then per action the rule's callback, any
   facts it asserts (``assert_fact``), and ``complete_and_start_action``,
   until no action is left.

The one call left out is ``update_state`` after each action: it writes the
state document back, and no calfrehab rule reads the state.

State is kept per state id (sid); a batch runs every action it triggers
synchronously, inside :meth:`RuleHost.run_batch`. durable-rules is not
thread-safe, so one host serves the process and one lock guards its calls.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
from collections.abc import Callable, Collection, Mapping
from typing import Any

import durable_rules_engine as _c

from calfrehab.engine import distversion
from calfrehab.engine.errors import EngineError

# Asserts one fact (name, value) for the sid whose action is running
# (forward chaining).
AssertFact = Callable[[str, Any], None]
# Called per action with the fired rule's name, the facts it matched
# (alias -> fact) and the means to assert facts from inside the action.
Fire = Callable[[str, Mapping[str, Any], AssertFact], None]

# The local version label of a durable-rules built with calfrehab's fix to its
# retraction (scripts/durable_patch.py, which scripts/dev.py applies).
PATCHED_LABEL = "calfrehab."


@functools.cache
def retract_safe() -> bool:
    """Whether this durable-rules can retract facts from a state whose rules
    have fired: only a build with calfrehab's fix can.

    durable-rules 2.0.28 as published leaves a completed action's frame
    marked as dispatching; retracting the second fact that frame matched
    then scans past the frame's slots (``deleteMessageFromFrame``) and
    writes into whatever follows, which ended in segmentation faults and a
    corrupted Python heap after thousands of cases on a reused state
    (scripts/durable_patch.py tells the whole story). A state deleted whole
    never retracts, so the plain build stays safe with a state per case."""
    # distversion: importlib.metadata's answer without its import (cold start).
    version = distversion.version("durable-rules")
    if version is None:
        return False
    _, _, local = version.partition("+")
    return local.startswith(PATCHED_LABEL)


# durable_rules_engine result codes (rules.h).
_OK, _NOT_HANDLED, _OBSERVED, _DEFERRED = 0, 1, 2, 3


# UTF-8 text, not \\u escapes, as durable's own host sends; compact, and
# one encoder made once rather than one per call.
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# The C scanner behind json.loads, without its two Python layers: an
# action message is one JSON object, from durable-rules.
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]

# The texts of facts asserted from inside an action, without the sid, by
# (name, type, value): most recur from case to case (flags), and a cached
# text is cheaper than encoding the fact again. Bounded: cleared when full.
_HEADS: dict[tuple[str, type, Any], str] = {}
# Entries each of these caches holds at most (then it is cleared). The
# bound is what keeps a long batch's memory flat: a cache that may hold
# every distinct value ever seen keeps growing as continuous values (load
# ratios, limb symmetry, stiffness changes) keep turning up new ones. On
# generated cases the messages cache held 1,671 texts after 10,000 cases
# and 3,909 after 100,000 (about 1.4 KB each with their parsed matches),
# so a bound of 50,000 let a 100,000-case batch hold 3 MB more than a
# 10,000-case one, and a million cases more again. At 2,048 it is full
# within about 12,000 cases and then stays at most that size; re-parsing
# after a clear costs about 0.14 parses (2 µs each) a case more.
HEADS_MAX = 2_048
MESSAGES_MAX = 2_048


def _sid(sid: str) -> str:
    return '"' + sid + '"' if sid.isalnum() and sid.isascii() else _dumps(sid)


def batch_head(sid: str) -> str:
    """The start of each fact of a batch for ``sid``, up to its name: a
    batch is ``"[" + head + tail + "," + head + tail ... "]"``."""
    return '{"sid":' + _sid(sid) + ","


def fact_tail(name: str, value: Any) -> str:
    """The rest of one fact's text in a batch, after its head: ``"n"`` and,
    unless the value is None (no value), ``"v"`` (for a caller that keeps
    the texts of recurring facts itself, for any sid)."""
    n = '"n":' + _dumps(name)
    return n + "}" if value is None else n + ',"v":' + _dumps(value) + "}"


# Parsed action messages by text: a rule firing on the same values in
# another case gets the same message (the sid of a reused state does not
# change), and a dict lookup is cheaper than parsing it again. The parsed
# matches are shared between cases and only ever read. Bounded
# (MESSAGES_MAX): cleared when full.
_MESSAGES: dict[str, tuple[str, dict[str, Any]]] = {}


def _parse_action(text: str, keep: bool) -> tuple[str, dict[str, Any]]:
    """(rule name, alias -> matched fact) of an action message
    ``{"<rule>":{<alias>:<fact>,...}}``, kept for the next time if ``keep``."""
    rule, matched = next(iter(_scan(text, 0)[0].items()))
    parsed = (rule, matched if isinstance(matched, dict) else {})
    if keep:
        if len(_MESSAGES) >= MESSAGES_MAX:
            _MESSAGES.clear()
        _MESSAGES[text] = parsed
    return parsed


def _fact_head(name: str, value: Any) -> str:
    """A fact's text up to its sid: ``{"n":...,"v":...,"sid":``."""
    key = (name, value.__class__, value)
    head = _HEADS.get(key)
    if head is None:
        if len(_HEADS) >= HEADS_MAX:
            _HEADS.clear()
        head = _HEADS[key] = '{"n":' + _dumps(name) + ',"v":' + _dumps(value) + ',"sid":'
    return head


class RuleHost:
    """Owns the ruleset handles; rulesets are registered once by name."""

    def __init__(self) -> None:
        self._handles: dict[str, int] = {}
        # Per ruleset: the start of the action message of each rule whose
        # action does nothing (completed without parsing or calling back).
        self._silent: dict[str, tuple[str, ...]] = {}
        self._lock = threading.RLock()

    def register(
        self, rulesets: Mapping[str, Mapping[str, Any]], silent: Collection[str] = (),
        texts: Mapping[str, str] | None = None,
    ) -> None:
        """Create each ruleset not yet registered. A rule's ``run`` (an
        action name for durable's host) is not part of its definition here:
        :meth:`run_batch` is told which rule fired and dispatches itself. Rules
        named in ``silent`` have actions that do nothing. ``texts``: a
        ruleset's definition already encoded, by name (the compiled rule
        base keeps them, CompiledRuleBase.definition_texts); any other is
        encoded here."""
        with self._lock:
            for name, rules in rulesets.items():
                if name in self._handles:
                    continue
                text = texts.get(name) if texts is not None else None
                if text is None:
                    text = _dumps({
                        rule: {k: v for k, v in body.items() if k != "run"}
                        for rule, body in rules.items()
                    })
                self._handles[name] = _c.create_ruleset(name, text)
                # durable-rules writes an action as {"<rule>":{<matched>}}.
                self._silent[name] = tuple(
                    "{" + _dumps(rule) + ":" for rule in rules if rule in silent)

    def _handle(self, ruleset: str) -> int:
        try:
            return self._handles[ruleset]
        except KeyError:
            raise EngineError(f"no ruleset registered under {ruleset}") from None

    @property
    def lock(self) -> threading.RLock:
        """The lock every call into durable-rules holds: a caller that
        keeps one state across several runs (one case's strata) holds it
        for all of them."""
        return self._lock

    def run_batch(
        self, ruleset: str, sid: str, batch: str, fire: Fire, *, retract: bool = False,
    ) -> None:
        """Assert a batch of facts for one sid (a JSON array of facts
        ``{"sid", "n", "v"}``, as :func:`batch_head` and :func:`fact_tail`
        write them) and run every action it triggers, synchronously, in
        durable-rules' order. An exception from ``fire`` abandons the action and
        propagates.

        With ``retract``, every fact asserted (the batch, and the facts the
        actions asserted) is retracted again before this returns, so the
        sid's state is left empty and can serve the next case: a state
        reused this way costs none of ``createStateNode``'s allocation and
        clearing of every join node of the ruleset, which a new state per
        case pays. If the run fails, the state is deleted instead (see
        :meth:`_rebuild`) and the next assert creates it again, empty."""
        handle = self._handle(ruleset)
        silent = self._silent[ruleset]
        if batch == "[]":
            # Nothing to match, so nothing can fire (and durable-rules
            # returns no state for an empty batch).
            return
        with self._lock:
            if not retract:
                self._run(handle, silent, sid, batch, fire, None)
                return
            asserted: list[str] = []
            ran = [False]
            try:
                self._run(handle, silent, sid, batch, fire, asserted, ran)
            except BaseException:
                self._rebuild(handle, sid, batch, asserted, ran[0])
                raise
            self._retract(handle, sid, batch, asserted, ran[0])

    def _run(
        self, handle: int, silent: tuple[str, ...], sid: str, batch: str, fire: Fire,
        asserted: list[str] | None, ran: list[bool] | None = None,
    ) -> None:
        code, state = _c.assert_facts(handle, batch)
        if code != _OK:
            _check(code, batch)
            if code == _DEFERRED:
                state = 0  # as durable's host does
        started = _c.start_action_for_state(handle, state)
        if not started:
            return
        if ran is not None:
            ran[0] = True
        # The end of every fact an action asserts here: the sid, once a run.
        tail = _sid(sid) + "}"
        c_assert = _c.assert_fact

        def assert_fact(name: str, value: Any) -> None:
            text = _fact_head(name, value) + tail
            code = c_assert(handle, text)[0]
            if code != _OK:
                _check(code, text)
            if asserted is not None:
                asserted.append(text)

        text: str | None = started[1]
        # Messages recur only on a reused state (its sid never changes); a
        # state per case names its own sid in every message.
        cached = asserted is not None
        messages = _MESSAGES
        while text:
            if not text.startswith(silent):
                parsed = messages.get(text) if cached else None
                if parsed is None:
                    parsed = _parse_action(text, cached)
                try:
                    fire(parsed[0], parsed[1], assert_fact)
                except BaseException:
                    _c.abandon_action(handle, state)
                    raise
            text = _c.complete_and_start_action(handle, state)

    def _retract(
        self, handle: int, sid: str, batch: str, asserted: list[str], ran: bool,
    ) -> None:
        """Retract what a run asserted (durable-rules finds a fact by the
        hash of its content, so the same texts retract it). If durable
        refuses, the state is rebuilt."""
        try:
            for text in reversed(asserted):
                _c.retract_fact(handle, text)
            _c.retract_facts(handle, batch)
        except BaseException:
            self._rebuild(handle, sid, batch, asserted, ran)
            raise

    @staticmethod
    def _rebuild(handle: int, sid: str, batch: str, asserted: list[str], ran: bool) -> None:
        """After a failed run: delete the sid's state, which the next
        assert creates again, empty. An action abandoned midway leaves its
        frame marked as dispatching, which no retraction clears (the next
        action read from that state is garbage), so a failed run is never
        merely retracted. durable-rules 2.0.28 crashes deleting a state in
        which no action ever ran: before the first action (the tick's, so
        nothing of the case has run) the facts are retracted instead."""
        with contextlib.suppress(Exception):
            if ran:
                _c.delete_state(handle, sid)
            else:
                for text in reversed(asserted):
                    _c.retract_fact(handle, text)
                _c.retract_facts(handle, batch)

    def facts_held(self, ruleset: str, sid: str) -> list[Any]:
        """The facts a sid's state holds, durable's own state fact aside
        (for tests: a reused state holds none between cases)."""
        handle = self._handle(ruleset)
        with self._lock:
            try:
                facts = json.loads(_c.get_facts(handle, sid))
            except Exception:
                return []  # no state for this sid
        return [f for f in facts if isinstance(f, dict) and "$s" not in f]

    def delete_state(self, ruleset: str, sid: str) -> None:
        handle = self._handle(ruleset)
        # No state for this sid means nothing to free.
        with self._lock, contextlib.suppress(Exception):
            _c.delete_state(handle, sid)

    def state_count(self, ruleset: str, sids: list[str]) -> int:
        """How many of ``sids`` still hold state (for leak tests)."""
        handle = self._handle(ruleset)
        count = 0
        with self._lock:
            for sid in sids:
                try:
                    _c.get_state(handle, sid)
                    count += 1
                except Exception:
                    continue  # no state for this sid: not counted
        return count


def _check(code: int, facts: str) -> None:
    if code == _NOT_HANDLED:
        raise EngineError(f"durable-rules could not handle {facts[:200]}")
    if code == _OBSERVED:
        raise EngineError(f"durable-rules has already observed {facts[:200]}")


_HOST: RuleHost | None = None
_HOST_LOCK = threading.Lock()


def get_host() -> RuleHost:
    """The process-wide host (durable-rules state is global per process)."""
    global _HOST
    with _HOST_LOCK:
        if _HOST is None:
            _HOST = RuleHost()
        return _HOST
