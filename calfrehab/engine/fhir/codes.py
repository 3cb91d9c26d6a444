"""Code systems, codes and extension URLs of calfrehab's FHIR mapping.

Standard codes are used where a real one fits and has been checked against
a published source (docs/integration.md cites each):

- LOINC 29463-7 Body weight (FHIR body-weight profile, US Core);
- LOINC 72514-3 Pain severity - 0-10 verbal numeric rating [Score] - Reported;
- SNOMED CT 11654001 Achilles tendinitis (disorder) and 202882003 Plantar
  fasciitis (disorder) (SNOMED CT disorder value sets of published IGs);
- SNOMED CT laterality qualifiers 7771000 Left, 24028007 Right, 51440002
  Right and left (FHIR's bodystructure-laterality value set).

Everything the standards do not code (the exercises, the dose, which pain
a score is, the heel-raise test, VISA-A, irritability, the rupture's
management) uses calfrehab's own code systems under :data:`BASE`. That
base sits in the ``.example`` domain, reserved by RFC 2606: the URLs are
identifiers only and nothing ever fetches them.
"""

from __future__ import annotations

from typing import Final

BASE: Final = "https://calfrehab.example/fhir"

LOINC: Final = "http://loinc.org"
SNOMED: Final = "http://snomed.info/sct"
UCUM: Final = "http://unitsofmeasure.org"
OBS_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PROVENANCE_AGENT: Final = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"

# calfrehab's own code systems.
CS_CASE_ID: Final = f"{BASE}/NamingSystem/case-id"
CS_DECISION_ID: Final = f"{BASE}/NamingSystem/decision-id"
CS_RULEBASE_SHA256: Final = f"{BASE}/NamingSystem/rulebase-sha256"
CS_CONDITION_KIND: Final = f"{BASE}/CodeSystem/condition-kind"
CS_GOAL: Final = f"{BASE}/CodeSystem/goal"
CS_RED_FLAG: Final = f"{BASE}/CodeSystem/red-flag"
CS_EXERCISE: Final = f"{BASE}/CodeSystem/exercise"
CS_OBSERVATION: Final = f"{BASE}/CodeSystem/observation"
CS_MUSCLE: Final = f"{BASE}/CodeSystem/muscle"
CS_PROCEDURE: Final = f"{BASE}/CodeSystem/procedure"
CS_CAREPLAN: Final = f"{BASE}/CodeSystem/careplan-category"
CS_TRACK: Final = f"{BASE}/CodeSystem/track"
CS_TRACK_DECISION: Final = f"{BASE}/CodeSystem/track-decision"
CS_RULE: Final = f"{BASE}/CodeSystem/rule"
CS_ISSUE: Final = f"{BASE}/CodeSystem/detected-issue"
CS_OVERRIDE_REASON: Final = f"{BASE}/CodeSystem/override-reason"
# meta.tag on the resources of an exported decision, so that importing an
# exported Bundle reads the case and passes over the decision.
CS_OUTPUT_TAG: Final = f"{BASE}/CodeSystem/output"

# calfrehab's extensions.
EXT_IRRITABILITY: Final = f"{BASE}/StructureDefinition/irritability"
EXT_MANAGEMENT: Final = f"{BASE}/StructureDefinition/rupture-management"
EXT_INJURY_DATE: Final = f"{BASE}/StructureDefinition/injury-date"
EXT_PAIN_CONTEXT: Final = f"{BASE}/StructureDefinition/pain-context"
EXT_DOSE: Final = f"{BASE}/StructureDefinition/exercise-dose"

# Standard codes (checked; see the module docstring).
LOINC_BODY_WEIGHT: Final = "29463-7"
LOINC_PAIN_SEVERITY: Final = "72514-3"

SNOMED_BY_KIND: Final[dict[str, tuple[str, str]]] = {
    # Both Achilles tendinopathies share SNOMED CT's "Achilles tendinitis";
    # the calfrehab condition-kind coding beside it says which one.
    "achilles_midportion": ("11654001", "Achilles tendinitis (disorder)"),
    "achilles_insertional": ("11654001", "Achilles tendinitis (disorder)"),
    "plantar_fasciopathy": ("202882003", "Plantar fasciitis (disorder)"),
}

LATERALITY: Final[dict[str, tuple[str, str]]] = {
    "left": ("7771000", "Left"),
    "right": ("24028007", "Right"),
    "both": ("51440002", "Right and left"),
}

KIND_DISPLAY: Final[dict[str, str]] = {
    "achilles_midportion": "Mid-portion Achilles tendinopathy",
    "achilles_insertional": "Insertional Achilles tendinopathy",
    "plantar_fasciopathy": "Plantar heel pain (plantar fasciopathy)",
    "achilles_rupture": "Achilles tendon rupture",
    "calf_strain": "Calf muscle strain",
    "none": "No injury: calf strength and resilience training",
}

# calfrehab observation codes.
OBS_EXTERNAL_LOAD: Final = "external-load"
OBS_SET_REPS: Final = "set-repetitions"
OBS_MORNING_STIFFNESS: Final = "morning-stiffness-duration"
OBS_ASSESSMENT: Final = "assessment"
OBS_HEEL_RAISE: Final = "heel-raise-test"
OBS_HEEL_RAISE_INVOLVED: Final = "heel-raise-involved"
OBS_HEEL_RAISE_UNINVOLVED: Final = "heel-raise-uninvolved"
OBS_VISA_A: Final = "visa-a"

PROC_SESSION: Final = "training-session"
PROC_RUPTURE_REPAIR: Final = "achilles-rupture-repair"
CAREPLAN_PROGRAM: Final = "calf-rehab-program"
ISSUE_REFERRAL: Final = "referral-recommended"

PAIN_CONTEXTS: Final = ("during-loading", "next-morning", "at-rest", "during-hopping")

OVERRIDE_REASONS: Final[tuple[tuple[str, str], ...]] = (
    ("clinical-judgement", "Clinical judgement differs"),
    ("patient-preference", "Patient preference"),
    ("record-incomplete", "Record incomplete or out of date"),
    ("already-changed", "Program already changed today"),
)
