"""The one process that decides and writes the audit trail.

durable-rules keeps one host per process and is not thread-safe, and the
audit trail wants a single writer: so the service runs every decision, and
every trail append, in one dedicated child process, one request at a time.
The HTTP process never touches the engine; it sends a request down a pipe
and waits for the answer. Requests queue on a lock (their number is
bounded by the caller); a decision that runs past its time limit gets its
worker killed and a fresh one started, so one bad case cannot wedge the
service.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

log = logging.getLogger("calfrehab.server")


class WorkerError(Exception):
    """The worker could not answer (it died, or timed out)."""


class WorkerTimeout(WorkerError):
    pass


def _serve(conn: Connection, rules_dir: Path | None, audit: Path | None) -> None:
    """The worker's loop (in the child process)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    from calfrehab.engine import api

    reasoner = api.prepare(rules_dir)
    conn.send(("ready", None))

    def acted_on(document: dict[str, Any]) -> dict[str, Any] | None:
        # What a clinician already decided for this patient (an override or
        # an acceptance), read before this call records its own decision:
        # the card must not present the rules' proposal as if it were that.
        case_id = document.get("case_id")
        if not isinstance(case_id, str) or not api.trail_location(audit).exists():
            return None
        state = api.case_state(audit, case_id, acted_on=True, current=document)
        return None if state is None else state.model_dump(mode="json", exclude={"case"})

    def decide(payload: dict[str, Any]) -> dict[str, Any]:
        prior = acted_on(payload["document"]) if payload.get("acted_on") else None
        decided = api.decide_and_record(
            api.FromDocument(payload["document"], payload.get("source", "case")), reasoner,
            audit_path=audit, clinician=payload.get("clinician"),
            record=bool(payload.get("record")), requester=payload.get("requester"))
        return {"decision": decided.decision.model_dump(mode="json"),
                "json": api.decision_json(decided), "acted_on": prior}

    def explain(payload: dict[str, Any]) -> dict[str, Any]:
        decided = api.decide_document(payload["document"], reasoner, payload.get("source", "case"))
        return {"json": api.explanation_json(decided)}

    def override(payload: dict[str, Any]) -> dict[str, Any]:
        # The decision was recorded by this worker: the trail exists. One
        # writable connection, opened for this write, as every other write.
        api.override_decision(audit, payload["decision_id"], payload["clinician"],
                              payload["reason"], payload["track"], payload["decision"],
                              requester=payload.get("requester"))
        return {}

    handlers = {"decide": decide, "explain": explain, "override": override}
    while True:
        try:
            op, payload = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[str, Any] = ("ok", handlers[op](payload))
        except api.CaseValidationError as exc:
            reply = ("invalid", [e.as_dict() for e in exc.errors])
        except api.CalfrehabError as exc:
            reply = ("error", str(exc))
        except Exception as exc:  # never a traceback to the client or the log
            reply = ("crash", type(exc).__name__)
        conn.send(reply)


class DecisionWorker:
    """The parent's handle on the worker process. ``call`` blocks; run it
    in a thread."""

    def __init__(self, rules_dir: Path | None, audit: Path | None, timeout_s: float) -> None:
        self._rules = rules_dir
        self._audit = audit
        self._timeout = timeout_s
        self._lock = threading.Lock()
        self._ctx = multiprocessing.get_context("spawn")
        self._proc: Any = None
        self._conn: Connection | None = None

    def start(self, startup_timeout_s: float = 120.0) -> None:
        with self._lock:
            self._start(startup_timeout_s)

    def _start(self, startup_timeout_s: float = 120.0) -> None:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_serve, args=(child, self._rules, self._audit),
                                 name="calfrehab-decider", daemon=True)
        proc.start()
        child.close()
        if not parent.poll(startup_timeout_s):
            proc.kill()
            raise WorkerError("the decision worker did not start in time")
        try:
            status, _ = parent.recv()
        except EOFError:
            raise WorkerError("the decision worker failed to start (see its message "
                              "above: the rules directory may be unusable)") from None
        if status != "ready":
            raise WorkerError(f"the decision worker said {status!r} at start")
        self._proc, self._conn = proc, parent

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(5)
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None

    def call(self, op: str, payload: dict[str, Any]) -> tuple[str, Any]:
        with self._lock:
            if self._conn is None or not self._proc.is_alive():
                self._kill()
                self._start()
            assert self._conn is not None
            try:
                self._conn.send((op, payload))
                if not self._conn.poll(self._timeout):
                    log.error("a decision ran past %.0f s: restarting the worker", self._timeout)
                    self._kill()
                    raise WorkerTimeout(f"the decision took longer than {self._timeout:g} s")
                reply: tuple[str, Any] = self._conn.recv()
                return reply
            except (EOFError, OSError, BrokenPipeError):
                log.error("the decision worker died: restarting it")
                self._kill()
                raise WorkerError("the decision worker stopped unexpectedly") from None

    def stop(self) -> None:
        with self._lock:
            self._kill()
