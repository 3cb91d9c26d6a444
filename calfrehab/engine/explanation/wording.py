"""Words a clinician reads: doses with units, plain names for case-file
fields, and a reason that holds for every track said once.

The decision document keeps the rule base's own reason text (it is what
the trail records and hashes); these helpers shape that text for the
screen and the report only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from calfrehab.engine.errors import ArgumentError
from calfrehab.engine.knowledge.ladder import Ladder

if TYPE_CHECKING:
    from calfrehab.engine.explanation.document import DecisionDocument
    from calfrehab.engine.knowledge.compiler import CompiledRuleBase

TIMES = "×"

# One home for the words a clinician reads about a track or a decision: the
# terminal, explain, simulate, the report and the FHIR/CDS texts take them
# from here.
TRACK_TITLES: dict[str, str] = {
    "straight_knee": "Straight knee (gastrocnemius)",
    "bent_knee": "Bent knee (soleus)",
    "energy_storage": "Energy storage (hops, running)",
}
DECISION_WORDS: dict[str, str] = {
    "progress": "Progress", "hold": "Hold", "regress": "Regress", "start": "Start",
    "not_started": "Not started", "refer": "Refer",
}


def track_title(track: str) -> str:
    """"Bent knee (soleus)" for ``bent_knee``."""
    return TRACK_TITLES.get(track, track.replace("_", " "))


def decision_word(decision: str) -> str:
    """"Not started" for ``not_started``."""
    return DECISION_WORDS.get(decision, decision.replace("_", " ").capitalize())


def short_citation(citation: str, known: Mapping[str, str] | None = None) -> str:
    """"Silbernagel 2007" from a full citation (the year tells 2007 from
    2020), or the rule base's own short form where sources.yaml gives one."""
    if known and citation in known:
        return known[citation]
    # "Surname AB, ..." is an author list; anything else (a regulator, a
    # cohort summary) is named by its first words.
    if _author_list(citation):
        author = citation.split(" ")[0]
    else:
        author = " ".join(citation.split(".")[0].split(" ")[:3])
    year = re.search(r"\b(19|20)\d\d\b", citation)
    return f"{author} {year.group(0)}" if year else author


_CAPITALS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _author_list(citation: str) -> bool:
    """Whether ``citation`` opens as an author list, "Surname AB," or
    "Surname A.": a capital, more word characters, apostrophes or hyphens,
    one space, one to three capitals and a comma or full stop (what the
    pattern ``^[A-Z][\\w'’-]+ [A-Z]{1,3}[,.]`` matches). In string methods:
    compiling that pattern was a sixth of rendering a cold `calfrehab next`
    (issue 28 item 4). A word character is what ``\\w`` takes, a letter or
    digit (str.isalnum) or an underscore."""
    surname, space, rest = citation.partition(" ")
    if not space or len(surname) < 2 or surname[0] not in _CAPITALS:
        return False
    if not all(ch.isalnum() or ch in "_'’-" for ch in surname[1:]):
        return False
    initials = 0
    while initials < len(rest) and rest[initials] in _CAPITALS:
        initials += 1
    # Four capitals or more: the pattern cannot stop at three before a
    # comma, so it fails as this does.
    return 1 <= initials <= 3 and rest[initials:initials + 1] in (",", ".")


UNIT_SUFFIX = {"reps": "", "seconds": " s", "minutes": " min", "contacts": " contacts"}

# Case-file fields as a clinician says them (the contract's names are for files).
FIELD_WORDS: dict[str, str] = {
    "patient.body_mass_kg": "body mass (kg)",
    "body_mass_kg": "body mass (kg)",
    "patient.age_years": "age",
    "pain_next_morning": "next-morning pain",
    "morning_stiffness_min": "morning stiffness (min)",
    "pain_during": "pain during",
    "sets_completed": "sets done",
    "load_kg": "load (kg)",
    "heel_raise_test": "heel-raise test",
    "pain_at_rest": "pain at rest",
    "visa_a": "VISA-A",
    "hop_pain": "hop pain",
    "review_date": "review date",
    "injury_date": "injury date",
    "surgery_date": "surgery date",
    "onset_date": "onset date",
    "red_flags": "red flags",
    "irritability": "irritability",
}
# Compiled when first needed (re's cache keeps it): a text that holds no
# field name anywhere cannot match it, and most of a `calfrehab next`'s
# reasons hold none, so most runs never compile it (issue 28 item 4).
_FIELD = r"\b(" + "|".join(sorted(map(re.escape, FIELD_WORDS), key=len, reverse=True)) + r")\b"


