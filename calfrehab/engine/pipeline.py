"""One case through the engine: prepare a rule base once, decide many cases.

Validation, inference and the decision document in one call, with the
prepared reasoners cached per rules directory. Everything above it (the audit
trail's replay, case tables, batch, the public :mod:`calfrehab.engine.api`)
decides through these functions, so they all decide alike.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calfrehab.engine.canonical import canonical_bytes, canonical_bytes_parsed, sha256_hex
from calfrehab.engine.casefile.model import Case
from calfrehab.engine.casefile.validation import (
    read_case_file,
    validate_document,
)
from calfrehab.engine.explanation.document import (
    DecisionData,
    DecisionDocument,
    build_document,
    document_data,
)
from calfrehab.engine.inference.driver import Evaluation, Reasoner
from calfrehab.engine.knowledge.cache import compiled_cached, keep_code
from calfrehab.engine.knowledge.compiled import CompiledRuleBase
from calfrehab.engine.knowledge.rulebase import default_rules_dir, rulebase_sha256

if TYPE_CHECKING:
    from calfrehab.engine.explanation.explain import Explainer
    from calfrehab.engine.knowledge.ladder import Ladder
    from calfrehab.engine.knowledge.views import SourceView


@dataclass
class Decided:
    """One decided case: the case, its raw document, the evaluation and
    the decision document. ``case_bytes`` are the canonical bytes of the
    document that ``decision.case_sha256`` was taken over, kept so the
    audit trail stores (and a worker ships) them without serialising the
    case a second time."""

    case: Case
    document: dict[str, Any]
    evaluation: Evaluation
    decision: DecisionDocument
    case_bytes: bytes | None = None

    @property
    def sources(self) -> dict[str, SourceView]:
        """The rule base's sources (sources.yaml) by key: what a reason's
        citation refers to, with the short form a terminal shows (their
        views, knowledge/views.py: the same fields, without loading the
        rule language)."""
        return self.evaluation.compiled.source_views

    @property
    def ladder(self) -> Ladder:
        """The rule base's exercise ladder: plain names and doses."""
        return self.evaluation.compiled.ladder

    def explainer(self) -> Explainer:
        # Imported here: deciding a case does not need the explainer.
        from calfrehab.engine.explanation.explain import Explainer

        return Explainer(self.evaluation)


_REASONERS: dict[tuple[str, str], Reasoner] = {}
_LOCK = threading.Lock()


def compile_rules(rules_dir: Path | None = None) -> CompiledRuleBase:
    # Imported here: a run whose compiled rule base comes from the cache
    # (knowledge/cache.py) reads no YAML and compiles nothing, so it loads
    # neither the loader nor the compiler (issue 28 item 4, cold start).
    from calfrehab.engine.knowledge.durable_limits import compile_within_limits
    from calfrehab.engine.knowledge.loader import load_rulebase

    return compile_within_limits(load_rulebase(rules_dir))


def compiled(rules_dir: Path | None = None) -> CompiledRuleBase:
    """The compiled rule base of a rules directory, as :func:`prepare` gets
    it: from the compiled-rules cache when that holds this content (the key
    covers the rules, limits and code), else compiled (a RuleError on bad
    rules) and stored. For a process that needs the rule base but does not
    decide, such as a batch's parent, which names the rule base's sha256 and
    checks the rules before its workers start: compiling there took about
    50 ms of YAML and validation on every batch."""
    return _compiled_at(*_located(rules_dir))


def _located(rules_dir: Path | None) -> tuple[Path, str]:
    """The rules directory, resolved, and the sha256 of its contents ("" if
    it is not a directory: compiling then reports what is wrong)."""
    directory = (Path(rules_dir) if rules_dir is not None else default_rules_dir()).resolve()
    return directory, rulebase_sha256(directory) if directory.is_dir() else ""


def _compiled_at(directory: Path, sha: str) -> CompiledRuleBase:
    # Compiled once per rules directory's content, kept between runs
    # (knowledge.cache: the key covers the rules, limits and code).
    return compiled_cached(directory, sha, lambda: compile_rules(directory))


