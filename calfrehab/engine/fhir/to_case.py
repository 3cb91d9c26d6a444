"""A FHIR Bundle read back into a case file (the inverse of
:mod:`calfrehab.engine.fhir.from_case`).

Each resource is first validated by fhir.resources' R4B model of its type.
Then the resources that carry calfrehab's codes (or the standard codes of
the mapping table) are read; everything they hold must map to a case-file
field. What cannot be mapped is an error that names the resource and the
element, never silently dropped: an ignored pain score could let a flare go
unseen. Resources that carry none of the mapping's codes (a blood pressure
in a chart's Observation search, say) are errors too, unless the caller
asks to skip them (``ignore_unrelated``, which the CDS Hooks service uses,
since a record system's prefetch holds the whole chart).

The case document built here is then validated like any case file, and
each of its errors is reported against the resource it came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any, Final

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.reference import Reference
from pydantic import ValidationError

from calfrehab.engine.errors import CaseValidationError
from calfrehab.engine.fhir import FhirMappingError, MappingProblem, codes
from calfrehab.engine.fhir.chartcodes import chart_codes
from calfrehab.engine.fhir.from_case import age_on
from calfrehab.engine.vocabulary import EXERCISES

# Elements that say nothing a case file records (who wrote it, when it was
# stored, the human-readable narrative): read past, never an error.
_BENIGN: Final = frozenset({
    "resourceType", "id", "meta", "implicitRules", "language", "text", "identifier",
    "subject", "patient", "encounter", "issued", "performer", "recorder", "asserter",
    "recordedDate", "verificationStatus", "clinicalStatus", "category", "intent",
    "title", "created", "author", "expressedBy", "active", "name", "telecom",
    "address", "managingOrganization", "generalPractitioner", "statusDate",
})

# What each mapped resource type may carry beyond the benign elements.
_MAPPED: Final[dict[str, frozenset[str]]] = {
    "Patient": frozenset({"gender", "birthDate"}),
    "Encounter": frozenset({"status", "class", "period"}),
    "Goal": frozenset({"lifecycleStatus", "description"}),
    "Condition": frozenset({"extension", "code", "bodySite", "onsetDateTime", "onsetPeriod"}),
    "Procedure": frozenset({"status", "code", "performedDateTime", "performedPeriod",
                            "reasonReference"}),
    "Flag": frozenset({"status", "code"}),
    "CarePlan": frozenset({"status", "activity"}),
    "Observation": frozenset({
        "extension", "status", "code", "partOf", "effectiveDateTime", "effectivePeriod",
        "effectiveInstant", "valueInteger",
        "valueQuantity", "component", "hasMember",
    }),
}

_DECISION_TYPES: Final = frozenset({
    "GuidanceResponse", "RequestGroup", "DetectedIssue", "Provenance", "ServiceRequest",
})
_USABLE_OBSERVATION: Final = frozenset({"final", "amended", "corrected"})
# Results that never happened or were withdrawn: skipped, never an error.
_VOID: Final = frozenset({"cancelled", "entered-in-error", "not-done"})
# Medication records that say the drug was not taken.
_NOT_TAKEN: Final = frozenset({"entered-in-error", "not-taken", "cancelled", "draft"})
_CHART_TYPES: Final = frozenset({"MedicationStatement", "MedicationRequest"})
_LB_TO_KG: Final = 0.45359237


@dataclass
class _Item:
    index: int
    rtype: str
    raw: dict[str, Any]
    model: Any
    label: str
    keys: tuple[str, ...]
    used: bool = False


@dataclass
class _Reader:
    source: str
    ignore_unrelated: bool
    problems: list[MappingProblem] = field(default_factory=list)
    items: list[_Item] = field(default_factory=list)
    by_key: dict[str, _Item] = field(default_factory=dict)
    # case-file path -> (resource, element) it was read from
    origin: dict[str, tuple[str, str]] = field(default_factory=dict)

    def problem(self, item: _Item | None, element: str, message: str) -> None:
        self.problems.append(MappingProblem(item.label if item else "Bundle", element, message))

    # ---------------------------------------------------------- loading

    def load(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, Mapping) or data.get("resourceType") != "Bundle":
            got = data.get("resourceType") if isinstance(data, Mapping) else type(data).__name__
            self.problems.append(MappingProblem(
                "(document)", "resourceType", f"expected a FHIR Bundle, got {got!r}"))
            return {}
        entries = data.get("entry", [])
        if not isinstance(entries, list):
            self.problem(None, "Bundle.entry", "must be a list of entries")
            return dict(data)
        for i, entry in enumerate(entries):
            self._load_entry(i, entry)
        return dict(data)

    def _load_entry(self, i: int, entry: Any) -> None:
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping):
            self.problems.append(MappingProblem(f"entry[{i}]", "Bundle.entry.resource",
                                                "each entry must hold a resource object"))
            return
        rtype = resource.get("resourceType")
        rid = resource.get("id")
        label = f"{rtype}/{rid}" if isinstance(rid, str) else f"entry[{i}] ({rtype})"
        if self.ignore_unrelated and _kind_of(resource) is None:
            # The rest of a chart (a heart rate, a cancelled order) is not
            # read, so it is not validated either: its flaws are not ours.
            return
        try:
            model_class = get_fhir_model_class(str(rtype))
        except (KeyError, ValueError):
            self.problems.append(MappingProblem(
                f"entry[{i}]", "resourceType", f"{rtype!r} is not a FHIR R4 resource type"))
            return
        try:
            model = model_class.model_validate(dict(resource))
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                self.problems.append(MappingProblem(
                    label, f"{rtype}.{loc}" if loc else str(rtype),
                    f"invalid FHIR: {err['msg']}"))
            return
        keys = [f"{rtype}/{rid}"] if isinstance(rid, str) else []
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str):
            keys.append(full_url)
        item = _Item(i, str(rtype), dict(resource), model, label, tuple(keys))
        self.items.append(item)
        for key in keys:
            self.by_key.setdefault(key, item)

    def resolve(self, owner: _Item, ref: Reference | None, element: str) -> _Item | None:
        target = ref.reference if ref is not None else None
        if not target:
            self.problem(owner, element, "reference without a target")
            return None
        if "/_history/" in target:  # a versioned reference names the resource
            target = target.split("/_history/")[0]
        hit = self.by_key.get(target)
        if hit is None and "/" in target:
            # An absolute URL ".../Observation/123" resolves by its tail.
            hit = self.by_key.get("/".join(target.rsplit("/", 2)[-2:]))
        if hit is None:
            self.problem(owner, element, f"refers to {target}, which is not in the Bundle")
        return hit

    # ------------------------------------------------------ checking

    def check_elements(self, item: _Item, extensions: Iterable[str] = ()) -> None:
        """Every element present must be one the mapping reads (or benign).
        In a chart (``ignore_unrelated``: a CDS Hooks prefetch) a resource
        coded in standard codes only (the Patient, an ICD-10-CM Condition, a
        CPT Procedure, a LOINC weight, a medication) is the record's, not
        calfrehab's, and carries what a record carries (notes, US Core
        extensions): only a modifier extension, which changes what it
        means, is an error there."""
        allowed = _MAPPED.get(item.rtype, frozenset())
        if self.ignore_unrelated and not _own(item.raw):
            if "modifierExtension" in item.raw:
                self.problem(item, f"{item.rtype}.modifierExtension",
                             "a modifier extension changes the meaning and cannot be mapped")
            return
        for key in item.raw:
            name = key.removeprefix("_")
            if name == "modifierExtension":
                self.problem(item, f"{item.rtype}.modifierExtension",
                             "a modifier extension changes the meaning and cannot be mapped")
            elif name not in allowed and name not in _BENIGN:
                self.problem(item, f"{item.rtype}.{name}",
                             "this element has no place in a case file and cannot be mapped")
        known = set(extensions)
        for ext in getattr(item.model, "extension", None) or []:
            if ext.url not in known:
                self.problem(item, f"{item.rtype}.extension",
                             f"extension {ext.url} cannot be mapped")

    def note(self, path: str, item: _Item, element: str) -> None:
        self.origin[path] = (item.label, element)


# ------------------------------------------------------------- helpers


def _codes(concept: CodeableConcept | None) -> list[tuple[str, str]]:
    if concept is None:
        return []
    return [(c.system or "", c.code or "") for c in concept.coding or []]


def _code_in(concept: CodeableConcept | None, system: str) -> str | None:
    for sys, code in _codes(concept):
        if sys == system:
            return code
    return None


def _has(concept: CodeableConcept | None, system: str, code: str) -> bool:
    return (system, code) in _codes(concept)


def _extension(model: Any, url: str) -> Extension | None:
    for ext in getattr(model, "extension", None) or []:
        if ext.url == url:
            return ext  # type: ignore[no-any-return]
    return None


# The clinic's time zone while a chart is read: an instant with an offset
# (a pain score at 02:00Z) belongs to the clinic's calendar day, the day the
# review date counts in (clinical-basis §8). None: the instant's own date.
_ZONE: ContextVar[tzinfo | None] = ContextVar("calfrehab_fhir_zone", default=None)


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        zone = _ZONE.get()
        if zone is not None and value.tzinfo is not None:
            return value.astimezone(zone).date()
        return value.date()
    if isinstance(value, date):
        return value
    return None


def _number(value: Decimal | float | int | None) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and "." not in str(value) \
            else float(value)
    return value


def _kg(q: Quantity | None) -> float | int | None:
    """A mass in kilograms: any UCUM mass unit of the code table (kg, g,
    [lb_av], [oz_av]), or the unit text lb/lbs a record may send."""
    if q is None or q.value is None:
        return None
    unit = q.code or q.unit
    value = _number(q.value)
    if value is None:
        return None
    if unit == "kg":
        return value
    if unit in ("lb", "lbs"):
        unit = "[lb_av]"
    kg = chart_codes().kilograms(float(value), unit)
    return None if kg is None else round(kg, 1)


def _rcodings(concept: Any) -> list[tuple[str, str]]:
    """(system, code) of a CodeableConcept as JSON (before any validation)."""
    if not isinstance(concept, Mapping):
        return []
    return [(str(c.get("system") or ""), str(c.get("code") or ""))
            for c in concept.get("coding") or [] if isinstance(c, Mapping)]


def _rtexts(concept: Any) -> list[str]:
    if not isinstance(concept, Mapping):
        return []
    texts = [str(c.get("display")) for c in concept.get("coding") or []
             if isinstance(c, Mapping) and c.get("display")]
    return texts + ([str(concept["text"])] if concept.get("text") else [])


def _own(raw: Mapping[str, Any]) -> bool:
    """Whether a resource carries calfrehab's own codes or extensions (so it
    is calfrehab's record, mapped completely), not only standard codes."""
    text = str(raw)
    return codes.BASE in text