def unit_of(ladder: Ladder, exercise: str) -> str:
    """The unit of an exercise's reps (reps, seconds, minutes, contacts)."""
    for track in ladder.tracks.values():
        for dose in track.rungs:
            if dose.exercise == exercise:
                return dose.unit
    return "reps"


def dose_text(sets: int, reps: int, unit: str, load_kg: float | None = None) -> str:
    """``3 × 15``, ``5 × 45 s``, ``1 × 20 min``; ``, +10 kg`` when loaded."""
    load = f", +{load_kg:g} kg" if load_kg else ""
    return f"{sets} {TIMES} {reps}{UNIT_SUFFIX.get(unit, '')}{load}"


def exercise_name(ladder: Ladder, exercise: str) -> str:
    """The ladder's name of an exercise ("Single-leg heel raise"), or the
    id with spaces for one the ladder does not name."""
    info = ladder.exercises.get(exercise)
    return info.name if info is not None else exercise.replace("_", " ")


# Compiled when first used (re's cache keeps them): a course's milestones
# and explain's dates need them, `calfrehab next` does not (issue 28 item 4).
_RUNG_KEY = r"^(?P<track>[a-z_]+)\.rung(?P<rung>\d+)$"
_DOSE_KEY = r"^(?P<track>[a-z_]+)\.(?P<sets>\d+)x(?P<reps>\d+)$"


def milestone_text(key: str, ladder: Ladder) -> str:
    """A course milestone as a clinician says it: ``straight_knee.rung3``
    is "Straight knee (gastrocnemius): rung 3 reached", ``straight_knee.4x10``
    "Straight knee (gastrocnemius): 4 × 10 with load", an exercise id its
    name."""
    rung = re.match(_RUNG_KEY, key)
    if rung:
        return f"{track_title(rung['track'])}: rung {rung['rung']} reached"
    dose = re.match(_DOSE_KEY, key)
    if dose:
        return (f"{track_title(dose['track'])}: {dose['sets']} {TIMES} {dose['reps']} "
                "with load")
    return f"first {exercise_name(ladder, key)}"


def clinician_text(text: str, ladder: Ladder | None = None, unit: str | None = None) -> str:
    """Reason text as a clinician reads it: one multiplication sign, a unit
    on a dose of holds or running, and no raw field names. A dose takes the
    unit of the exercise it names, else ``unit`` (the reason's track's)."""
    names: dict[str, str] = {}
    if ladder is not None:
        names = {info.name.lower(): unit_of(ladder, ex) for ex, info in ladder.exercises.items()}

    def dose(m: re.Match[str]) -> str:
        # The unit is the exercise's, when the dose names it ("5 x 45 of ...").
        after = m.string[m.end():].lower()
        named = next((u for name, u in names.items() if after.startswith(" of " + name)), None)
        suffix = UNIT_SUFFIX.get(named or unit or "reps", "")
        return f"{m.group(1)} {TIMES} {m.group(2)}{suffix}"

    text = re.sub(r"\b(\d+) ?[x×] ?(\d+)\b(?! ?(s|min)\b)", dose, text)
    if not any(word in text for word in FIELD_WORDS):
        return text
    return re.sub(_FIELD, lambda m: FIELD_WORDS[m.group(1)], text)