def prepare(rules_dir: Path | None = None) -> Reasoner:
    """The reasoner for a rules directory, compiled once per process (and
    again only if the directory's contents change)."""
    directory, sha = _located(rules_dir)
    key = (str(directory), sha)
    with _LOCK:
        reasoner = _REASONERS.get(key)
        if reasoner is None:
            reasoner = _collector_paused(lambda: _new_reasoner(directory, sha))
            _REASONERS[key] = reasoner
        return reasoner


def _new_reasoner(directory: Path, sha: str) -> Reasoner:
    reasoner = Reasoner(_compiled_at(directory, sha))
    # And the code the driver generated from it, compiled (codecache).
    keep_code(directory, sha)
    return reasoner


def _collector_paused(make: Callable[[], Reasoner]) -> Reasoner:
    """``make()`` with the garbage collector paused.

    Preparing a reasoner makes thousands of objects that live as long as the
    process (the unpickled rule base, the durable definitions, the plans),
    and nearly nothing else: the collector, counting allocations, ran about
    fifteen times during it in a cold `calfrehab next`, once over the young
    generations, and freed nothing (issue 28 item 4, cold start). Paused
    only if it was running, and resumed after, whatever happens: a caller
    that turned it off keeps it off. Nothing is frozen: a long-running
    server keeps collecting everything, the rule base too. The pause is the
    process's (CPython has no other): another thread's garbage waits those
    few milliseconds too."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return make()
    finally:
        if enabled:
            gc.enable()


def decide(case: Case, document: dict[str, Any], reasoner: Reasoner, *,
           parsed: bool = False, case_bytes: bytes | None = None) -> Decided:
    """Decide a validated case. ``parsed``: ``document`` is what
    :func:`~calfrehab.engine.casefile.validation.parse_json` returned (so
    only JSON values, and, having validated, only finite numbers), and its
    canonical bytes can skip the guards a caller's own dict needs
    (:func:`~calfrehab.engine.canonical.canonical_bytes_parsed`).
    ``case_bytes``: those canonical bytes, when the parse already made them
    (:func:`~calfrehab.engine.casefile.validation.parse_json_canonical`)."""
    evaluation = reasoner.evaluate(case)
    if case_bytes is None:
        case_bytes = canonical_bytes_parsed(document) if parsed else canonical_bytes(document)
    decision = build_document(evaluation, sha256_hex(case_bytes))
    return Decided(case, document, evaluation, decision, case_bytes)


def decide_data(case: Case, document: dict[str, Any], reasoner: Reasoner, *,
                parsed: bool = False, case_bytes: bytes | None = None,
                ) -> tuple[DecisionData, bytes]:
    """:func:`decide` for a caller that wants the decision document only as
    JSON-mode data (what ``decision.model_dump(mode="json")`` gives), and
    the case's canonical bytes: a batch worker. The data is made directly
    (:func:`~calfrehab.engine.explanation.document.document_data`), not
    through a model built only to be dumped again, and its canonical bytes
    need no guard (:meth:`DecisionData.canonical_bytes`). The same
    decision, byte for byte (tests/engine/explanation/test_document_data.py)."""
    evaluation = reasoner.evaluate(case)
    if case_bytes is None:
        case_bytes = canonical_bytes_parsed(document) if parsed else canonical_bytes(document)
    return document_data(evaluation, sha256_hex(case_bytes)), case_bytes


def decide_document(document: Any, reasoner: Reasoner, source: str = "<case>") -> Decided:
    case = validate_document(document, source)
    return decide(case, document, reasoner)


def decide_path(path: str | Path, reasoner: Reasoner) -> Decided:
    """Decide a case file; ``-`` reads standard input."""
    case, doc = read_case_file(path)
    return decide(case, doc, reasoner, parsed=True)


def explanation(decided: Decided) -> dict[str, Any]:
    """HOW, WHY-NOT and sources as data (what ``explain --json`` prints)."""
    ex = decided.explainer()
    return {
        "schema_version": 1,
        "decision": decided.decision.model_dump(mode="json"),
        "how": ex.how(),
        "why_not": ex.why_not(),
        "sources": ex.sources(),
    }

