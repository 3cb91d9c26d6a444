"""A decision becomes the patient's programme: the case-file side of accepting.

Accepting writes each track's prescription into the case file's ``program``:
the decision's ``next`` dose, or, when a clinician overrode the decision, what
the override says (clinical-basis §8: what the patient takes home is what
the clinician decided). The audit trail's side (finding the decision and its
override, recording the ``accepted`` entry) is :mod:`calfrehab.engine.accept`;
this module only needs the two documents.

What a track becomes:

- an override's own prescription for the track (``prescriptions``): exactly
  that (None empties the track);
- an override of one track to ``hold`` without a prescription: the track
  keeps its current dose; to anything else without one: refused, since
  there is no dose to write (record the override with a prescription);
- an override of the decision as a whole: only its prescriptions change the
  programme; without any, nothing can be applied and it is refused;
- otherwise the decision's ``next`` for the track; ``regress`` with no
  next pauses the track (empties it); no next otherwise leaves it as it is.

A referral prescribes nothing and is refused unless an override gives a
prescription. A decision made for another version of the case file (its
``case_sha256`` is not the file's now) is refused, naming both hashes,
unless forced; another patient's decision is refused always.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from calfrehab.engine.canonical import canonical_bytes, case_sha256, sha256_hex
from calfrehab.engine.casefile import model as cm
from calfrehab.engine.casefile.editor import (
    as_json,
    editing,
    put,
)
from calfrehab.engine.casefile.validation import validate_document
from calfrehab.engine.errors import AcceptError as AcceptError
from calfrehab.engine.errors import StaleDecision as StaleDecision
from calfrehab.engine.safeio import atomic_write_bytes, shown
from calfrehab.engine.textsafe import for_terminal
from calfrehab.engine.vocabulary import TRACKS

PROGRAM_ORDER = tuple(cm.Program.model_fields)


class Applied(BaseModel):
    """What accepting wrote: the programme, its sha256 and a line per track
    changed."""

    model_config = ConfigDict(frozen=True)

    path: str
    case_id: str
    decision_id: str
    override_entry_id: str | None
    program: dict[str, Any]
    program_sha256: str
    changes: list[str]


def program_sha256(program: Mapping[str, Any]) -> str:
    """sha256 of a programme's canonical JSON (what the trail's ``accepted``
    entry names as the programme written)."""
    return sha256_hex(canonical_bytes(program))


def _words(rx: Mapping[str, Any] | None) -> str:
    if rx is None:
        return "nothing (track empty)"
    load = rx.get("load_kg") or 0
    extra = f", +{load:g} kg" if load else ""
    return f"{rx.get('exercise')} {rx.get('sets')} x {rx.get('reps')}{extra}"


def _prescription(rx: Mapping[str, Any]) -> dict[str, Any]:
    """A dose (a decision's ``next`` or an override's prescription) as the
    case file's prescription: exercise, load_kg, sets, reps."""
    return as_json(cm.Prescription(exercise=rx["exercise"], load_kg=rx.get("load_kg") or 0,
                                   sets=rx["sets"], reps=rx["reps"]))


def _target(track: str, decision: Mapping[str, Any], override: Mapping[str, Any] | None,
            ) -> tuple[bool, dict[str, Any] | None, str]:
    """(changes?, the track's new prescription, where it came from)."""
    decision_id = decision.get("decision_id")
    if override is not None:
        given = override.get("prescriptions") or {}
        if track in given:
            rx = given[track]
            return True, (_prescription(rx) if rx is not None else None), "override"
        if override.get("track") is None:
            return False, None, ""
        if override.get("track") == track:
            kind = override.get("decision")
            if kind == "hold":
                return False, None, ""
            raise AcceptError(
                f"the override of decision {decision_id} sets {track} to {kind} but gives no "
                "prescription, so there is no dose to write; record the override again with "
                "the clinician's own prescription (audit override --track "
                f"{track} --decision {kind} --exercise ... --sets ... --reps ...)")
    if decision.get("outcome") == "refer":
        return False, None, ""
    tracks = decision.get("tracks")
    state = tracks.get(track) if isinstance(tracks, Mapping) else None
    if not isinstance(state, Mapping):
        return False, None, ""
    nxt = state.get("next")
    if isinstance(nxt, Mapping):
        return True, _prescription(nxt), "decision"
    if state.get("decision") == "regress":
        return True, None, "decision"
    return False, None, ""