@runtime_checkable  # the API's guard tells a reason from a wrong value by it
class ReasonLike(Protocol):
    @property
    def rule(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def sources(self) -> list[str]: ...
    @property
    def track(self) -> str | None: ...


class MergedReason(BaseModel):
    """One line of 'why': the text, its sources, and the tracks it is for
    (empty when it is about the whole case)."""

    # Built when first asked for (a dump): merge_reasons makes these from
    # the document's own strings and lists, unvalidated (model_construct),
    # so printing a decision builds no validator for them (issue 28 item 4).
    model_config = ConfigDict(frozen=True, defer_build=True)

    text: str
    sources: list[str]
    tracks: list[str]


def merge_reasons(reasons: Sequence[ReasonLike], exercise_names: Mapping[str, str],
                  tracks_in_play: Iterable[str]) -> list[MergedReason]:
    """Reasons in order, with a reason that one rule gives alike for several
    tracks said once: the exercise it names becomes "every exercise" when
    it covers every track in play, else the names joined.

    ``exercise_names`` maps each track to the plain name its reasons use.
    """
    in_play = list(tracks_in_play)
    groups: dict[str, list[ReasonLike]] = {}
    for r in reasons:
        groups.setdefault(r.rule.split("@")[0], []).append(r)
    out: list[MergedReason] = []
    done: set[str] = set()
    for r in reasons:
        base = r.rule.split("@")[0]
        if base in done:
            continue
        group = groups[base]
        shapes = {_shape(g.text, exercise_names.get(g.track or "", "")) for g in group}
        tracks = [g.track for g in group if g.track]
        if len(tracks) > 1 and len(shapes) == 1:
            done.add(base)
            every = set(in_play) <= set(tracks)
            names = " and ".join(exercise_names.get(t, t) for t in tracks)
            text = next(iter(shapes)).replace("\x00", "every exercise" if every else names)
            sources = _union(g.sources for g in group)
            out.append(MergedReason.model_construct(
                text=text[:1].upper() + text[1:], sources=sources, tracks=tracks))
        else:
            out.append(MergedReason.model_construct(
                text=r.text, sources=list(r.sources), tracks=[r.track] if r.track else []))
    return out


def _shape(text: str, name: str) -> str:
    if name:
        text = re.sub(re.escape(name), "\x00", text, flags=re.IGNORECASE)
    return text


def _union(lists: Iterable[list[str]]) -> list[str]:
    out: list[str] = []
    for items in lists:
        out += [s for s in items if s not in out]
    return out


def reason_unit(reason: MergedReason, decision: DecisionDocument, ladder: Ladder
                ) -> str | None:
    """The unit a one-track reason's bare dose ("5 x 45 completed") is in."""
    if len(reason.tracks) != 1:
        return None
    td = next((td for track, td in decision.tracks.items() if track == reason.tracks[0]),
              None)
    if td is None or td.current is None:
        return None
    return unit_of(ladder, td.current.exercise)


def reason_names(decision: DecisionDocument, ladder: Ladder) -> dict[str, str]:
    """Each track's exercise as its reasons name it (the ladder's plain
    name, lower case), from the decision's current prescriptions."""
    out: dict[str, str] = {}
    for track, td in decision.tracks.items():
        if td.current is not None and td.current.exercise in ladder.exercises:
            out[track] = ladder.exercises[td.current.exercise].name.lower()
    return out


# Facts as a clinician names them, with the unit their values are in; a
# track's facts are named without the track ("straight_knee.rung" is the
# straight-knee track's "rung").
FACT_LABELS: dict[str, tuple[str, str]] = {
    "rung": ("rung", ""),
    "started": ("started", ""),
    "load_kg": ("external load", " kg"),
    "load_bw_ratio": ("external load", " × body weight"),
    "calf_load_bw_ratio": ("load through the calf", " × body weight"),
    "sets": ("sets", ""),
    "reps": ("reps", ""),
    "window_sessions": ("sessions logged with this exercise", ""),
    "dose_completed_window": ("sessions with the full dose done", ""),
    "pain_during_last": ("pain during, last session", "/10"),
    "pain_during_previous": ("pain during, the session before", "/10"),
    "pain_during_max_window": ("pain during, worst of the last sessions", "/10"),
    "scheme_week": ("week of the scheme", ""),
    "next_rung": ("next rung", ""),
    "decision": ("decision", ""),
    "condition.kind": ("condition", ""),
    "condition.muscle": ("strained muscle", ""),
    "condition.irritability": ("irritability", ""),
    "condition.management": ("management", ""),
    "condition.side": ("side", ""),
    "patient.goal": ("goal", ""),
    "patient.body_mass_kg": ("body mass", " kg"),
    "patient.age_years": ("age", ""),
    "injury.weeks_since": ("weeks since the injury", ""),
    "injury.days_since": ("days since the injury", ""),
    "sessions.count": ("sessions logged", ""),
    "sessions.days_since_last": ("days since the last session", ""),
    "session.pain_next_morning_last": ("next-morning pain", "/10"),
    "session.pain_next_morning_change": ("rise in next-morning pain", ""),
    "session.stiffness_change_min": ("change in morning stiffness", " min"),
    "assessment.pain_at_rest": ("pain at rest", "/10"),
    "assessment.days_since_last": ("days since the last assessment", ""),
    "assessment.visa_a": ("VISA-A", ""),
    "assessment.hop_pain": ("pain on 10 single-leg hops", "/10"),
    "assessment.heel_raise_involved": ("heel raises, involved side", ""),
    "assessment.heel_raise_uninvolved": ("heel raises, uninvolved side", ""),
    "assessment.heel_raise_lsi": ("heel-raise symmetry", "%"),
    "assessment.visa_a_change": ("change in VISA-A", ""),
    "assessment.heel_raise_change": ("change in heel raises", ""),
    "loading.weeks": ("weeks of loading", ""),
}
OP_WORDS = {">=": "at least", "<=": "at most", ">": "above", "<": "below", "==": "",
            "!=": "not", "in": "one of"}
NEGATED_OP = {">=": "<", "<=": ">", ">": "<=", "<": ">=", "==": "!=", "!=": "=="}


def fact_words(fact: str) -> tuple[str, str, str]:
    """(track title or "", label, unit) for a fact name."""
    head, _, rest = fact.partition(".")
    if head in TRACK_TITLES and rest:
        label, unit = FACT_LABELS.get(rest, (rest.replace("_", " "), ""))
        return TRACK_TITLES[head], label, unit
    label, unit = FACT_LABELS.get(fact, (rest.replace("_", " ") or fact, ""))
    return "", label, unit


def _shown(value: Any, unit: str) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}{unit}"
    if isinstance(value, list | tuple):
        return ", ".join(str(v).replace("_", " ") for v in value)
    return f"{value}{unit}".replace("_", " ")