def _medication_concepts(raw: Mapping[str, Any]) -> list[Any]:
    concept = raw.get("medicationCodeableConcept")
    found = [concept] if concept is not None else []
    ref = raw.get("medicationReference")
    target = ref.get("reference") if isinstance(ref, Mapping) else None
    if isinstance(target, str) and target.startswith("#"):
        for contained in raw.get("contained") or []:
            if isinstance(contained, Mapping) and contained.get("id") == target[1:]:
                found.append(contained.get("code"))
    return found


def _kind_of(raw: Mapping[str, Any]) -> str | None:
    """What a resource (as JSON) is to the mapping, or None if it is not
    part of it. Read before validation, so a chart's other resources are
    never validated."""
    t = raw.get("resourceType")
    table = chart_codes()
    if t == "Patient":
        return "patient"
    if t in _DECISION_TYPES:
        meta = raw.get("meta")
        tags = meta.get("tag") if isinstance(meta, Mapping) else None
        if any(isinstance(g, Mapping) and g.get("system") == codes.CS_OUTPUT_TAG
               for g in tags or []):
            return "output"
        return None
    if t == "Encounter":
        ids = raw.get("identifier") or []
        return "review" if any(isinstance(i, Mapping) and i.get("system") == codes.CS_CASE_ID
                               for i in ids) else None
    if t == "Goal":
        return "goal" if any(s == codes.CS_GOAL for s, _ in _rcodings(raw.get("description"))) \
            else None
    if t == "Condition":
        found = _rcodings(raw.get("code"))
        if any(s == codes.CS_CONDITION_KIND for s, _ in found):
            return "condition"
        return "condition" if table.condition(found) is not None else None
    if t == "Procedure":
        found = _rcodings(raw.get("code"))
        own = {c for s, c in found if s == codes.CS_PROCEDURE}
        if codes.PROC_SESSION in own:
            return "session"
        if codes.PROC_RUPTURE_REPAIR in own or table.is_achilles_repair(found):
            return "surgery"
        return None
    if t == "Flag":
        return "red_flag" if any(s == codes.CS_RED_FLAG for s, _ in _rcodings(raw.get("code"))) \
            else None
    if t == "CarePlan":
        cats = [c for cat in raw.get("category") or [] for c in _rcodings(cat)]
        return "program" if (codes.CS_CAREPLAN, codes.CAREPLAN_PROGRAM) in cats else None
    if t in _CHART_TYPES:
        concepts = _medication_concepts(raw)
        found = [c for concept in concepts for c in _rcodings(concept)]
        texts = [x for concept in concepts for x in _rtexts(concept)]
        return "medication" if table.is_fluoroquinolone(found, texts) else None
    if t == "Observation":
        found = _rcodings(raw.get("code"))
        if table.is_body_weight(found):
            return "weight"
        if table.is_pain_score(found):
            return "pain"
        if any(s == codes.CS_EXERCISE for s, _ in found):
            return "exercise"
        obs = next((c for s, c in found if s == codes.CS_OBSERVATION), "")
        return {
            codes.OBS_MORNING_STIFFNESS: "stiffness",
            codes.OBS_ASSESSMENT: "assessment",
            codes.OBS_HEEL_RAISE: "heel_raise",
            codes.OBS_VISA_A: "visa_a",
        }.get(obs)
    return None


