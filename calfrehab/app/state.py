"""One running app: its settings, the cases directory, the trail's index,
the sessions, the templates and the prepared rule base."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import date
from pathlib import Path
from typing import Any

import jinja2

from calfrehab.app.casedir import CaseDirectory, Snapshot
from calfrehab.app.security import Sessions
from calfrehab.app.settings import AppSettings
from calfrehab.app.trailindex import TrailIndex
from calfrehab.engine import api

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
# Decisions kept per case file version: a patient page opened again, or
# after a form, decides nothing new.
DECIDED_KEPT = 256


class AppState:
    def __init__(self, settings: AppSettings) -> None:
        self.settings = settings
        self.cases = CaseDirectory(settings.cases)
        self.trail = TrailIndex(self.audit_path())
        self.sessions = Sessions()
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATES)),
            autoescape=True,  # every template, whatever its name: case text is never HTML
            trim_blocks=True, lstrip_blocks=True,
        )
        self._reasoner: api.Reasoner | None = None
        self._ladder: Any = None
        self._charts: OrderedDict[tuple[str, str], dict[str, str]] = OrderedDict()
        self._rulebase: tuple[Any, dict[str, list[dict[str, Any]]]] | None = None
        self._decided: OrderedDict[tuple[str, str], api.Decided] = OrderedDict()
        self._lock = threading.Lock()

    def audit_path(self) -> Path | None:
        return self.settings.audit

    def reasoner(self) -> api.Reasoner:
        if self._reasoner is None:
            self._reasoner = api.prepare(self.settings.rules)
        return self._reasoner

    def decided(self, snap: Snapshot) -> api.Decided | None:
        """The proposal for a case file as it is now (None for a file that
        does not validate); kept per file version."""
        if snap.case is None or snap.document is None:
            return None
        key = (snap.name, snap.sha256)
        with self._lock:
            found = self._decided.get(key)
            if found is not None:
                self._decided.move_to_end(key)
                return found
        decided = api.decide(snap.case, snap.document, self.reasoner())
        with self._lock:
            self._decided[key] = decided
            while len(self._decided) > DECIDED_KEPT:
                self._decided.popitem(last=False)
        return decided

    def charts(self, snap: Snapshot) -> dict[str, str]:
        """The report's course charts (inline SVG, no script) for a case
        file as it is now; kept per file version."""
        if snap.case is None:
            return {}
        key = (snap.name, snap.sha256)
        with self._lock:
            found = self._charts.get(key)
        if found is None:
            try:
                found = api.report_charts(snap.path, rules_dir=self.settings.rules)
            except api.CalfrehabError:
                found = {}
            with self._lock:
                self._charts[key] = found
                while len(self._charts) > DECIDED_KEPT:
                    self._charts.popitem(last=False)
        return found

    def ladder(self) -> Any:
        if self._ladder is None:
            self._ladder = api.load_ladder(self.settings.rules)
        return self._ladder

    def rulebase(self) -> tuple[Any, dict[str, list[dict[str, Any]]]]:
        """The rule base, and for each rule id the case-table cases in which
        it fired (run once: the tables are the rules' own tests)."""
        if self._rulebase is None:
            compiled = api.compile_rules(self.settings.rules)
            report = api.run_tables(self.settings.rules)
            cases: dict[str, list[dict[str, Any]]] = {}
            for r in report.results:
                for key in {k.split("@")[0] for k in r.fired}:
                    cases.setdefault(key, []).append(
                        {"table": r.file, "name": r.name, "passed": r.passed})
            self._rulebase = (compiled.base, cases)
        return self._rulebase

    def today(self) -> date:
        return api.utc_today()

    def render(self, template: str, **context: Any) -> str:
        return self.templates.get_template(template).render(**context)