def criterion_text(fact: str, value: Any, op: str, threshold: Any,
                   negated: bool = False) -> str:
    """A condition not met, as a clinician says it: "Straight knee
    (gastrocnemius): rung 1 (needs 3)", "heel-raise symmetry 86.7% (needs
    at least 90%)", "pain at rest not measured (needs at most 1/10)"."""
    track, label, unit = fact_words(fact)
    if negated:
        op = NEGATED_OP.get(op, op)
    if label == "started" or (track and label == "rung" and value is None):
        said = "started" if value is True else "not started"
        return f"{track}: {said}" if track else said
    words = OP_WORDS.get(op, op)
    if op == "in" and isinstance(threshold, list | tuple) and len(threshold) == 1:
        words = ""
    need = f"{words} {_shown(threshold, unit)}".strip()
    text = f"{label} {_shown(value, unit)} (needs {need})"
    return f"{track}: {text}" if track else text[:1].upper() + text[1:]


def missing_criteria(failed: Iterable[Mapping[str, Any]]) -> list[str]:
    """The leaves of an explanation's failed conditions (a flag that should
    be true is followed into the conditions its rules lacked), each once."""
    out: list[str] = []

    def walk(items: Iterable[Mapping[str, Any]]) -> None:
        for item in items:
            if isinstance(item.get("value"), bool) and not item.get("paths") and (
                    item.get("because") is not None or item["fact"].endswith(
                        ("_ok", "flare", "blocked", "irritable"))):
                for b in item.get("because") or []:
                    if "reason" in b:  # a flag that should be false was set
                        text = clinician_text(str(b["reason"]))
                        if text not in out:
                            out.append(text[:1].upper() + text[1:])
                    walk(b.get("failed") or [])
                continue
            text = criterion_text(item["fact"], item["value"], item["op"], item["threshold"],
                                  bool(item.get("negated")))
            observed = item.get("observed") or []
            if item["fact"] == "assessment.heel_raise_lsi" and len(observed) == 2:
                text += f": involved {observed[0]}, uninvolved {observed[1]}"
            would = str(item.get("would_take") or "")
            if "earliest" in would:  # a week gate: the date it opens
                text += f"; opens {would.split('earliest ', 1)[1]}"
            if text not in out:
                out.append(text)

    walk(failed)
    # A track not started says so once, not with each of its missing facts.
    idle = {t.split(":")[0] for t in out if t.endswith(": not started")}
    return [t for t in out if t.endswith(": not started") or t.split(":")[0] not in idle]


