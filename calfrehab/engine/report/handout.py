"""The patient handout as data: the next exercises in plain words, the pain
model in lay terms, and when to stop and call the clinic.

No rule ids and no clinical words: the ladder's clinician text goes
through ``plain_words.yaml``, and the pain limits are the rules' own.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from calfrehab.engine.explanation.document import DecisionDocument
from calfrehab.engine.report.bands import PainBands


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class PlainWords(_Model):
    replace: list[tuple[str, str]]
    red_flags: dict[str, str]
    jargon: list[str]


class HandoutExercise(_Model):
    name: str
    dose: str
    weight: str
    tempo: str
    how_often: str
    where: str
    cues: list[str]


class HandoutData(_Model):
    case_id: str
    review_date: date
    refer: bool
    exercises: list[HandoutExercise]
    paused: list[str]
    pain_rules: list[str]
    stop_and_call: list[str]
    keep_a_record: list[str]


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
    text = re.sub(r"(\d+) s\b", r"\1 seconds", text)
    text = re.sub(r"(\d+) min\b", r"\1 minutes", text)
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


def _weight(load_kg: float) -> str:
    if load_kg:
        return f"Add {load_kg:g} kg of weight (a backpack or a dumbbell in your hand)"
    return "Your own body weight: no extra weight"


def _exercise(n: Any) -> HandoutExercise:
    return HandoutExercise(
        name=lay(n.name), dose=_dose(n.sets, n.reps, n.unit), weight=_weight(n.load_kg),
        tempo=lay(n.tempo), how_often=lay(n.frequency), where=lay(n.surface),
        cues=[lay(c) for c in n.cues])


def pain_rules(b: PainBands) -> list[str]:
    return [
        f"Some pain during the exercises is allowed. 0 to {b.safe_max} out of 10 is fine: "
        "carry on.",
        f"{b.safe_max + 1} to {b.acceptable_max} out of 10 is acceptable, but do not add "
        "anything: keep the same exercise and weight.",
        f"Above {b.acceptable_max} out of 10 is too much: stop that exercise for today and "
        "tell the clinic.",
        "Pain may rise a little after exercising, but it should have settled by the next "
        "morning.",
        f"If the pain the next morning is above {b.morning_max} out of 10, or "
        f"{b.morning_rise} or more points worse than the morning before, do not increase "
        "anything and call the clinic before your next session.",
        "Morning stiffness should not get worse from one week to the next; if it does, "
        "tell the clinic.",
    ]


def build(doc: DecisionDocument, names: dict[str, str], bands: PainBands) -> HandoutData:
    refer = doc.outcome == "refer"
    exercises: list[HandoutExercise] = []
    paused: list[str] = []
    if not refer:
        for td in doc.tracks.values():
            if td.next is not None:
                exercises.append(_exercise(td.next))
            elif td.decision == "regress" and td.current is not None:
                paused.append(lay(names.get(td.current.exercise, td.current.exercise)))
    words = plain_words()
    stop = [text[:1].upper() + text[1:] + "." for text in words.red_flags.values()]
    return HandoutData(
        case_id=doc.case_id, review_date=date.fromisoformat(doc.review_date), refer=refer,
        exercises=exercises, paused=paused, pain_rules=pain_rules(bands),
        stop_and_call=stop,
        keep_a_record=[
            "After each session: how many you did in each set, and the worst pain during "
            "each exercise (0 to 10).",
            "The next morning: your pain (0 to 10) and how many minutes of stiffness.",
        ],
    )
