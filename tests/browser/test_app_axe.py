"""``calfrehab app`` through axe-core: no serious or critical violation on
any page. axe-core is the npm package's own file, vendored where the
report's browser tests keep it (tests/vendor/axe-core); never a CDN."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from appserver import REPO, app_served
from test_app_browser import CASE, PAGES, Visit, chromium, clinic, shot

# This module's clinic holds the examples only: a patient page is an example's.
EXAMPLE = "plantar-next-morning-jump-flare"

__all__ = ["chromium", "clinic"]  # the fixtures, shared with the browser tests

AXE = REPO / "tests" / "vendor" / "axe-core" / "axe.min.js"


def _axe_source() -> str:
    given = os.environ.get("CALFREHAB_AXE")
    return Path(given or AXE).read_text(encoding="utf-8")


def test_axe_finds_no_serious_or_critical_violation_on_any_page(
        chromium: Any, clinic: dict[str, Any], tmp_path: Path) -> None:
    source = _axe_source()
    # axe is put in the page through the DevTools protocol, not a <script>
    # element, so the page's own CSP (no script at all) stays as it is.
    v = Visit(chromium, clinic["base"], scripts=True)
    # Decided and recorded first, so the patient page has its accept and
    # override forms and the audit page a row.
    v.go(f"/patients/{EXAMPLE}")
    v.submit("Decide and record")
    shots = {"/audit": "audit", "/rules": "rules",
             f"/patients/{EXAMPLE}/morning": "morning", f"/patients/{EXAMPLE}": "flare"}
    for path in [p.replace(CASE, EXAMPLE) for p in PAGES if p != "/login"]:
        page = v.go(path)
        page.evaluate(source)
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        bad = [(x["id"], x["impact"], [n["target"] for n in x["nodes"]][:3])
               for x in result["violations"] if x["impact"] in ("serious", "critical")]
        assert not bad, (path, bad)
        if path in shots:
            shot(page, shots[path], tmp_path, whole=path != "/rules")
    v.close()


def test_axe_on_the_sign_in_page(chromium: Any, tmp_path: Path) -> None:
    from calfrehab.app.accounts import hash_password
    from calfrehab.app.clinic import add_account

    cases = tmp_path / "cases"
    cases.mkdir()
    add_account(cases, "Ana Ruiz", hash_password("correct-horse-9"))
    with app_served(cases, tmp_path / "trail.sqlite3", tmp_path) as base:
        v = Visit(chromium, base, scripts=True)
        page = v.go("/login")
        page.evaluate(_axe_source())
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        bad = [(x["id"], x["impact"]) for x in result["violations"]
               if x["impact"] in ("serious", "critical")]
        assert not bad
        shot(page, "sign-in", tmp_path, whole=False)
        v.close()
