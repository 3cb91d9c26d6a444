"""A case file as it stands after a simulated course: the intake plus
every session and assessment the course simulator's patient logged. The
report's page budget (four A4 pages for twelve weeks) and its screenshots
are measured on such a case."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from calfrehab.engine.casefile.validation import read_case_file
from calfrehab.engine.course.replay import replay
from calfrehab.engine.course.script import parse_script
from calfrehab.engine.pipeline import Decided, decide_document, prepare


def simulated_case(path: str | Path, weeks: int, script: str = "ideal",
                   rules_dir: Path | None = None) -> dict[str, Any]:
    """The case document at the last weekly review of a ``weeks``-week
    simulated course from the intake at ``path``."""
    reasoner = prepare(rules_dir)
    _, doc = read_case_file(path)
    last: dict[str, Any] = doc

    def decide(d: dict[str, Any]) -> Decided:
        nonlocal last
        last = copy.deepcopy(d)
        return decide_document(d, reasoner, str(path))

    replay(doc, weeks=weeks, script=parse_script(script), decide=decide,
           ladder=reasoner.compiled.base.ladder)
    return last
