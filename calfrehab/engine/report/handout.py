"""The patient handout as data: the next exercises in plain words, the pain
model in lay terms, and when to stop and call the clinic.

No rule ids and no clinical words: the ladder's clinician text goes
through ``plain_words.yaml``, and the pain limits are the rules' own, said
once (in the pain box) and for the patient's condition (a calf strain is
loaded pain-free).
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict

from calfrehab.engine.casefile.model import Case
from calfrehab.engine.explanation.document import DecisionDocument
from calfrehab.engine.knowledge.ladder import NextPrescription
from calfrehab.engine.report.bands import PainBands
from calfrehab.engine.report.decided import DecidedProgramme


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)


class DropCues(_Model):
    clinician_only: list[str]
    running_only: list[str]
    pain: list[str]
    progression: list[str]


class PlainWords(_Model):
    replace: list[tuple[str, str]]
    drop_cues: DropCues
    red_flags: dict[str, str]
    jargon: list[str]


class HandoutExercise(_Model):
    name: str
    dose: str
    weight: str | None
    tempo: str
    how_often: str
    where: str
    cues: list[str]


class Clinic(_Model):
    """Who to call: from the clinic configuration or the command's options."""

    name: str | None = None
    phone: str | None = None


class HandoutData(_Model):
    case_id: str
    review_date: date
    printed: date
    next_review: date
    side: str  # "right", "left", "both"
    clinic: Clinic
    refer: bool
    exercises: list[HandoutExercise]
    paused: list[str]
    pain_rules: list[str]
    stop_and_call: list[str]
    keep_a_record: list[str]
    decision_note: str | None = None


@lru_cache(maxsize=1)
def plain_words() -> PlainWords:
    text = resources.files("calfrehab.engine.report").joinpath("plain_words.yaml").read_text(
        encoding="utf-8")
    return PlainWords.model_validate(yaml.safe_load(text))


def lay(text: str) -> str:
    """Clinician text in a patient's words."""
    for clinical, plain in plain_words().replace:
        text = text.replace(clinical, plain)
    text = re.sub(r"(\d+)/10\b", r"\1 out of 10", text)
    text = re.sub(r"\b1 s\b", "1 second", text)
    text = re.sub(r"\b1 min\b", "1 minute", text)
    text = re.sub(r"(\d+) s\b", r"\1 seconds", text)
    text = re.sub(r"(\d+) min\b", r"\1 minutes", text)
    text = re.sub(r"(\d+(?:\.\d+)?) ?x body weight", r"\1 times your body weight", text)
    return text[:1].upper() + text[1:] if text else text


def _dose(sets: int, reps: int, unit: str) -> str:
    if unit == "seconds":
        return f"{sets} holds of {reps} seconds each"
    if unit == "minutes":
        times = "once" if sets == 1 else f"{sets} times"
        return f"{reps} minutes, {times}"
    if unit == "contacts":
        return f"{sets} sets of {reps} hops"
    return f"{sets} sets of {reps} repetitions"


def _weight(load_kg: float, unit: str, seated: bool) -> str | None:
    """What to hold, by kind of exercise: a seated raise is loaded on the
    knees or on a machine; a standing one with a backpack or a dumbbell."""
    if unit in ("minutes", "contacts"):
        return None  # running and hopping carry no weight
    if not load_kg:
        return "Your own body weight: no extra weight."
    if seated:
        return (f"Add {load_kg:g} kg: on a seated calf-raise machine, or a weight resting "
                "on your knees.")
    return f"Add {load_kg:g} kg: a backpack, or a dumbbell in your hand."


def _keep(cue: str, holding: bool, running: bool) -> bool:
    drop = plain_words().drop_cues
    lowered = cue.lower()

    def has(pieces: list[str]) -> bool:
        return any(p.lower() in lowered for p in pieces)

    if has(drop.clinician_only) or has(drop.pain):
        return False
    if not running and has(drop.running_only):
        return False
    return not (holding and has(drop.progression))


