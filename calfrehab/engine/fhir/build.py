"""Small builders for the FHIR datatypes the mapping uses.

Every value is an instance of the fhir.resources R4B model it stands for,
so the library validates each element as it is built.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any, Final

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.reference import Reference

from calfrehab.engine.fhir import codes

_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, codes.BASE)


def resource_id(case_id: str, role: str) -> str:
    """A stable id for one resource of one case: the same case exports to
    the same ids, so two exports of a case can be compared."""
    return str(uuid.uuid5(_NAMESPACE, f"{case_id}/{role}"))


def full_url(rid: str) -> str:
    return f"urn:uuid:{rid}"


def ref(rid: str, display: str | None = None) -> Reference:
    return Reference(reference=full_url(rid), display=display)


def coding(system: str, code: str, display: str | None = None) -> Coding:
    return Coding(system=system, code=code, display=display)


def concept(*codings: Coding, text: str | None = None) -> CodeableConcept:
    return CodeableConcept(coding=list(codings), text=text)


def identifier(system: str, value: str) -> Identifier:
    return Identifier(system=system, value=value)


def kg(value: float) -> Quantity:
    return Quantity(value=Decimal(str(value)), unit="kg", system=codes.UCUM, code="kg")


def minutes(value: int) -> Quantity:
    return Quantity(value=Decimal(value), unit="min", system=codes.UCUM, code="min")


def day(value: date | None) -> Any:
    """A day for a FHIR dateTime element. FHIR lets a dateTime be a bare
    date (the case file records days, not times); the library accepts one
    though its type hints say datetime, hence the Any."""
    return value


def ext_code(url: str, value: str) -> Extension:
    return Extension(url=url, valueCode=value)


def ext_date(url: str, value: date) -> Extension:
    return Extension(url=url, valueDate=value)


def dose_extension(sets: int, reps: int, load_kg: float, unit: str | None = None) -> Extension:
    """The exercise dose: sets, repetitions (or seconds, contacts, minutes
    as ``unit`` says) and external load. FHIR has no element for an
    exercise dose, hence one complex extension."""
    parts = [
        Extension(url="sets", valueInteger=sets),
        Extension(url="reps", valueInteger=reps),
        Extension(url="load", valueQuantity=kg(load_kg)),
    ]
    if unit is not None:
        parts.append(Extension(url="unit", valueCode=unit))
    return Extension(url=codes.EXT_DOSE, extension=parts)
