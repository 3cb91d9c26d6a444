"""Deterministic generator of realistic synthetic case documents for benchmarks.

Every document is a valid case file, version 1 (``shared/spec/case-format.md``):
plain JSON-serialisable dicts, exercise ids on their own track, every session
and assessment dated on or before ``review_date``, rupture cases with
``injury_date`` and ``management``. The content is clinically plausible: the
program's rungs agree with irritability, goal and (for ruptures) the weeks
since injury or surgery; sessions log the current program with the odd short
set or extra rep; about 15% of cases end in a flare (pain during 6+,
a next-morning jump, or rising morning stiffness) and about 5% carry a red
flag. Cases without a flare are built not to trip the flare rules by accident
(pain during ≤ 5, next-morning pain ≤ 5 and never up by 2 or more, stiffness
never rising).

Case ``i`` of seed ``s`` depends only on ``(s, i)`` (and ``sessions`` if
given): it is drawn from ``random.Random(f"{s}:{i}")`` (the training log from
its own stream, ``random.Random(f"{s}:{i}:log")``), so it is the same whatever
the number of cases generated. Forcing ``sessions=K`` changes only the
training log: patient, condition, program, assessments and red flags stay
the same. The random number of sessions is 0-30, cut to the days available
since onset (since week 2 for a rupture); a forced K is always honoured.

Pain at rest always stays below 7, so the red flags are the main source of
referrals (a rule engine may still refer a long history under the 12-week
no-improvement rule).

    python benchmarks/casegen.py 10000 --out cases.jsonl [--seed S] [--sessions K]
    python benchmarks/casegen.py 200 --dir cases/ [--seed S] [--sessions K]

Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

__all__ = ["generate_case", "generate_cases", "main"]

STRAIGHT_KNEE: tuple[str, ...] = (
    "isometric_heel_raise_hold",
    "two_leg_heel_raise",
    "single_leg_heel_raise",
    "weighted_single_leg_heel_raise",
)
BENT_KNEE: tuple[str, ...] = (
    "isometric_bent_knee_hold",
    "two_leg_bent_knee_heel_raise",
    "single_leg_bent_knee_heel_raise",
    "weighted_single_leg_bent_knee_heel_raise",
)
SEATED_CALF_RAISE = "seated_calf_raise"  # bent-knee rung 3, same rung as the weighted raise
ENERGY_STORAGE: tuple[str, ...] = ("pogo_hops", "single_leg_hops", "return_to_running")

# Frozen copies of the case format's enumerations, on purpose: case i must
# stay the same case across versions so benchmark runs compare, and the
# generator runs without calfrehab installed. The weights follow this order.
KINDS: tuple[str, ...] = (
    "achilles_midportion",
    "achilles_insertional",
    "plantar_fasciopathy",
    "achilles_rupture",
    "calf_strain",
    "none",
)
KIND_WEIGHTS: tuple[float, ...] = (0.24, 0.13, 0.18, 0.14, 0.16, 0.15)
RED_FLAGS: tuple[str, ...] = (
    "suspected_rupture",
    "calf_swelling_warmth",
    "unremitting_night_pain",
    "systemic_symptoms",
    "neurological_signs",
    "recent_fluoroquinolone",
    "bilateral_without_cause",
)

RED_FLAG_RATE = 0.05
FLARE_RATE = 0.15
MAX_RANDOM_SESSIONS = 30
REVIEW_YEAR_START = date(2026, 1, 1)

# Heavy slow resistance (Beyer 2015) and plantar (Rathleff 2015) rep-max schemes, rung 3.
HSR_SCHEME: tuple[tuple[int, int], ...] = ((3, 15), (3, 12), (4, 10), (4, 8), (4, 6))
PLANTAR_SCHEME: tuple[tuple[int, int], ...] = ((3, 12), (4, 10), (5, 8))

# Rupture gates in weeks (clinical-basis.md section 4), used so that a
# generated program sits at or behind the rung its week allows.
RUPTURE_GATE_WEEKS: dict[int, int] = {0: 2, 1: 6, 2: 10, 3: 10, 4: 12, 5: 12, 6: 14}

Case = dict[str, Any]


def _weighted(rng: random.Random, options: Sequence[Any], weights: Sequence[float]) -> Any:
    return rng.choices(options, weights=weights, k=1)[0]


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _round_to(value: float, step: float) -> float | int:
    """Round to a plate/dumbbell step; whole numbers come back as int."""
    rounded = round(value / step) * step
    return int(rounded) if float(rounded).is_integer() else round(rounded, 1)


# --------------------------------------------------------------------------- patient


def _patient(rng: random.Random, kind: str) -> dict[str, Any]:
    age_range = {
        "achilles_midportion": (28, 66),
        "achilles_insertional": (32, 78),
        "plantar_fasciopathy": (30, 70),
        "achilles_rupture": (26, 62),
        "calf_strain": (22, 64),
        "none": (17, 58),
    }[kind]
    age = rng.randint(*age_range)
    sex = _weighted(
        rng, ("female", "male", "other", "unknown", None), (0.45, 0.45, 0.03, 0.02, 0.05)
    )
    mean, sd = {"female": (66.0, 10.0), "male": (81.0, 11.0)}.get(sex or "", (73.0, 12.0))
    mass = _round_to(min(140.0, max(42.0, rng.gauss(mean, sd))), 0.5)
    if kind == "none":
        goal = _weighted(rng, ("running", "sport"), (0.75, 0.25))
    elif kind == "achilles_rupture":
        goal = _weighted(rng, ("running", "sport", "daily_activity"), (0.4, 0.35, 0.25))
    elif age >= 65:
        goal = _weighted(rng, ("running", "sport", "daily_activity"), (0.25, 0.05, 0.7))
    else:
        goal = _weighted(rng, ("running", "sport", "daily_activity"), (0.55, 0.15, 0.3))
    patient: dict[str, Any] = {"age_years": age}
    if rng.random() < 0.92:
        patient["body_mass_kg"] = mass
    if sex is not None:
        patient["sex"] = sex
    if goal != "running" or rng.random() < 0.9:  # running is the default; sometimes left out
        patient["goal"] = goal
    return patient


# --------------------------------------------------------------------------- program


def _strength_rx(
    rng: random.Random, track: str, rung: int, kind: str, mass: float, energy: bool
) -> dict[str, Any]:
    """A prescription on one strength track at one rung."""
    if rung == 0:
        exercise = STRAIGHT_KNEE[0] if track == "straight_knee" else BENT_KNEE[0]
        return {
            "exercise": exercise,
            "load_kg": 0,
            "sets": 5,
            "reps": _weighted(rng, (45, 30, 40), (0.7, 0.15, 0.15)),
        }
    if rung in (1, 2):
        ladder = STRAIGHT_KNEE if track == "straight_knee" else BENT_KNEE
        reps = _weighted(rng, (15, 12, 10), (0.8, 0.1, 0.1))
        return {"exercise": ladder[rung], "load_kg": 0, "sets": 3, "reps": reps}
    scheme = (
        PLANTAR_SCHEME if kind == "plantar_fasciopathy" and track == "straight_knee" else HSR_SCHEME
    )
    step = rng.randrange(len(scheme)) if not energy else len(scheme) - 1 - rng.randrange(2)
    sets, reps = scheme[step]
    progress = (step + 1) / len(scheme)  # 0..1 through the scheme
    if track == "straight_knee":
        exercise = STRAIGHT_KNEE[3]
        load = _round_to(rng.uniform(2.0, 6.0) + progress * rng.uniform(4.0, 0.22 * mass), 0.5)
    elif rng.random() < 0.5:
        exercise = SEATED_CALF_RAISE
        low, high = (1.3, 1.9) if energy else (0.35, 0.6 + 1.1 * progress)
        load = _round_to(mass * rng.uniform(low, high), 2.5)
    else:
        exercise = BENT_KNEE[3]
        load = _round_to(rng.uniform(2.0, 6.0) + progress * rng.uniform(4.0, 0.25 * mass), 0.5)
    return {"exercise": exercise, "load_kg": load, "sets": sets, "reps": reps}


def _energy_rx(rng: random.Random, rung: int) -> dict[str, Any]:
    exercise = ENERGY_STORAGE[rung - 4]
    if exercise == "pogo_hops":
        sets, reps = 3, rng.choice((10, 15, 20, 25, 30))
    elif exercise == "single_leg_hops":
        sets, reps = 3, rng.choice((8, 10, 12, 15, 20))
    else:  # walk-run program: intervals x minutes of running per interval
        sets, reps = rng.randint(4, 10), rng.randint(1, 5)
    return {"exercise": exercise, "load_kg": 0, "sets": sets, "reps": reps}


def _rupture_allows(rung: int, weeks: float) -> bool:
    # One week of margin past each gate: a program on a rung is realistic once
    # the rung's gate has been passed for a while.
    return weeks >= RUPTURE_GATE_WEEKS[rung] + 1


def _straight_rung(rng: random.Random, kind: str, irritability: str, weeks: float | None) -> int:
    if weeks is not None:  # rupture: time since injury/surgery sets the ceiling
        typical = 0 if weeks < 7 else 1 if weeks < 11 else 2 if weeks < 15 else 3
        rung = max(0, typical - (1 if rng.random() < 0.25 else 0))
        while rung > 0 and not _rupture_allows(rung, weeks):
            rung -= 1
        return rung
    weights = (
        (0.7, 0.25, 0.05, 0.0)
        if irritability == "high"
        else (0.0, 0.35, 0.3, 0.35)
        if kind == "none"
        else (0.0, 0.3, 0.3, 0.4)
    )
    chosen: int = _weighted(rng, (0, 1, 2, 3), weights)
    return chosen


def _bent_rung(rng: random.Random, straight: int, soleus: bool) -> int | None:
    """The bent-knee track starts once the straight-knee track is past rung 1."""
    if straight <= 1:
        return None
    if soleus:  # soleus strain: bent-knee track later and lighter
        late: int | None = _weighted(
            rng, (None, 0, 1, 2), (0.35, 0.15, 0.35, 0.15 if straight == 3 else 0.0)
        )
        return late
    if rng.random() < 0.04:
        return 0  # a reactive soleus kept on isometric holds
    rung: int = _weighted(rng, (straight, straight - 1), (0.6, 0.4))
    return rung


def _program(
    rng: random.Random,
    kind: str,
    condition: dict[str, Any],
    patient: dict[str, Any],
    weeks: float | None,
) -> dict[str, Any]:
    irritability = condition.get("irritability", "moderate")
    mass = float(patient.get("body_mass_kg", 73.0))
    goal = patient.get("goal", "running")
    straight = _straight_rung(rng, kind, irritability, weeks)
    bent = _bent_rung(rng, straight, condition.get("muscle") == "soleus")
    energy: int | None = None
    if goal in ("running", "sport") and straight == 3 and bent == 3 and rng.random() < 0.55:
        top = 6 if goal == "running" else 5
        energy = _weighted(rng, (4, 5, 6), (0.45, 0.35, 0.2))
        energy = min(energy, top)
        while weeks is not None and energy >= 4 and not _rupture_allows(energy, weeks):
            energy -= 1
        if energy < 4:
            energy = None
    program: dict[str, Any] = {
        "straight_knee": _strength_rx(
            rng, "straight_knee", straight, kind, mass, energy is not None
        )
    }
    if bent is not None:
        program["bent_knee"] = _strength_rx(rng, "bent_knee", bent, kind, mass, energy is not None)
    elif rng.random() < 0.7:
        program["bent_knee"] = None
    if energy is not None:
        program["energy_storage"] = _energy_rx(rng, energy)
    elif rng.random() < 0.5:
        program["energy_storage"] = None
    for rx in program.values():
        if rx is not None and rx["load_kg"] == 0 and rng.random() < 0.25:
            del rx["load_kg"]  # optional, default 0
    return program


# --------------------------------------------------------------------------- sessions


def _session_dates(
    rng: random.Random,
    review: date,
    count: int,
    spacing: tuple[int, int],
    earliest: date | None,
    fit: bool,
) -> list[date]:
    """Distinct dates before ``review``, newest first, on or after ``earliest``
    where possible: a log too long for the time since onset (or since the
    rupture's week-2 gate) is squeezed to daily sessions, and, when ``fit``,
    cut to the days available. Without ``fit`` exactly ``count`` dates come
    back, the oldest possibly before ``earliest``."""
    if count == 0:
        return []
    last = review - timedelta(days=rng.randint(1, 4))
    gaps = [rng.randint(*spacing) for _ in range(count - 1)]
    if earliest is not None:
        room = max(0, (last - earliest).days)
        if sum(gaps) > room:
            gaps = [1] * (count - 1)
            if fit:
                gaps = gaps[:room]
    out = [last]
    for gap in gaps:
        out.append(out[-1] - timedelta(days=gap))
    return out


def _performed(
    rng: random.Random, rx: dict[str, Any], pain: int, flare_track: bool
) -> dict[str, Any]:
    sets, reps = rx["sets"], rx["reps"]
    done = [reps] * sets
    roll = rng.random()
    if flare_track:
        # pain 6+: the patient stops short
        done = [max(0, reps - rng.randint(0, max(1, reps // 3))) for _ in range(sets)]
        if sets > 1 and rng.random() < 0.5:
            done.pop()
    elif roll < 0.10 and sets > 1:
        done.pop()  # a set short
    elif roll < 0.24:
        k = rng.randrange(sets)
        done[k] = max(0, reps - rng.randint(1, max(1, reps // 4)))  # fewer reps in one set
    elif roll < 0.30:
        done[rng.randrange(sets)] = reps + rng.randint(1, 3)  # a few extra
    elif roll < 0.32 and sets < 10:
        done.append(reps)  # an extra set
    out: dict[str, Any] = {"exercise": rx["exercise"]}
    load = rx.get("load_kg", 0)
    if load or rng.random() < 0.6:
        if load and rng.random() < 0.03:
            load = max(0, _round_to(load * 0.85, 0.5))  # used a lighter weight that day
        out["load_kg"] = load
    out["sets_completed"] = done
    out["pain_during"] = pain
    return out


def _sessions(
    rng: random.Random,
    count: int,
    review: date,
    kind: str,
    irritability: str,
    program: dict[str, Any],
    earliest: date | None,
    flare: str | None,
    fit: bool,
) -> list[dict[str, Any]]:
    tracks = [(t, rx) for t, rx in program.items() if rx is not None]
    base = {"high": 3, "moderate": 2, "low": 1}[irritability]
    if kind == "none":
        base = 0
    elif kind == "calf_strain":
        base = max(0, base - 1)
    track_base = {t: _clamp(base + rng.choice((-1, 0, 0, 1)), 0, 4) for t, _ in tracks}
    if "energy_storage" in track_base:
        track_base["energy_storage"] = rng.choice((0, 1, 1, 2))
    improvement = rng.choice((0, 1, 1, 2))  # pain was this much higher at the start of the log
    stiff_base = {
        "achilles_midportion": 15,
        "achilles_insertional": 15,
        "plantar_fasciopathy": 10,
        "achilles_rupture": 10,
        "calf_strain": 5,
        "none": 0,
    }[kind] + (10 if irritability == "high" else 0)
    has_morning = rng.random() < 0.85
    has_stiffness = rng.random() < 0.7
    loaded = {STRAIGHT_KNEE[3], BENT_KNEE[3], SEATED_CALF_RAISE}
    if program["straight_knee"]["exercise"] == STRAIGHT_KNEE[0]:
        spacing = (1, 2)  # isometric holds: most days
    elif any(rx["exercise"] in loaded for _, rx in tracks):
        spacing = (2, 3)  # heavy slow resistance / plantar scheme: every second or third day
    else:
        spacing = (1, 3)
    dates = list(reversed(_session_dates(rng, review, count, spacing, earliest, fit)))  # oldest 1st
    count = len(dates)
    if flare == "stiffness" and count < 4:
        flare = "pain_during"  # too short a log to show a week-on-week rise
    flare_track = rng.choice([t for t, _ in tracks])

    out: list[dict[str, Any]] = []
    prev_morning: int | None = None
    stiffness = stiff_base + rng.choice((0, 5, 10))
    for k, day in enumerate(dates):
        newest = k == count - 1
        early = round(improvement * (count - 1 - k) / max(1, count - 1))
        exercises: list[dict[str, Any]] = []
        worst = 0
        for track, rx in tracks:
            skip = rng.random() < 0.04
            if skip and len(tracks) > 1 and exercises and not (flare and track == flare_track):
                continue  # skipped this one today (at least one is always logged)
            pain = _clamp(track_base[track] + early + rng.choice((-1, 0, 0, 0, 1)), 0, 5)
            hot = (
                flare == "pain_during"
                and track == flare_track
                and (newest or (k == count - 2 and rng.random() < 0.4))
            )
            if hot:
                pain = rng.randint(6, 8)
            worst = max(worst, pain)
            exercises.append(_performed(rng, rx, pain, hot))
        session: dict[str, Any] = {"date": day.isoformat(), "exercises": exercises}
        if has_morning or flare == "next_morning":
            morning = _clamp(worst - rng.choice((0, 1, 1, 2)), 0, 5)
            if prev_morning is not None:
                morning = min(morning, prev_morning + 1)  # never up by 2 unless flaring
            if flare == "next_morning" and newest and prev_morning is not None:
                morning = _clamp(prev_morning + rng.randint(2, 4), 0, 10)
            elif flare == "next_morning" and newest:
                morning = rng.randint(6, 8)  # a single session: next morning > 5
            if flare == "pain_during" and newest:
                morning = max(morning, rng.randint(3, 7))
            session["pain_next_morning"] = morning
            prev_morning = morning
        if has_stiffness or flare == "stiffness":
            if flare == "stiffness" and (review - day).days <= 6:
                stiffness += rng.choice((10, 15, 20))  # rising through the last week
            else:
                stiffness = max(0, stiffness - rng.choice((0, 0, 0, 5)))  # flat or easing
            session["morning_stiffness_min"] = stiffness
        out.append(session)
    return out


# --------------------------------------------------------------------------- assessments


def _assessments(
    rng: random.Random,
    review: date,
    start: date,
    kind: str,
    side: str,
    program: dict[str, Any],
    patient: dict[str, Any],
    flare: str | None,
) -> list[dict[str, Any]]:
    count = _weighted(rng, (0, 1, 2, 3), (0.2, 0.5, 0.25, 0.05))
    span = max(0, (review - start).days)
    days = sorted(rng.randint(0, span) for _ in range(count))
    rung = STRAIGHT_KNEE.index(program["straight_knee"]["exercise"])
    if program.get("energy_storage") is not None:
        rung = 4
    low, high = ((0, 8), (4, 14), (10, 22), (16, 28), (24, 32))[rung]
    age = int(patient["age_years"])
    uninvolved = _clamp(round(rng.gauss(27 - max(0, age - 40) / 6, 3)), 12, 40)
    visa = kind in ("achilles_midportion", "achilles_insertional")
    out: list[dict[str, Any]] = []
    for k, offset in enumerate(days):
        frac = (k + 1) / count
        item: dict[str, Any] = {"date": (start + timedelta(days=offset)).isoformat()}
        if rng.random() < 0.8:
            involved = min(uninvolved + 1, round(low + (high - low) * frac * rng.uniform(0.6, 1.0)))
            test: dict[str, int] = {"involved": max(0, involved)}
            if side != "both" or rng.random() < 0.5:
                test["uninvolved"] = uninvolved
            item["heel_raise_test"] = test
        if rng.random() < 0.9:
            rest = _clamp(round((1 - frac) * rng.uniform(0, 3) + rng.choice((0, 0, 1))), 0, 4)
            bump = rng.randint(0, 2)  # drawn always, so the stream does not depend on flare
            if flare is not None and k == count - 1:
                rest = _clamp(rest + bump, 0, 5)
            item["pain_at_rest"] = rest
        if visa and rng.random() < 0.7:
            item["visa_a"] = _clamp(round(40 + 50 * frac * rng.uniform(0.6, 1.0)), 0, 100)
        if rung >= 3 and rng.random() < 0.6:
            item["hop_pain"] = rng.choice((0, 0, 1, 1, 2, 3))
        out.append(item)
    return out


# --------------------------------------------------------------------------- case


def generate_case(i: int, seed: int = 0, sessions: int | None = None) -> Case:
    """Synthetic valid case number ``i`` for ``seed``.

    ``sessions`` forces the number of logged sessions (0 or more; a log too
    long for the time since onset then starts before it, which is still a
    valid file). By default the number is drawn between 0 and 30 and cut to
    the days available since onset (or since week 2 after a rupture). The
    result is a fresh, JSON-serialisable dict with ``case_id``
    ``GEN-{seed}-{i:07d}``.

    Everything but the training log is drawn from ``random.Random(f"{seed}:{i}")``
    in a fixed order; the log has its own stream (``f"{seed}:{i}:log"``), so
    forcing ``sessions`` leaves patient, condition, program, assessments and
    red flags unchanged.
    """
    if i < 0:
        raise ValueError("case index i must be ≥ 0")
    if sessions is not None and sessions < 0:
        raise ValueError("sessions must be ≥ 0")
    rng = random.Random(f"{seed}:{i}")
    log_rng = random.Random(f"{seed}:{i}:log")

    kind: str = _weighted(rng, KINDS, KIND_WEIGHTS)
    review = REVIEW_YEAR_START + timedelta(days=rng.randrange(365))
    patient = _patient(rng, kind)

    if kind == "none":
        side = _weighted(rng, ("both", "left", "right"), (0.7, 0.15, 0.15))
        irritability = _weighted(rng, ("low", "moderate"), (0.75, 0.25))
    else:  # a bilateral rupture is a rarity; bilateral tendinopathy or heel pain is not
        both = 0.0 if kind == "achilles_rupture" else 0.08
        side = _weighted(rng, ("left", "right", "both"), (0.5 - both / 2, 0.5 - both / 2, both))
        irritability = _weighted(rng, ("high", "moderate", "low"), (0.2, 0.5, 0.3))
    condition: dict[str, Any] = {"kind": kind, "side": side}
    if irritability != "moderate" or rng.random() < 0.9:
        condition["irritability"] = irritability

    # Time since onset (or injury), and the earliest day the training log may start.
    weeks: float | None = None
    earliest: date | None = None
    onset: date | None = None
    show_onset = rng.random()
    if kind == "achilles_rupture":
        injury = review - timedelta(days=rng.randint(4 * 7, 40 * 7))
        condition["injury_date"] = injury.isoformat()
        condition["management"] = rng.choice(("operative", "non_operative"))
        gate_ref = injury
        if condition["management"] == "operative" and rng.random() < 0.8:
            gate_ref = injury + timedelta(days=rng.randint(1, 10))
            condition["surgery_date"] = gate_ref.isoformat()
        weeks = (review - gate_ref).days / 7
        if irritability == "high" and weeks > 8:  # high irritability belongs to the early weeks
            condition["irritability"] = "moderate"
        onset, earliest = injury, gate_ref + timedelta(days=14)  # isometrics from week 2
        if show_onset < 0.5:
            condition["onset_date"] = injury.isoformat()
    elif kind == "calf_strain":
        muscle = _weighted(rng, ("gastrocnemius", "soleus", None), (0.62, 0.33, 0.05))
        if muscle is not None:
            condition["muscle"] = muscle

    program = _program(rng, kind, condition, patient, weeks)

    if kind not in ("achilles_rupture", "none"):
        rung = STRAIGHT_KNEE.index(program["straight_knee"]["exercise"])
        if program.get("energy_storage") is not None:
            rung = 4
        if kind == "calf_strain":  # weeks, not months
            onset_days = rng.randint(5 + 10 * rung, 21 + 21 * rung)
        else:  # tendinopathy and plantar heel pain: usually months
            onset_days = rng.randint(21 + 21 * rung, 120 + 60 * rung)
        onset = review - timedelta(days=onset_days)
        earliest = onset + timedelta(days=min(7, onset_days // 3))
        if show_onset < 0.85:
            condition["onset_date"] = onset.isoformat()

    drawn = rng.randint(0, MAX_RANDOM_SESSIONS)
    count = drawn if sessions is None else sessions
    flare_roll = rng.random()
    flare_kind: str = _weighted(
        rng, ("pain_during", "next_morning", "stiffness"), (0.45, 0.4, 0.15)
    )
    flare: str | None = None
    if count > 0 and flare_roll < FLARE_RATE:
        flare = "pain_during" if flare_kind == "stiffness" and count < 4 else flare_kind

    window_start = review - timedelta(days=120)
    if onset is not None and onset > window_start:
        window_start = onset
    assessments = _assessments(rng, review, window_start, kind, side, program, patient, flare)

    red_flag_roll = rng.random()
    pool = [f for f in RED_FLAGS if not (kind == "achilles_rupture" and f == "suspected_rupture")]
    drawn_flags = rng.sample(pool, k=_weighted(rng, (1, 2), (0.85, 0.15)))
    red_flags = drawn_flags if red_flag_roll < RED_FLAG_RATE else []
    shuffle = rng.random() < 0.1  # the format allows any order; the system sorts
    keep_empty_flags, keep_empty_log, keep_empty_assessments = (
        rng.random() < 0.8,
        rng.random() < 0.7,
        rng.random() < 0.7,
    )

    log = _sessions(
        log_rng,
        count,
        review,
        kind,
        condition.get("irritability", "moderate"),
        program,
        earliest,
        flare,
        fit=sessions is None,
    )
    if shuffle:
        log_rng.shuffle(log)
        rng.shuffle(assessments)

    case: Case = {
        "schema_version": 1,
        "case_id": f"GEN-{seed}-{i:07d}",
        "review_date": review.isoformat(),
        "patient": patient,
        "condition": condition,
    }
    if red_flags or keep_empty_flags:
        case["red_flags"] = red_flags
    case["program"] = program
    if log or keep_empty_log:
        case["sessions"] = log
    if assessments or keep_empty_assessments:
        case["assessments"] = assessments
    return case


def generate_cases(n: int, seed: int = 0, sessions: int | None = None) -> Iterator[Case]:
    """Cases ``0 .. n-1`` for ``seed``; case ``i`` does not depend on ``n``."""
    for i in range(n):
        yield generate_case(i, seed=seed, sessions=sessions)


# --------------------------------------------------------------------------- CLI


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 0, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write N synthetic valid calfrehab case files (format version 1)."
    )
    parser.add_argument("n", type=_non_negative, metavar="N", help="number of cases")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--out",
        type=Path,
        metavar="FILE.jsonl",
        help="write JSON Lines, one case per line ('-' for stdout)",
    )
    where.add_argument(
        "--dir", type=Path, metavar="DIR", help="write one <case_id>.json file per case into DIR"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument(
        "--sessions",
        type=_non_negative,
        default=None,
        metavar="K",
        help="force K logged sessions per case (default: random 0-30)",
    )
    args = parser.parse_args(argv)

    cases = generate_cases(args.n, seed=args.seed, sessions=args.sessions)
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        for case in cases:
            path = args.dir / f"{case['case_id']}.json"
            path.write_text(json.dumps(case, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return 0
    if str(args.out) == "-":
        try:
            for case in cases:
                sys.stdout.write(json.dumps(case, ensure_ascii=False, separators=(",", ":")) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:  # e.g. piped into `head`: stop quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as fh:
        for case in cases:
            fh.write(json.dumps(case, ensure_ascii=False, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
