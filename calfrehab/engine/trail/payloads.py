"""What a format-3 entry says beyond a decision: who asked (the
``requester`` column), the clinician's own prescription in an override, and
the payload of an ``accepted`` entry. Each is validated here, once, before
anything is written, and turned into the one JSON shape the trail stores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from calfrehab.engine.canonical import canonical_json, sha256_hex
from calfrehab.engine.casefile.model import Prescription, Program
from calfrehab.engine.casefile.validation import expectation
from calfrehab.engine.trail.errors import AuditError
from calfrehab.engine.vocabulary import EXERCISES, TRACKS

__all__ = [
    "REQUESTER_FIELDS",
    "Requester",
    "accepted_payload",
    "program_sha256",
    "requester_json",
    "validated_prescriptions",
]

# The requester's keys as CDS Hooks and JWT (RFC 7519) spell them, so the
# stored object reads like the request it came from.
REQUESTER_FIELDS: Final = ("hookInstance", "iss", "sub", "fhirServer")
# Identifiers and URLs, not prose: a longer value is not one, and the
# trail should not store a megabyte because a token said so.
_MAX_REQUESTER_TEXT: Final = 2048


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asked for a decision, an override or an acceptance, when a
    system asked (a CDS Hooks call): the hook's ``hookInstance``, the
    access token's issuer and subject, and the FHIR server the hook named.
    Every field is optional; an all-empty requester is stored as none."""

    hook_instance: str | None = None
    iss: str | None = None
    sub: str | None = None
    fhir_server: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "hookInstance": self.hook_instance,
            "iss": self.iss,
            "sub": self.sub,
            "fhirServer": self.fhir_server,
        }


def requester_json(requester: Requester | Mapping[str, Any] | None) -> str | None:
    """The canonical JSON text stored in the ``requester`` column, or None.

    Takes a :class:`Requester` or a mapping with the keys of
    :data:`REQUESTER_FIELDS` (missing keys are null). Refuses other keys,
    non-text values, text that is not UTF-8 or longer than 2,048
    characters, naming the key."""
    if requester is None:
        return None
    if isinstance(requester, Requester):
        raw: Mapping[str, Any] = requester.as_dict()
    elif isinstance(requester, Mapping):
        raw = requester
    else:
        raise AuditError(
            f"requester must be a Requester or a mapping of {', '.join(REQUESTER_FIELDS)}"
        )
    unknown = sorted(str(k) for k in raw if k not in REQUESTER_FIELDS)
    if unknown:
        raise AuditError(
            f"requester has unknown key(s) {', '.join(unknown)}; "
            f"expected {', '.join(REQUESTER_FIELDS)}"
        )
    out: dict[str, str | None] = {}
    for key in REQUESTER_FIELDS:
        value = raw.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise AuditError(f"requester {key} must be text, got {type(value).__name__}")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise AuditError(f"requester {key} is not valid UTF-8 text") from exc
            value = value.strip() or None
            if value is not None and len(value) > _MAX_REQUESTER_TEXT:
                raise AuditError(
                    f"requester {key} is {len(value)} characters long; "
                    f"at most {_MAX_REQUESTER_TEXT} are stored"
                )
        out[key] = value
    if all(v is None for v in out.values()):
        return None
    return canonical_json(out)


def validated_prescriptions(
    prescriptions: Mapping[str, Any] | None,
) -> dict[str, dict[str, Any] | None] | None:
    """The clinician's own prescription per track, as stored in an
    override: ``{track: {exercise, load_kg, sets, reps}}``, each checked
    as a case file's programme checks it (the exercise on its own track,
    sets 1-10, reps 1-50, load 0-500 kg; a missing load is 0). A track
    mapped to None empties that track of the programme (nothing loaded)."""
    if prescriptions is None:
        return None
    if not isinstance(prescriptions, Mapping) or not prescriptions:
        raise AuditError("prescriptions must map at least one track to a prescription")
    out: dict[str, dict[str, Any] | None] = {}
    for track, rx in prescriptions.items():
        if track not in TRACKS:
            raise AuditError(
                f"prescription for unknown track {track!r}; known tracks: {', '.join(TRACKS)}"
            )
        if rx is None:
            out[track] = None
            continue
        if not isinstance(rx, Mapping):
            raise AuditError(f"prescription for {track} must be an object "
                             "{exercise, sets, reps, load_kg}")
        try:
            checked = Prescription.model_validate(dict(rx))
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "(prescription)"
            # Worded as a case file's errors are ("expected a value ≤ 10"),
            # not in pydantic's words.
            said = (f"unknown field; known fields: {', '.join(Prescription.model_fields)}"
                    if first["type"] == "extra_forbidden" else expectation(first, where))
            raise AuditError(
                f"prescription for {track}: {where}: {said} (got {first.get('input')!r})"
            ) from None
        owner = EXERCISES[checked.exercise][0]
        if owner != track:
            raise AuditError(
                f"prescription for {track}: exercise {checked.exercise} belongs to the "
                f"{owner} track"
            )
        out[track] = checked.model_dump(mode="json")
    return out


def program_sha256(program: Mapping[str, Any]) -> str:
    """sha256 of a programme's canonical JSON: what an ``accepted`` entry
    names as the programme written."""
    return sha256_hex(canonical_json(program).encode("utf-8"))


def accepted_payload(
    decision_id: str,
    program: Mapping[str, Any],
    clinician: str | None,
    override_entry_id: str | None,
) -> dict[str, Any]:
    """The document of an ``accepted`` entry. ``program`` is the case
    file's ``program`` as written (checked as the case format checks it,
    and stored whole: it is small, and the trail then shows what was
    applied, not only its hash)."""
    if not isinstance(program, Mapping):
        raise AuditError("the accepted programme must be an object (the case file's program)")
    try:
        checked = Program.model_validate(dict(program))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(program)"
        raise AuditError(f"the accepted programme: {where}: {first['msg']}") from None
    for track in TRACKS:
        rx = checked.on(track)
        if rx is not None and EXERCISES[rx.exercise][0] != track:
            raise AuditError(
                f"the accepted programme: {track}: exercise {rx.exercise} belongs to the "
                f"{EXERCISES[rx.exercise][0]} track"
            )
    # The programme as given (its key order and number spelling are the
    # case file's), so its sha256 is the one the caller wrote.
    stored = dict(program)
    return {
        "decision_id": decision_id,
        "override_entry_id": override_entry_id,
        "clinician": clinician,
        "program": stored,
        "program_sha256": program_sha256(stored),
    }