_INDEX = r"^(sessions|assessments)\[(\d+)\]"  # compiled when first used, as _RUNG_KEY


def _when(path: str, dates: Mapping[str, Sequence[Any]]) -> str | None:
    """The date a case-file path's record is from ("sessions[1]..." -> its
    session's date), as a clinician counts: by date, not from zero."""
    m = re.match(_INDEX, path)
    if m is None:
        return None
    records = dates.get(m.group(1), [])
    i = int(m.group(2))
    return str(records[i]) if i < len(records) else None


def condition_line(c: Mapping[str, Any], dates: Mapping[str, Sequence[Any]],
                   flag_titles: Mapping[str, str] | None = None) -> str:
    """One condition of a rule as a physiotherapist reads it: ✓ or ✗, the
    measure in words with its value and what the rule needs, and where a
    value was computed from several records, each with its date
    ("involved 16, uninvolved 28 (57%)"; "2026-11-18: 0/10, 2026-11-19:
    1/10"). No fact paths and no rule ids: those are ``explain --ids``."""
    if "fact" not in c or "op" not in c:  # a program's own mapping, not a trace's condition
        raise ArgumentError("condition_line", "c", c,
                            "a condition of explanation_json's trace (with 'fact' and 'op')")
    mark = "✓" if c.get("satisfied", c.get("holds")) else "✗"
    fact = str(c["fact"])
    value = c.get("value")
    if isinstance(value, bool) and not c.get("paths"):
        # A flag one rule derives: said by that rule's title.
        track, label, _ = fact_words(fact)
        title = (flag_titles or {}).get(fact) or label
        wanted = bool(c.get("threshold")) != bool(c.get("negated"))
        said = title if wanted else f"not: {title}"
        text = f"{track}: {said}" if track else said[:1].upper() + said[1:]
        return f"{mark} {text}"
    text = criterion_text(fact, value, str(c["op"]), c.get("threshold"),
                          bool(c.get("negated")))
    if value is None and c.get("satisfied"):
        track, label, _ = fact_words(fact)
        text = f"{track}: {label} not recorded" if track else f"{label[:1].upper()}" \
            f"{label[1:]} not recorded"
    observed = list(c.get("observed") or [])
    paths = list(c.get("paths") or [])
    if fact == "assessment.heel_raise_lsi" and len(observed) == 2:
        inv, uninv = observed
        text += f": involved {inv}, uninvolved {uninv}"
    elif observed and len(observed) == len(paths):
        _, _, unit = fact_words(fact)
        parts = []
        for v, p in zip(observed, paths, strict=True):
            when = _when(str(p), dates)
            parts.append(f"{when}: {v}{unit}" if when else f"{v}{unit}")
        text += " — " + ", ".join(parts)
    elif len(paths) == 1 and (when := _when(str(paths[0]), dates)):
        text += f" — {when}"
    return f"{mark} {text}"


def restating_rules(doc: DecisionDocument, compiled: CompiledRuleBase) -> set[str]:
    """Reasons that only restate others: a rule that decides nothing and
    whose every condition is a flag other rules derived ("dose done with
    pain within the margin" after "dose done" and "pain within the margin").
    The terminal and the report leave them out of "Why"; explain keeps
    every rule."""
    from calfrehab.engine.knowledge.conditions import polar_leaves

    deciding = {k for td in doc.tracks.values() for k in td.rules}
    out: set[str] = set()
    for r in doc.reasons:
        inst = compiled.instances.get(r.rule)
        if inst is None or r.rule in deciding or inst.view.decision is not None:
            continue
        leaves = [leaf for leaf, _ in polar_leaves(inst.when)]
        if leaves and all(leaf.derived for leaf in leaves):
            out.add(r.rule)
    return out
