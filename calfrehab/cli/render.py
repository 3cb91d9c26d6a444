"""Text for a clinician's terminal: 80 columns, colour only on a terminal
and never when ``NO_COLOR`` is set (https://no-color.org)."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Mapping
from typing import Any, TextIO

import click

from calfrehab.engine import api as api_words
from calfrehab.engine.api import (
    Decided,
    clinician_text,
    condition_line,
    dose_text,
    for_terminal,
    format_value,
    merge_reasons,
    missing_criteria,
    reason_names,
    reason_unit,
    restating_rules,
    unit_of,
)
from calfrehab.engine.api import (
    short_citation as short_citation,  # audit_cmd takes it from here
)

WIDTH = 80
# The explanation layer's words (one home); a decision is shouted at the
# terminal, a track not started is not.
TRACK_TITLES = api_words.TRACK_TITLES
DECISION_WORDS = {k: (v.upper() if k != "not_started" else v.lower())
                  for k, v in api_words.DECISION_WORDS.items()}
COLOURS = {"progress": "green", "start": "green", "hold": "yellow", "regress": "red",
           "refer": "red"}


def use_colour(stream: TextIO | None = None) -> bool:
    """Colour only on a terminal, and not when NO_COLOR is set (to anything)."""
    if os.environ.get("NO_COLOR"):
        return False
    return (stream or sys.stdout).isatty()


def _short_forms(decided: Decided) -> dict[str, str]:
    sources = decided.sources
    return {s.citation: s.short for s in sources.values() if s.short}


def wrap(text: str, indent: str, first: str | None = None, *,
         whole_words: bool = False) -> list[str]:
    """Fit text to 80 columns; ``first`` is the first line's lead-in.
    ``whole_words`` never breaks a word or at a hyphen (ids and paths).
    The text is rule, ladder, source or case text: escaped first, so a
    control character or a newline in it cannot reach the terminal raw or
    forge a line (issue 27)."""
    text = for_terminal(text, limit=None)
    return textwrap.wrap(text, WIDTH, initial_indent=first if first is not None else indent,
                         subsequent_indent=indent, break_long_words=not whole_words,
                         break_on_hyphens=not whole_words) or [first or indent]


def dose(rx: Mapping[str, Any], unit: str | None = None) -> str:
    """``3 × 15, +5 kg`` or ``5 × 45 s, bodyweight`` from a prescription as
    data (``unit`` where the prescription does not carry one); a stored one
    may lack fields, which show as ``?``."""
    unit = unit or rx.get("unit", "reps")
    sets, reps = rx.get("sets", "?"), rx.get("reps", "?")
    load = rx.get("load_kg")
    weight = f"+{load:g} kg" if isinstance(load, int | float) and load else "bodyweight"
    if isinstance(sets, int) and isinstance(reps, int):
        return f"{dose_text(sets, reps, unit)}, {weight}"
    return f"{sets} × {reps}, {weight}"


def render_next(decided: Decided, colour: bool, source: str = "CASE") -> str:
    doc = decided.decision
    ladder = decided.ladder
    names = ladder.exercises

    def style(text: str, decision: str) -> str:
        return click.style(text, fg=COLOURS.get(decision), bold=True) if colour else text

    lines = [
        f"Case {doc.case_id} · review {doc.review_date}",
        "Decision support: the treating clinician decides.",
        "",
    ]
    if doc.outcome == "refer":
        lines.append(style("REFER: stop progression and refer. No exercise is prescribed.",
                           "refer"))
    # A blocker that holds every track back alike is said once, above them.
    shared = _shared_blockers(doc)
    if doc.outcome != "refer" and shared:
        lines.append("Every track")
        for text in shared.values():
            lines += wrap(clinician_text(text, ladder), "        ", "  why   ")
        lines.append("")
    for track, td in doc.tracks.items():
        if doc.outcome == "refer":
            break
        lines.append(f"{TRACK_TITLES[track]}: {style(DECISION_WORDS[td.decision], td.decision)}")
        # What held the track back, right under it (the full list is below).
        for blocker in doc.blockers:
            if (blocker.track == track and blocker.rule not in td.rules
                    and blocker.rule.split("@")[0] not in shared):
                lines += wrap(clinician_text(blocker.text, ladder), "        ", "  why   ")
        if td.current is not None:
            # Its fields as they are (a flat model: what model_dump() gives),
            # without building the document's serializer for a terminal
            # (explanation/document.py builds it only when asked for).
            cur = dict(td.current)
            name = names[cur["exercise"]].name if cur["exercise"] in names else cur["exercise"]
            lines += wrap(f"{name}, {dose(cur, unit_of(ladder, cur['exercise']))}", "        ",
                          "  now   ")
        if td.next is not None:
            nxt = dict(td.next)  # its fields, as for td.current above
            lines += wrap(f"{nxt['name']}, {dose(nxt)}", "        ", "  next  ")
            lines += wrap(f"{nxt['tempo']}; {nxt['frequency']}; {nxt['surface']}", "        ")
            for cue in nxt["cues"]:
                lines += wrap(clinician_text(cue, ladder), "          ", "        - ")
        elif td.decision == "regress":
            lines.append("  next  pause this track")
        lines.append("")
    lines.append("Why")
    shorts = _short_forms(decided)
    # A reason one rule gives alike for every track in play is said once.
    in_play = [t for t, td in doc.tracks.items() if td.current is not None]
    # A reason that only restates others ("ready" after "dose done" and
    # "pain within the margin") is left to explain.
    skip = restating_rules(doc, decided.evaluation.compiled)
    said = [r for r in doc.reasons if r.rule not in skip]
    for reason in merge_reasons(said, reason_names(doc, ladder), in_play):
        cites = "; ".join(short_citation(s, shorts) for s in reason.sources)
        text = clinician_text(reason.text, ladder, reason_unit(reason, doc, ladder))
        lines += wrap(f"{text} [{cites}]", "    ", "  - ")
    lines.append("")
    lines.append(f"Rules {for_terminal(doc.rulebase.name)} {for_terminal(doc.rulebase.version)} "
                 f"(sha256 {doc.rulebase.sha256[:12]}) · decision {doc.decision_id}")
    lines.append(f"Full trail: calfrehab explain {source}")
    return "\n".join(lines)


def _shared_blockers(doc: Any) -> dict[str, str]:
    """Blockers one rule gives, in the same words, to every track: base rule
    id -> text."""
    by_rule: dict[str, dict[str, str]] = {}
    for b in doc.blockers:
        if b.rule not in doc.tracks[b.track].rules:
            by_rule.setdefault(b.rule.split("@")[0], {})[b.track] = b.text
    return {rule: next(iter(texts.values())) for rule, texts in by_rule.items()
            if set(texts) == set(doc.tracks) and len(set(texts.values())) == 1}


def render_explain(decided: Decided, data: dict[str, Any], ids: bool = False) -> str:
    """The physiotherapist's view: rule titles, measures in words with
    session dates; ``ids`` adds rule ids and case-file paths (the auditor's
    view, as before)."""
    if not ids:
        return _explain_for_clinician(decided, data)
    doc = decided.decision
    lines = [f"Explanation for case {doc.case_id} · review {doc.review_date} · "
             f"outcome {doc.outcome}", ""]
    for track, td in doc.tracks.items():
        nxt = f" → {td.next.exercise}" if td.next is not None else ""
        lines.append(f"  {TRACK_TITLES[track]}: {DECISION_WORDS[td.decision]}{nxt}")
    lines += ["", "HOW: rules that fired, in order"]
    for f in data["how"]:
        what = f["effect"] or (f"asserted {f['asserted']}" if f["asserted"] else "")
        head = f"  {f['seq']}. "
        lines += wrap(f"{f['rule']} — {f['title']} ({what})", " " * len(head), head)
        for c in f["conditions"]:
            lines += wrap(_cond(c), "         ", "       ")
    lines += ["", "WHY-NOT: what would have moved each track that did not progress"]
    if not data["why_not"]:
        lines.append("  every track progressed or started")
    for w in data["why_not"]:
        lines.append(f"  {TRACK_TITLES[w['track']]} ({DECISION_WORDS[w['decision']]})")
        if not w["rules"]:
            lines.append("    no rule could move it")
        for r in w["rules"]:
            lines += wrap(f"{r['rule']} — {r['title']}", "      ", "    ")
            lines += _failed(r["failed"], "      ")
            for o in r.get("overruled_by", []):
                lines += wrap(f"held, but {o['decision']} wins over progress: {o['reason']} "
                               f"({o['rule']})", "          ", "      ")
    lines += ["", "Sources"]
    for s in data["sources"]:
        lines += wrap(s["citation"], "      ", f"  [{s['key']}] ")
    lines += ["", "Decision support: the treating clinician decides."]
    return "\n".join(lines)


def _explain_for_clinician(decided: Decided, data: dict[str, Any]) -> str:
    doc = decided.decision
    case = decided.case
    ladder = decided.evaluation.compiled.base.ladder
    dates = {"sessions": [s.date for s in case.sessions],
             "assessments": [a.date for a in case.assessments]}
    flags = _flag_titles(decided)
    lines = [f"Explanation for case {doc.case_id} · review {doc.review_date} · "
             f"outcome {doc.outcome}", ""]
    for track, td in doc.tracks.items():
        nxt = ""
        if td.next is not None:
            nxt = f" → {for_terminal(td.next.name)}, {dose(td.next.model_dump())}"
        lines += wrap(f"{TRACK_TITLES[track]}: {DECISION_WORDS[td.decision]}{nxt}", "      ",
                      "  ")
    lines += ["", "HOW: what the rules found, in order"]
    for f in data["how"]:
        head = f"  {f['seq']}. "
        lines += wrap(clinician_text(f["title"], ladder), " " * len(head), head)
        for c in f["conditions"]:
            lines += wrap(condition_line(c, dates, flags), "         ", "       ")
    lines += ["", "WHY-NOT: what would have moved each track that did not progress"]
    if not data["why_not"]:
        lines.append("  every track progressed or started")
    for w in data["why_not"]:
        lines.append(f"  {TRACK_TITLES[w['track']]} ({DECISION_WORDS[w['decision']]})")
        if not w["rules"]:
            lines.append("    no rule could move it")
        for r in w["rules"]:
            lines += wrap(clinician_text(r["title"], ladder), "      ", "    ")
            missing = missing_criteria(r["failed"])
            for m in missing:
                lines += wrap(f"✗ {m}", "          ", "        ")
            for o in r.get("overruled_by", []):
                lines += wrap(f"all met, but {DECISION_WORDS[o['decision']].lower()} wins: "
                              f"{clinician_text(o['reason'], ladder)}", "          ", "      ")
    shorts = _short_forms(decided)
    lines += ["", "Sources"]
    for s in data["sources"]:
        lines += wrap(s["citation"], "      ", f"  [{short_citation(s['citation'], shorts)}] ")
    lines += ["", "Rule ids and case-file paths: calfrehab explain --ids CASE",
              "Decision support: the treating clinician decides."]
    return "\n".join(lines)


def _flag_titles(decided: Decided) -> dict[str, str]:
    """Each derived flag, named by the title of a rule that asserts it."""
    compiled = decided.evaluation.compiled
    out: dict[str, str] = {}
    for flag, producers in compiled.derived.items():
        if producers:
            out[flag] = compiled.instances[producers[0]].rule.title
    return out


def _cond(c: dict[str, Any]) -> str:
    mark = "✓" if c["satisfied"] else "✗"
    neg = "not " if c["negated"] else ""
    value = "missing" if c["value"] is None else format_value(c["value"])
    if c.get("observed"):
        value += " (" + ", then ".join(format_value(v) for v in c["observed"]) + ")"
    if c["op"] in ("exists", "missing"):
        text = f"{mark} {neg}{c['fact']} {c['op']} (value: {value})"
    else:
        text = f"{mark} {neg}{c['fact']} {c['op']} {format_value(c['threshold'])}: was {value}"
    if c.get("derived_by"):
        text += f" [derived by {', '.join(c['derived_by'])}]"
    elif c["paths"]:
        text += f" [{', '.join(c['paths'])}]"
    if c.get("would_take"):
        text += f" — {c['would_take']}"
    return text


def _failed(items: list[dict[str, Any]], indent: str) -> list[str]:
    lines: list[str] = []
    for item in items:
        lines += wrap(_cond(item), indent + "    ", indent + "  ")
        for b in item.get("because", []):
            if "failed" in b:
                lines += wrap(f"needs {b['rule']}: {b['title']}", indent + "      ",
                               indent + "    ")
                lines += _failed(b["failed"], indent + "    ")
            else:
                lines += wrap(f"set by {b['rule']}: {clinician_text(b['reason'])}",
                              indent + "      ", indent + "    ")
                for c in b.get("conditions", []):
                    lines += wrap(c, indent + "        ", indent + "      ")
    return lines