def _effective(model: Any) -> Any:
    """When an Observation applies: effectiveDateTime, effectiveInstant, or
    the start of effectivePeriod (its end when it has no start)."""
    for name in ("effectiveDateTime", "effectiveInstant", "performedDateTime"):
        value = getattr(model, name, None)
        if value is not None:
            return value
    for name in ("effectivePeriod", "performedPeriod"):
        period = getattr(model, name, None)
        if period is not None:
            return period.start or period.end
    return None


def _classify(item: _Item) -> str | None:
    """What a resource is to the mapping, or None if it is not part of it."""
    kind = _kind_of(item.raw)
    return None if kind == "output" else kind


def _entered_in_error(item: _Item) -> bool:
    m = item.model
    status = getattr(m, "status", None)
    if status == "entered-in-error":
        return True
    if item.rtype == "Condition":
        return "entered-in-error" in [c for _, c in _codes(m.verificationStatus)]
    return False


def _is_decision_output(item: _Item) -> bool:
    """calfrehab's own decision resources (``fhir export``), tagged so."""
    if item.rtype not in _DECISION_TYPES:
        return False
    meta = item.model.meta
    return any(t.system == codes.CS_OUTPUT_TAG for t in (meta.tag if meta else None) or [])


# ------------------------------------------------------------- the mapping


