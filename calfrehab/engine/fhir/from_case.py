"""A case file as a FHIR R4 (R4B models) collection Bundle.

The mapping is documented as a table in docs/integration.md; each function
here builds the resources of one row. :mod:`calfrehab.engine.fhir.to_case`
reads them back, and a case exported and imported is the same case.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.careplan import CarePlan, CarePlanActivity, CarePlanActivityDetail
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.goal import Goal
from fhir.resources.R4B.observation import Observation, ObservationComponent
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.resource import Resource

from calfrehab.engine.casefile.model import (
    Assessment,
    Case,
    PerformedExercise,
    Prescription,
    Session,
)
from calfrehab.engine.fhir import build as b
from calfrehab.engine.fhir import codes
from calfrehab.engine.vocabulary import TRACKS

PAIN_DISPLAY = "Pain severity - 0-10 verbal numeric rating [Score] - Reported"


def birth_date_for(age_years: int, review: date) -> date:
    """The birth date that makes the patient ``age_years`` old on the review
    date: their birthday falls on it (29 February falls back to the 28th).
    The case file holds an age, not a birth date; the review date is the
    day the age is counted to, as every time-based rule counts from it."""
    year = review.year - age_years
    try:
        return review.replace(year=year)
    except ValueError:
        return review.replace(year=year, day=28)


def age_on(birth: date, review: date) -> int:
    """Completed years on the review date."""
    return review.year - birth.year - ((review.month, review.day) < (birth.month, birth.day))


class _Builder:
    def __init__(self, case: Case) -> None:
        self.case = case
        self.entries: list[BundleEntry] = []
        self.patient_id = self.rid("patient")

    def rid(self, role: str) -> str:
        return b.resource_id(self.case.case_id, role)

    def add(self, resource: Resource) -> None:
        rid = resource.id
        assert rid is not None  # every builder sets one
        self.entries.append(BundleEntry(fullUrl=b.full_url(rid), resource=resource))

    def subject(self) -> Any:
        return b.ref(self.patient_id)

    # ------------------------------------------------------------ rows

    def encounter(self) -> None:
        # "class" is a Python keyword: the library takes it by its JSON name.
        encounter_class: dict[str, Any] = {"class": b.coding(codes.ACT_CODE, "AMB", "ambulatory")}
        self.add(Encounter(
            id=self.rid("review"),
            identifier=[b.identifier(codes.CS_CASE_ID, self.case.case_id)],
            status="in-progress",
            **encounter_class,
            subject=self.subject(),
            period=Period(start=b.day(self.case.review_date)),
        ))

    def patient(self) -> None:
        p = self.case.patient
        self.add(Patient(
            id=self.patient_id,
            gender=p.sex,
            birthDate=birth_date_for(p.age_years, self.case.review_date),
        ))
        self.add(Goal(
            id=self.rid("goal"),
            lifecycleStatus="active",
            description=b.concept(b.coding(codes.CS_GOAL, p.goal, p.goal.replace("_", " "))),
            subject=self.subject(),
        ))
        if p.body_mass_kg is not None:
            self.add(Observation(
                id=self.rid("body-weight"),
                status="final",
                category=[b.concept(b.coding(codes.OBS_CATEGORY, "vital-signs"))],
                code=b.concept(b.coding(codes.LOINC, codes.LOINC_BODY_WEIGHT, "Body weight")),
                subject=self.subject(),
                effectiveDateTime=b.day(self.case.review_date),
                valueQuantity=b.kg(p.body_mass_kg),
            ))

    def condition(self) -> None:
        c = self.case.condition
        coding = [b.coding(codes.CS_CONDITION_KIND, c.kind, codes.KIND_DISPLAY[c.kind])]
        if c.kind in codes.SNOMED_BY_KIND:
            code, display = codes.SNOMED_BY_KIND[c.kind]
            coding.append(b.coding(codes.SNOMED, code, display))
        side_code, side_display = codes.LATERALITY[c.side]
        sites = [b.concept(b.coding(codes.SNOMED, side_code, side_display))]
        if c.muscle is not None:
            sites.append(b.concept(b.coding(codes.CS_MUSCLE, c.muscle, c.muscle)))
        extensions = [b.ext_code(codes.EXT_IRRITABILITY, c.irritability)]
        if c.management is not None:
            extensions.append(b.ext_code(codes.EXT_MANAGEMENT, c.management))
        if c.injury_date is not None:
            extensions.append(b.ext_date(codes.EXT_INJURY_DATE, c.injury_date))
        condition_id = self.rid("condition")
        self.add(Condition(
            id=condition_id,
            extension=extensions,
            clinicalStatus=b.concept(b.coding(codes.CONDITION_CLINICAL, "active")),
            code=b.concept(*coding, text=codes.KIND_DISPLAY[c.kind]),
            bodySite=sites,
            subject=self.subject(),
            onsetDateTime=b.day(c.onset_date),
        ))
        if c.surgery_date is not None:
            self.add(Procedure(
                id=self.rid("surgery"),
                status="completed",
                code=b.concept(b.coding(codes.CS_PROCEDURE, codes.PROC_RUPTURE_REPAIR,
                                        "Achilles tendon rupture repair")),
                subject=self.subject(),
                performedDateTime=b.day(c.surgery_date),
                reasonReference=[b.ref(condition_id)],
            ))

    def red_flags(self) -> None:
        for flag in self.case.red_flags:
            self.add(Flag(
                id=self.rid(f"red-flag/{flag}"),
                status="active",
                code=b.concept(b.coding(codes.CS_RED_FLAG, flag, flag.replace("_", " "))),
                subject=self.subject(),
            ))

    def program(self) -> None:
        activities = []
        for track in TRACKS:
            rx: Prescription | None = self.case.program.on(track)
            if rx is None:
                continue
            activities.append(CarePlanActivity(detail=CarePlanActivityDetail(
                extension=[b.dose_extension(rx.sets, rx.reps, rx.load_kg)],
                code=b.concept(b.coding(codes.CS_EXERCISE, rx.exercise)),
                status="in-progress",
            )))
        self.add(CarePlan(
            id=self.rid("program"),
            status="active",
            intent="plan",
            category=[b.concept(b.coding(codes.CS_CAREPLAN, codes.CAREPLAN_PROGRAM,
                                         "Calf rehabilitation program"))],
            subject=self.subject(),
            activity=activities,
        ))

    def pain(self, role: str, context: str, score: int, when: date,
             part_of: str | None = None) -> Observation:
        return Observation(
            id=self.rid(role),
            extension=[b.ext_code(codes.EXT_PAIN_CONTEXT, context)],
            status="final",
            partOf=[b.ref(part_of)] if part_of else None,
            code=b.concept(b.coding(codes.LOINC, codes.LOINC_PAIN_SEVERITY, PAIN_DISPLAY)),
            subject=self.subject(),
            effectiveDateTime=b.day(when),
            valueInteger=score,
        )

    def session(self, n: int, s: Session) -> None:
        sid = self.rid(f"session/{n}")
        self.add(Procedure(
            id=sid,
            status="completed",
            code=b.concept(b.coding(codes.CS_PROCEDURE, codes.PROC_SESSION,
                                    "Calf training session")),
            subject=self.subject(),
            performedDateTime=b.day(s.date),
        ))
        for k, ex in enumerate(s.exercises):
            self.performed(f"session/{n}/exercise/{k}", sid, s.date, ex)
        if s.pain_next_morning is not None:
            self.add(self.pain(f"session/{n}/pain-next-morning", "next-morning",
                               s.pain_next_morning, s.date + timedelta(days=1), part_of=sid))
        if s.morning_stiffness_min is not None:
            self.add(Observation(
                id=self.rid(f"session/{n}/morning-stiffness"),
                status="final",
                partOf=[b.ref(sid)],
                code=b.concept(b.coding(codes.CS_OBSERVATION, codes.OBS_MORNING_STIFFNESS,
                                        "Morning stiffness duration")),
                subject=self.subject(),
                effectiveDateTime=b.day(s.date + timedelta(days=1)),
                valueQuantity=b.minutes(s.morning_stiffness_min),
            ))

    def performed(self, role: str, session_id: str, when: date, ex: PerformedExercise) -> None:
        pain = self.pain(f"{role}/pain", "during-loading", ex.pain_during, when, part_of=session_id)
        components = [ObservationComponent(
            code=b.concept(b.coding(codes.CS_OBSERVATION, codes.OBS_EXTERNAL_LOAD,
                                    "External load")),
            valueQuantity=b.kg(ex.load_kg),
        )]
        components += [ObservationComponent(
            code=b.concept(b.coding(codes.CS_OBSERVATION, codes.OBS_SET_REPS,
                                    "Repetitions (or seconds) completed in one set")),
            valueInteger=reps,
        ) for reps in ex.sets_completed]
        self.add(Observation(
            id=self.rid(role),
            status="final",
            category=[b.concept(b.coding(codes.OBS_CATEGORY, "activity"))],
            partOf=[b.ref(session_id)],
            code=b.concept(b.coding(codes.CS_EXERCISE, ex.exercise)),
            subject=self.subject(),
            effectiveDateTime=b.day(when),
            component=components,
            hasMember=[b.ref(pain.id or "")],
        ))
        self.add(pain)

    def assessment(self, n: int, a: Assessment) -> None:
        role = f"assessment/{n}"
        members: list[Observation] = []
        if a.heel_raise_test is not None:
            hrt = a.heel_raise_test
            parts = [ObservationComponent(
                code=b.concept(b.coding(codes.CS_OBSERVATION, codes.OBS_HEEL_RAISE_INVOLVED,
                                        "Heel raises, involved side")),
                valueInteger=hrt.involved,
            )]
            if hrt.uninvolved is not None:
                parts.append(ObservationComponent(
                    code=b.concept(b.coding(codes.CS_OBSERVATION, codes.OBS_HEEL_RAISE_UNINVOLVED,
                                            "Heel raises, uninvolved side")),
                    valueInteger=hrt.uninvolved,
                ))
            members.append(Observation(
                id=self.rid(f"{role}/heel-raise-test"),
                status="final",
                category=[b.concept(b.coding(codes.OBS_CATEGORY, "exam"))],
                code=b.concept(b.coding(codes.CS_OBSERVATION, codes.OBS_HEEL_RAISE,
                                        "Single-leg heel-raise test to fatigue")),
                subject=self.subject(),
                effectiveDateTime=b.day(a.date),
                component=parts,
            ))
        if a.pain_at_rest is not None:
            members.append(self.pain(f"{role}/pain-at-rest", "at-rest", a.pain_at_rest, a.date))
        if a.visa_a is not None:
            members.append(Observation(
                id=self.rid(f"{role}/visa-a"),
                status="final",
                category=[b.concept(b.coding(codes.OBS_CATEGORY, "survey"))],
                code=b.concept(b.coding(codes.CS_OBSERVATION, codes.OBS_VISA_A,
                                        "VISA-A score (0-100)")),
                subject=self.subject(),
                effectiveDateTime=b.day(a.date),
                valueInteger=a.visa_a,
            ))
        if a.hop_pain is not None:
            members.append(self.pain(f"{role}/hop-pain", "during-hopping", a.hop_pain, a.date))
        self.add(Observation(
            id=self.rid(role),
            status="final",
            category=[b.concept(b.coding(codes.OBS_CATEGORY, "exam"))],
            code=b.concept(b.coding(codes.CS_OBSERVATION, codes.OBS_ASSESSMENT,
                                    "Calf rehabilitation assessment")),
            subject=self.subject(),
            effectiveDateTime=b.day(a.date),
            hasMember=[b.ref(m.id or "") for m in members] or None,
        ))
        for m in members:
            self.add(m)


def case_to_bundle(case: Case) -> Bundle:
    """The case as a FHIR collection Bundle (see docs/integration.md)."""
    out = _Builder(case)
    out.encounter()
    out.patient()
    out.condition()
    out.red_flags()
    out.program()
    for n, s in enumerate(case.sessions):
        out.session(n, s)
    for n, a in enumerate(case.assessments):
        out.assessment(n, a)
    return Bundle(
        type="collection",
        identifier=b.identifier(codes.CS_CASE_ID, case.case_id),
        entry=out.entries,
    )