def program_after(decision: Mapping[str, Any], override: Mapping[str, Any] | None,
                  current: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The programme after accepting ``decision`` (through ``override`` when
    given) on ``current``, and one line per track that changed. Keys keep
    their places; a track newly filled goes where the case format puts it."""
    decision_id = decision.get("decision_id")
    if override is not None and override.get("track") is None \
            and not override.get("prescriptions"):
        raise AcceptError(
            f"the override of decision {decision_id} disagrees with it as a whole and gives "
            "no prescription: there is nothing to apply. Record the clinician's own "
            "prescription with audit override --track ... --exercise ... --sets ... --reps")
    if decision.get("outcome") == "refer" and not (override or {}).get("prescriptions"):
        raise AcceptError(
            f"decision {decision_id} refers the patient: it prescribes no exercise, so there "
            "is no programme to apply")
    program = copy.deepcopy(dict(current))
    changes: list[str] = []
    for track in TRACKS:
        changed, rx, source = _target(track, decision, override)
        if not changed:
            continue
        old = program.get(track)
        if rx is None and track not in program:
            continue
        if old == rx:
            changes.append(f"program.{track}: {_words(rx)} (unchanged, from the {source})")
            continue
        put(program, track, rx, PROGRAM_ORDER)
        changes.append(f"program.{track}: {_words(old)} -> {_words(rx)} (from the {source})")
    return program, changes


def check_same_case(document: Mapping[str, Any], decision: Mapping[str, Any], path: Path,
                    *, force: bool) -> None:
    """Refuse another patient's decision (always) and a decision made for
    another version of the file (unless ``force``)."""
    if document.get("case_id") != decision.get("case_id"):
        raise AcceptError(
            f"decision {decision.get('decision_id')} is for case "
            f"{for_terminal(str(decision.get('case_id')))}, but {shown(path)} holds case "
            f"{for_terminal(str(document.get('case_id')))}: a decision is never applied to "
            "another patient's file")
    now = case_sha256(document)
    then = decision.get("case_sha256")
    if now != then and not force:
        raise StaleDecision(
            f"decision {decision.get('decision_id')} was made for another version of "
            f"{shown(path)} (case sha256 {then}); the file is now {now}. Decide it again "
            "(calfrehab next) and accept that decision, or give --force to apply this one "
            "anyway")


def apply_decision(path: Path, decision: Mapping[str, Any],
                   override: Mapping[str, Any] | None = None, *,
                   override_entry_id: str | None = None, force: bool = False,
                   record: Any = None) -> Applied:
    """Write the programme ``decision`` (through ``override``) gives into
    the case file at ``path``, under its lock, atomically, keys in place.

    ``record``, when given, is called with the :class:`Applied` after the
    file is written and while its lock is still held (the trail's
    ``accepted`` entry); if it raises, the file's previous bytes are put
    back, so a programme is never changed without its record."""
    with editing(path) as cf:
        before = cf.path.read_bytes()
        validate_document(cf.document, str(path))
        check_same_case(cf.document, decision, path, force=force)
        current = cf.document.get("program")
        program, changes = program_after(decision, override, current
                                         if isinstance(current, Mapping) else {})
        cf.document["program"] = program
        case = cf.save()
        applied = Applied(path=str(path), case_id=case.case_id,
                          decision_id=str(decision.get("decision_id")),
                          override_entry_id=override_entry_id, program=program,
                          program_sha256=program_sha256(program), changes=changes)
        if record is not None:
            try:
                record(applied)
            except BaseException:
                atomic_write_bytes(path, before, mode=cf.mode if cf.mode is not None
                                   else 0o600)
                raise
    return applied