def _exercise(n: NextPrescription, decision: str, seated: frozenset[str],
              running: bool) -> HandoutExercise:
    holding = decision in ("hold", "regress")
    return HandoutExercise(
        name=lay(n.name), dose=_dose(n.sets, n.reps, n.unit),
        weight=_weight(n.load_kg, n.unit, n.exercise in seated),
        tempo=lay(n.tempo), how_often=lay(n.frequency), where=lay(n.surface),
        cues=[lay(c) for c in n.cues if _keep(c, holding, running)])


def pain_rules(b: PainBands, condition_kind: str) -> list[str]:
    """The pain limits, once, for the patient's condition."""
    if condition_kind == "calf_strain" and b.strain_max is not None:
        during = [
            f"Keep every exercise pain-free: 0 to {b.strain_max} out of 10 at most. If the "
            f"pain goes above {b.strain_max}, stop that set and do not add anything.",
        ]
    else:
        during = [
            f"Some pain during the exercises is allowed. 0 to {b.safe_max} out of 10 is fine: "
            "carry on.",
            f"{b.safe_max + 1} to {b.acceptable_max} out of 10 is acceptable, but do not add "
            "anything: keep the same exercise and weight.",
            f"Above {b.acceptable_max} out of 10 is too much: stop that exercise for today "
            "and tell the clinic.",
        ]
    settle = []
    if b.morning_margin is not None:
        settle = [f"If the pain the next morning is {b.morning_margin + 1} to {b.morning_max} "
                  "out of 10, keep the same exercises and weights: do not add anything."]
    return [
        *during,
        *settle,
        "Pain should have settled by the next morning. If the pain the next morning is "
        f"above {b.morning_max} out of 10, or {b.morning_rise} or more points worse than "
        "the morning before, do not increase anything and call the clinic before your next "
        "session.",
        "Morning stiffness should not get worse from one week to the next; if it does, "
        "tell the clinic.",
    ]


SIDE_WORDS = {"left": "your left leg", "right": "your right leg", "both": "both legs"}


def build(case: Case, doc: DecisionDocument, names: dict[str, str], bands: PainBands, *,
          seated: frozenset[str], printed: date, next_review: date, clinic: Clinic,
          decision_note: str | None = None,
          programme: DecidedProgramme | None = None,
          visit: date | None = None) -> HandoutData:
    """The handout for ``case``. ``programme``, when the clinician acted on
    the decision (accepted it, or overrode it), is what the patient takes
    home instead of ``doc``'s next step (clinical-basis §8)."""
    # The case as it is now refers (a red flag entered since the decision
    # the programme came from, say): no exercise, whatever was accepted.
    # Only a referral the clinician overrode with a programme gives way.
    refer = doc.outcome == "refer" and (programme is None or programme.outcome != "refer")
    if refer:
        programme = None
    running = case.patient.goal == "running"
    exercises: list[HandoutExercise] = []
    paused: list[str] = []
    if programme is not None:
        for track, rx in programme.tracks.items():
            before = getattr(case.program, track, None)
            if rx is not None:
                exercises.append(_exercise(rx, programme.decisions.get(track, "hold"),
                                           seated, running))
            elif before is not None:
                paused.append(lay(names.get(before.exercise, before.exercise)))
    elif not refer:
        for td in doc.tracks.values():
            if td.next is not None:
                exercises.append(_exercise(td.next, td.decision, seated, running))
            elif td.decision == "regress" and td.current is not None:
                paused.append(lay(names.get(td.current.exercise, td.current.exercise)))
    words = plain_words()
    stop = [text[:1].upper() + text[1:] + "." for text in words.red_flags.values()]
    return HandoutData(
        case_id=doc.case_id, review_date=visit or date.fromisoformat(doc.review_date),
        printed=printed, next_review=next_review,
        side=SIDE_WORDS.get(case.condition.side, case.condition.side), clinic=clinic,
        refer=refer, exercises=exercises, paused=paused,
        pain_rules=pain_rules(bands, case.condition.kind), stop_and_call=stop,
        keep_a_record=[
            "After each session: how many you did in each set, and the worst pain during "
            "each exercise (0 to 10).",
            "The next morning: your pain (0 to 10) and how many minutes of stiffness.",
        ],
        decision_note=decision_note,
    )