class _Mapper:
    def __init__(self, reader: _Reader, *, partial: bool = False,
                 prefer_kind: str | None = None) -> None:
        # partial: a chart's clinical context only (the training record is
        # calfrehab's own, merged later): no CarePlan or Condition required.
        self.partial = partial
        self.prefer_kind = prefer_kind
        self.r = reader
        self.kinds: dict[str, list[_Item]] = {}
        for item in reader.items:
            if _entered_in_error(item) or _is_decision_output(item) \
                    or getattr(item.model, "status", None) in _VOID:
                item.used = True
                continue
            kind = _classify(item)
            if kind is None:
                item.used = True
                if not reader.ignore_unrelated:
                    reader.problem(item, item.rtype, "carries none of the codes of calfrehab's "
                                   "mapping, so it is not part of a case (docs/integration.md)")
                continue
            self.kinds.setdefault(kind, []).append(item)

    def all(self, kind: str) -> list[_Item]:
        return self.kinds.get(kind, [])

    def one(self, kind: str, what: str, required: bool) -> _Item | None:
        found = self.all(kind)
        if len(found) > 1:
            for extra in found[1:]:
                self.r.problem(extra, extra.rtype,
                               f"a case has one {what}; {found[0].label} is another")
        if not found and required:
            self.r.problem(None, "Bundle.entry", f"no {what} in the Bundle")
        if found:
            found[0].used = True
            return found[0]
        return None

    def date_of(self, item: _Item, value: Any, element: str) -> date | None:
        d = _as_date(value)
        if d is None:
            self.r.problem(item, element, f"needs a full date (YYYY-MM-DD), got {value!r}")
        return d

    def integer(self, item: _Item, element: str) -> int | None:
        m = item.model
        if m.valueInteger is not None:
            return int(m.valueInteger)
        q = m.valueQuantity
        if q is not None and q.value is not None and q.value == q.value.to_integral_value():
            return int(q.value)
        self.r.problem(item, f"{item.rtype}.value[x]", "needs a whole number (valueInteger)")
        return None

    def usable(self, item: _Item) -> bool:
        status = getattr(item.model, "status", None)
        if item.rtype == "Observation" and status not in _USABLE_OBSERVATION:
            self.r.problem(item, "Observation.status",
                           f"{status!r} is not a result to decide on (final, amended, corrected)")
            return False
        return True

    # -------------------------------------------------------------- rows

    def build(self, case_id: str | None, review: date | None) -> dict[str, Any]:
        r = self.r
        doc: dict[str, Any] = {"schema_version": 1}
        encounter = self.one("review", "review Encounter", required=False)
        if encounter is not None:
            r.check_elements(encounter)
            if case_id is None:
                case_id = next(i.value for i in encounter.model.identifier
                               if i.system == codes.CS_CASE_ID)
                r.note("case_id", encounter, "Encounter.identifier")
            start = encounter.model.period.start if encounter.model.period else None
            if review is None:
                review = self.date_of(encounter, start, "Encounter.period.start")
                r.note("review_date", encounter, "Encounter.period.start")
        if case_id is None:
            r.problem(None, "Encounter.identifier",
                      f"no case id: a review Encounter with an identifier of {codes.CS_CASE_ID}")
        if review is None:
            r.problem(None, "Encounter.period.start", "no review date: a review Encounter's start")
        doc["case_id"] = case_id
        doc["review_date"] = review.isoformat() if review else None
        doc["patient"] = self.patient(review)
        doc["condition"] = self.condition()
        surgery = self.surgery()
        if surgery is not None:
            doc["condition"]["surgery_date"] = surgery
        doc["red_flags"] = self.red_flags(review)
        doc["program"] = self.program()
        doc["sessions"] = self.sessions()
        doc["assessments"] = self.assessments()
        for item in r.items:
            if not item.used:
                r.problem(item, item.rtype, "is not linked to the case's session or assessment "
                          "it belongs to (partOf / hasMember), so it cannot be placed")
        return doc

    def patient(self, review: date | None) -> dict[str, Any]:
        r = self.r
        out: dict[str, Any] = {}
        item = self.one("patient", "Patient", required=True)
        if item is not None:
            r.check_elements(item)
            birth = item.model.birthDate
            if isinstance(birth, date) and review is not None:
                out["age_years"] = age_on(birth, review)
                r.note("patient.age_years", item, "Patient.birthDate")
            elif birth is None:
                # A chart laid over calfrehab's record (partial) may leave the
                # age to the record; a case read from the chart alone may not.
                if not self.partial:
                    r.problem(item, "Patient.birthDate", "missing: the age on the review "
                              "date is counted from it")
            elif not isinstance(birth, date) and self.partial:
                pass  # a year or month only: the record's age stands
            elif not isinstance(birth, date):
                r.problem(item, "Patient.birthDate",
                          f"needs a full date to count the age, got {birth!r}")
            if item.model.gender is not None:
                out["sex"] = item.model.gender
                r.note("patient.sex", item, "Patient.gender")
        goal = self.one("goal", "calfrehab Goal", required=False)
        if goal is not None:
            r.check_elements(goal)
            out["goal"] = _code_in(goal.model.description, codes.CS_GOAL)
            r.note("patient.goal", goal, "Goal.description")
        weights = []
        for w in self.all("weight"):
            w.used = True
            r.check_elements(w)
            when = _as_date(_effective(w.model))
            # A weight not final (preliminary, cancelled) is passed over:
            # the latest final one on or before the review is the weight.
            final = w.model.status in _USABLE_OBSERVATION
            if final and (review is None or when is None or when <= review):
                weights.append((when or date.min, w))
        if weights:
            _, w = max(weights, key=lambda pair: pair[0])
            value = _kg(w.model.valueQuantity)
            if value is None:
                r.problem(w, "Observation.valueQuantity", "needs a weight in a UCUM mass unit "
                          f"({', '.join(chart_codes().mass_units_kg)})")
            out["body_mass_kg"] = value
            r.note("patient.body_mass_kg", w, "Observation.valueQuantity")
        return out

    def _reading(self, item: _Item) -> tuple[list[str], list[str]]:
        """(the kinds, the sides) one Condition says."""
        m = item.model
        own = _code_in(m.code, codes.CS_CONDITION_KIND)
        said = chart_codes().condition(_codes(m.code))
        kinds = [own] if own is not None else (said[0] if said else [])
        sides = [side] if said and (side := said[1]) else []
        for n, site in enumerate(m.bodySite or []):
            side = chart_codes().side(_codes(site))
            muscle = _code_in(site, codes.CS_MUSCLE)
            if side is not None:
                sides.append(side)
            elif muscle is None and _own(item.raw):
                self.r.problem(item, f"Condition.bodySite[{n}]", "neither a SNOMED CT laterality "
                               f"(7771000, 24028007, 51440002) nor a {codes.CS_MUSCLE} muscle")
        return kinds, sides

    def condition(self) -> dict[str, Any]:
        r = self.r
        out: dict[str, Any] = {}
        found = self.all("condition")
        for item in found:
            item.used = True
        # Only active Conditions are decided on (a resolved one is history).
        active = [i for i in found
                  if not (_codes(i.model.clinicalStatus))
                  or (codes.CONDITION_CLINICAL, "active") in _codes(i.model.clinicalStatus)
                  or (codes.CONDITION_CLINICAL, "recurrence") in _codes(i.model.clinicalStatus)
                  or (codes.CONDITION_CLINICAL, "relapse") in _codes(i.model.clinicalStatus)]
        readings = [(i, *self._reading(i)) for i in active]
        if self.prefer_kind is not None:
            readings = [x for x in readings if self.prefer_kind in x[1]]
        if not readings:
            if not self.partial:
                r.problem(None, "Bundle.entry", "no active Condition with a calf condition kind "
                          "in the Bundle")
            return out
        kinds = set(readings[0][1])
        for _, more, _ in readings[1:]:
            kinds &= set(more)
        if self.prefer_kind is not None:
            kinds = {self.prefer_kind}
        labels = ", ".join(x[0].label for x in readings)
        if len(kinds) != 1:
            said = sorted({k for x in readings for k in x[1]})
            r.problem(readings[0][0], "Condition.code",
                      f"the chart's active calf condition(s) ({labels}) fit "
                      f"{' or '.join(said) or 'no one kind'}: calfrehab's own record (or a "
                      f"{codes.CS_CONDITION_KIND} coding) must say which is rehabilitated")
            return out
        item = next(x[0] for x in readings if _code_in(x[0].model.code, codes.CS_CONDITION_KIND)
                    ) if any(_code_in(x[0].model.code, codes.CS_CONDITION_KIND)
                             for x in readings) else readings[0][0]
        m = item.model
        for other, _, _ in readings:
            r.check_elements(other, (codes.EXT_IRRITABILITY, codes.EXT_MANAGEMENT,
                                     codes.EXT_INJURY_DATE))
        out["kind"] = kinds.pop()
        r.note("condition.kind", item, "Condition.code")
        for n, site in enumerate(m.bodySite or []):
            muscle = _code_in(site, codes.CS_MUSCLE)
            if muscle is not None:
                out["muscle"] = muscle
                r.note("condition.muscle", item, f"Condition.bodySite[{n}]")
        sides = {side for x in readings for side in x[2]}
        if sides:
            # Left and right Conditions of one kind are both sides.
            out["side"] = sides.pop() if len(sides) == 1 else "both"
            r.note("condition.side", item, "Condition.bodySite")
        onsets = []
        for other, _, _ in readings:
            om = other.model
            start = om.onsetDateTime if om.onsetDateTime is not None else (
                om.onsetPeriod.start if om.onsetPeriod is not None else None)
            if start is not None:
                onset = self.date_of(other, start, "Condition.onset[x]")
                if onset is not None:
                    onsets.append((onset, other))
        if onsets:
            onset, source = min(onsets, key=lambda pair: pair[0])
            out["onset_date"] = onset.isoformat()
            r.note("condition.onset_date", source, "Condition.onset[x]")
        for url, key in ((codes.EXT_IRRITABILITY, "irritability"),
                         (codes.EXT_MANAGEMENT, "management")):
            ext = _extension(m, url)
            if ext is not None:
                out[key] = ext.valueCode
                r.note(f"condition.{key}", item, f"Condition.extension({url})")
        ext = _extension(m, codes.EXT_INJURY_DATE)
        if ext is not None:
            injury = self.date_of(item, ext.valueDate, "Condition.extension(injury-date)")
            out["injury_date"] = injury.isoformat() if injury else None
            r.note("condition.injury_date", item, "Condition.extension(injury-date)")
        return out

    def surgery(self) -> str | None:
        """The date of the Achilles repair, if the record holds one."""
        r = self.r
        out: dict[str, Any] = {}
        repairs = []
        for surgery in self.all("surgery"):
            surgery.used = True
            r.check_elements(surgery)
            when = self.date_of(surgery, _effective(surgery.model), "Procedure.performed[x]")
            if when is not None:
                repairs.append((when, surgery))
        if repairs:
            # The same repair coded twice (calfrehab's code and CPT) is one;
            # of two repairs the later counts: the gates count from it.
            when, surgery = max(repairs, key=lambda pair: pair[0])
            out["surgery_date"] = when.isoformat()
            r.note("condition.surgery_date", surgery, "Procedure.performed[x]")
        return out.get("surgery_date")

    def red_flags(self, review: date | None) -> list[str]:
        out = []
        for n, item in enumerate(self.all("red_flag")):
            item.used = True
            self.r.check_elements(item)
            if item.model.status != "active":
                continue  # an inactive flag is one that was cleared
            out.append(_code_in(item.model.code, codes.CS_RED_FLAG) or "")
            self.r.note(f"red_flags[{n}]", item, "Flag.code")
        recent = self.recent_fluoroquinolone(review)
        if recent is not None and "recent_fluoroquinolone" not in out:
            self.r.note(f"red_flags[{len(out)}]", recent, f"{recent.rtype}.medication[x]")
            out.append("recent_fluoroquinolone")
        return out

    def recent_fluoroquinolone(self, review: date | None) -> _Item | None:
        """A fluoroquinolone taken or prescribed within the lookback before
        the review (a course with no date counts: unknown is not "long
        ago"), or None."""
        window = chart_codes().fluoroquinolones.lookback_days
        for item in self.all("medication"):
            item.used = True
            m = item.model
            if m.status in _NOT_TAKEN:
                continue
            if item.rtype == "MedicationStatement":
                period = m.effectivePeriod
                when = m.effectiveDateTime or (period.end or period.start if period else None) \
                    or m.dateAsserted
            else:
                when = m.authoredOn
            day = _as_date(when)
            if day is None or review is None or (review - day).days <= window:
                return item
        return None

    def dose(self, item: _Item, ext: Extension | None, element: str) -> dict[str, Any]:
        if ext is None:
            self.r.problem(item, element, f"no dose (extension {codes.EXT_DOSE})")
            return {}
        parts = {e.url: e for e in ext.extension or []}
        out: dict[str, Any] = {}
        for unknown in set(parts) - {"sets", "reps", "load", "unit"}:
            self.r.problem(item, f"{element}.extension({unknown})", "is not part of a dose")
        if "sets" in parts:
            out["sets"] = parts["sets"].valueInteger
        if "reps" in parts:
            out["reps"] = parts["reps"].valueInteger
        if "load" in parts:
            load = _kg(parts["load"].valueQuantity)
            if load is None:
                self.r.problem(item, f"{element}.extension(load)", "needs a load in kg")
            out["load_kg"] = load
        return out

    def program(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        item = self.one("program", "calf rehabilitation CarePlan", required=not self.partial)
        if item is None:
            return out
        self.r.check_elements(item)
        for n, activity in enumerate(item.model.activity or []):
            element = f"CarePlan.activity[{n}].detail"
            detail = activity.detail
            exercise = _code_in(detail.code if detail else None, codes.CS_EXERCISE)
            if exercise not in EXERCISES:
                self.r.problem(item, f"{element}.code", f"not a calfrehab exercise: {exercise!r}")
                continue
            track = EXERCISES[exercise][0]
            if track in out:
                self.r.problem(item, element, f"a second exercise on the {track} track")
                continue
            rx = {"exercise": exercise, **self.dose(item, _extension(detail, codes.EXT_DOSE),
                                                     f"{element}.extension")}
            out[track] = rx
            self.r.note(f"program.{track}", item, element)
        return out

    def _pain_context(self, item: _Item) -> str | None:
        ext = _extension(item.model, codes.EXT_PAIN_CONTEXT)
        if ext is None:
            # A chart's pain score does not say when it was felt: "not
            # stated" counts as pain at rest (docs/integration.md).
            return "at-rest"
        if ext.valueCode not in codes.PAIN_CONTEXTS:
            self.r.problem(item, "Observation.extension", "a pain score must say when it was "
                           f"felt ({codes.EXT_PAIN_CONTEXT}: {', '.join(codes.PAIN_CONTEXTS)})")
            return None
        return str(ext.valueCode)

    def _parent(self, item: _Item) -> _Item | None:
        part_of = item.model.partOf or []
        if len(part_of) != 1:
            self.r.problem(item, "Observation.partOf", "must name its one training session")
            return None
        return self.r.resolve(item, part_of[0], "Observation.partOf")

    def sessions(self) -> list[dict[str, Any]]:
        r = self.r
        sessions = self.all("session")
        index = {id(s): n for n, s in enumerate(sessions)}
        docs: list[dict[str, Any]] = []
        for n, item in enumerate(sessions):
            item.used = True
            r.check_elements(item)
            when = self.date_of(item, item.model.performedDateTime, "Procedure.performedDateTime")
            docs.append({"date": when.isoformat() if when else None, "exercises": []})
            r.note(f"sessions[{n}]", item, "Procedure")
            r.note(f"sessions[{n}].date", item, "Procedure.performedDateTime")
        ext_urls = (codes.EXT_PAIN_CONTEXT,)
        for item in self.all("exercise"):
            item.used = True
            r.check_elements(item)
            parent = self._parent(item)
            if parent is None or id(parent) not in index or not self.usable(item):
                if parent is not None and id(parent) not in index:
                    r.problem(item, "Observation.partOf", f"{parent.label} is not a training "
                              "session Procedure")
                continue
            n = index[id(parent)]
            k = len(docs[n]["exercises"])
            path = f"sessions[{n}].exercises[{k}]"
            docs[n]["exercises"].append(self.performed(item, path))
        for kind in ("pain", "stiffness"):
            for item in self.all(kind):
                if item.used or item.model.partOf is None:
                    continue
                if kind == "pain" and self._pain_context(item) != "next-morning":
                    continue
                item.used = True
                r.check_elements(item, ext_urls)
                parent = self._parent(item)
                if parent is None or id(parent) not in index or not self.usable(item):
                    continue
                n = index[id(parent)]
                key = "pain_next_morning" if kind == "pain" else "morning_stiffness_min"
                if key in docs[n]:
                    r.problem(item, item.rtype, f"a second {key} for {parent.label}")
                    continue
                if kind == "pain":
                    docs[n][key] = self.integer(item, "Observation.valueInteger")
                else:
                    q = item.model.valueQuantity
                    minutes = _number(q.value) if q is not None and q.code == "min" else None
                    if minutes is None:
                        r.problem(item, "Observation.valueQuantity", "needs minutes (UCUM min)")
                    docs[n][key] = minutes
                r.note(f"sessions[{n}].{key}", item, "Observation.value[x]")
        return docs

    def performed(self, item: _Item, path: str) -> dict[str, Any]:
        r = self.r
        m = item.model
        out: dict[str, Any] = {"exercise": _code_in(m.code, codes.CS_EXERCISE)}
        r.note(f"{path}.exercise", item, "Observation.code")
        sets: list[Any] = []
        for n, comp in enumerate(m.component or []):
            code = _code_in(comp.code, codes.CS_OBSERVATION)
            if code == codes.OBS_SET_REPS:
                r.note(f"{path}.sets_completed[{len(sets)}]", item,
                       f"Observation.component[{n}].valueInteger")
                sets.append(comp.valueInteger)
            elif code == codes.OBS_EXTERNAL_LOAD:
                out["load_kg"] = _kg(comp.valueQuantity)
                r.note(f"{path}.load_kg", item, f"Observation.component[{n}].valueQuantity")
            else:
                r.problem(item, f"Observation.component[{n}].code",
                          "neither external-load nor set-repetitions")
        out["sets_completed"] = sets
        r.note(f"{path}.sets_completed", item, "Observation.component")
        pains = []
        for n, member in enumerate(m.hasMember or []):
            target = r.resolve(item, member, f"Observation.hasMember[{n}]")
            if target is None:
                continue
            if _classify(target) != "pain" or self._pain_context(target) != "during-loading":
                r.problem(item, f"Observation.hasMember[{n}]",
                          f"{target.label} is not a pain score during loading")
                continue
            pains.append(target)
        if len(pains) != 1:
            r.problem(item, "Observation.hasMember", "a performed exercise needs exactly one "
                      "pain score during loading (LOINC 72514-3)")
        else:
            pain = pains[0]
            pain.used = True
            r.check_elements(pain, (codes.EXT_PAIN_CONTEXT,))
            if self.usable(pain):
                out["pain_during"] = self.integer(pain, "Observation.valueInteger")
            r.note(f"{path}.pain_during", pain, "Observation.valueInteger")
        r.note(path, item, "Observation")
        return out

    def assessment_member(self, item: _Item, doc: dict[str, Any], path: str) -> None:
        r = self.r
        if _entered_in_error(item):
            return
        kind = _classify(item)
        key = {"heel_raise": "heel_raise_test", "visa_a": "visa_a"}.get(kind or "")
        if kind == "pain":
            context = self._pain_context(item)
            key = {"at-rest": "pain_at_rest", "during-hopping": "hop_pain"}.get(context or "")
        if key is None:
            r.problem(item, item.rtype, "is not an assessment measurement (heel-raise test, "
                      "pain at rest, VISA-A, pain when hopping)")
            return
        item.used = True
        r.check_elements(item, (codes.EXT_PAIN_CONTEXT,))
        if key in doc:
            r.problem(item, item.rtype, f"a second {key} in one assessment")
            return
        if not self.usable(item):
            return
        if key == "heel_raise_test":
            test: dict[str, Any] = {}
            for n, comp in enumerate(item.model.component or []):
                code = _code_in(comp.code, codes.CS_OBSERVATION)
                side = {codes.OBS_HEEL_RAISE_INVOLVED: "involved",
                        codes.OBS_HEEL_RAISE_UNINVOLVED: "uninvolved"}.get(code or "")
                if side is None:
                    r.problem(item, f"Observation.component[{n}].code",
                              "neither heel-raise-involved nor heel-raise-uninvolved")
                    continue
                test[side] = comp.valueInteger
                r.note(f"{path}.heel_raise_test.{side}", item,
                       f"Observation.component[{n}].valueInteger")
            doc[key] = test
        else:
            doc[key] = self.integer(item, "Observation.valueInteger")
        r.note(f"{path}.{key}", item, "Observation.value[x]")

    def assessments(self) -> list[dict[str, Any]]:
        r = self.r
        docs: list[dict[str, Any]] = []
        for item in self.all("assessment"):
            item.used = True
            r.check_elements(item)
            n = len(docs)
            when = self.date_of(item, _effective(item.model), "Observation.effective[x]")
            doc: dict[str, Any] = {"date": when.isoformat() if when else None}
            r.note(f"assessments[{n}]", item, "Observation")
            r.note(f"assessments[{n}].date", item, "Observation.effective[x]")
            for k, member in enumerate(item.model.hasMember or []):
                target = r.resolve(item, member, f"Observation.hasMember[{k}]")
                if target is not None:
                    self.assessment_member(target, doc, f"assessments[{n}]")
            docs.append(doc)
        # Measurements a record system stores on their own (no panel) make
        # one assessment per day, in date order.
        loose: dict[date, list[_Item]] = {}
        for kind in ("heel_raise", "visa_a", "pain"):
            for item in self.all(kind):
                if item.used:
                    continue
                if kind == "pain" and self._pain_context(item) not in ("at-rest", "during-hopping"):
                    continue
                when = self.date_of(item, _effective(item.model),
                                    "Observation.effective[x]")
                if when is not None:
                    loose.setdefault(when, []).append(item)
        for when in sorted(loose):
            n = len(docs)
            doc = {"date": when.isoformat()}
            for item in loose[when]:
                r.note(f"assessments[{n}].date", item, "Observation.effective[x]")
                self.assessment_member(item, doc, f"assessments[{n}]")
            docs.append(doc)
        return docs


def _drop_none(doc: Any) -> Any:
    """Absent optional fields are left out, as a clinician's file leaves them."""
    if isinstance(doc, dict):
        return {k: _drop_none(v) for k, v in doc.items() if v is not None}
    if isinstance(doc, list):
        return [_drop_none(v) for v in doc]
    return doc


def bundle_to_document(
    data: Any,
    *,
    source: str = "<bundle>",
    case_id: str | None = None,
    review_date: date | None = None,
    ignore_unrelated: bool = False,
    partial: bool = False,
    prefer_kind: str | None = None,
    zone: tzinfo | None = None,
) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
    """The case document a Bundle maps to, and where each of its fields came
    from. Raises FhirMappingError listing every problem found."""
    reader = _Reader(source, ignore_unrelated)
    reader.load(data)
    if reader.problems:
        raise FhirMappingError(source, reader.problems)
    token = _ZONE.set(zone)
    try:
        doc = _Mapper(reader, partial=partial, prefer_kind=prefer_kind).build(case_id,
                                                                              review_date)
    finally:
        _ZONE.reset(token)
    if reader.problems:
        raise FhirMappingError(source, reader.problems)
    return _drop_none(doc), reader.origin


def explain_case_errors(
    source: str, exc: CaseValidationError, origin: Mapping[str, tuple[str, str]]
) -> FhirMappingError:
    """A case-file validation error, said of the resources the fields came
    from: ``sessions[0].exercises[1].pain_during`` becomes the pain
    Observation and its valueInteger."""
    problems = []
    for err in exc.errors:
        path = err.path
        while path and path not in origin:
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        resource, element = origin.get(path, ("Bundle", ""))
        value = f" (got {err.value})" if err.value is not None else ""
        problems.append(MappingProblem(resource, element,
                                       f"{err.path or 'case'}: {err.message}{value}"))
    return FhirMappingError(source, problems)


__all__ = [
    "FhirMappingError",
    "MappingProblem",
    "bundle_to_document",
    "explain_case_errors",
]
