"""The audit trail: for ``calfrehab audit``, the service, and auditors.

:func:`record` appends decisions; :func:`open_trail` opens an existing
trail read-only for the views (:func:`list_audit`, :func:`show_decision`,
:func:`replay_decision`, :func:`export_audit`); :func:`verify_audit` checks
a trail or a sharded trail's directory (and, given checkpoints, that it
holds what they signed); :func:`override_decision` records a clinician's
override on one writable connection (:func:`add_audit_override` on an open
trail); :func:`audit_keygen`, :func:`audit_checkpoint`, :func:`audit_prove`
and :func:`audit_check_proof` make the clinic's key, sign checkpoints
(a server calls :func:`audit_checkpoint` on its schedule), and prove and
check one entry's inclusion; :func:`accept` makes a recorded decision the
patient's programme, :func:`case_state` says where a case stands (by
:func:`in_force`'s rule, which the app applies to what it has read), and
:func:`entered_since` what its file holds since a recorded decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calfrehab.engine.acceptance import Accepted, CaseState, accept, case_state, in_force
from calfrehab.engine.audit.views import (
    add_audit_override,
    audit_check_proof,
    audit_checkpoint,
    audit_key_check,
    audit_keygen,
    audit_prove,
    export_audit,
    list_audit,
    migrate_audit,
    open_trail,
    override_decision,
    replay_decision,
    show_decision,
    verify_audit,
    verify_trail,
)
from calfrehab.engine.casefile.since import Since, entered_since
from calfrehab.engine.trail.audit import EntryKind, ExportFormat

if TYPE_CHECKING:
    from calfrehab.engine.pipeline import Decided

__all__ = [
    "Accepted",
    "CaseState",
    "EntryKind",
    "ExportFormat",
    "Since",
    "accept",
    "add_audit_override",
    "audit_check_proof",
    "audit_checkpoint",
    "audit_key_check",
    "audit_keygen",
    "audit_prove",
    "case_state",
    "entered_since",
    "export_audit",
    "in_force",
    "list_audit",
    "migrate_audit",
    "open_trail",
    "override_decision",
    "record",
    "replay_decision",
    "show_decision",
    "trail_location",
    "usable_trail_location",
    "verify_audit",
    "verify_trail",
]


def record(decided: list[Decided], audit_path: Path | None, clinician: str | None,
           requester: Mapping[str, Any] | None = None) -> None:
    """Append decisions to the audit trail, in one transaction; ``requester``
    is who asked when a system did (a CDS Hooks call: hookInstance, the
    token's iss and sub, fhirServer)."""
    from calfrehab.engine.trail.audit import AuditTrail, default_audit_path, prepare_entry

    # The case's canonical bytes were made (and hashed) when it was decided:
    # prepare_entry uses them rather than serialising the case again.
    prepared = [
        prepare_entry(d.decision.model_dump(mode="json"), d.document, case_bytes=d.case_bytes)
        for d in decided
    ]
    with AuditTrail(audit_path or default_audit_path()) as trail:
        trail.record_prepared(prepared, clinician, requester=requester)


def trail_location(audit_path: Path | None) -> Path:
    """The audit trail a command or the service records in: the one given,
    else the default (CALFREHAB_AUDIT or ~/.local/share/calfrehab)."""
    from calfrehab.engine.trail.audit import default_audit_path

    return audit_path or default_audit_path()


def usable_trail_location(audit_path: Path | None) -> Path:
    """:func:`trail_location`, refused (AuditError) when what is there cannot
    be an audit trail: a directory, a FIFO, a device. Nothing there yet is
    no error (the first decision makes the trail). For a front end that
    runs for hours (``serve``, ``app``): a trail that every decision would
    fail to open stops it at start, as it stops a one-shot command."""
    from calfrehab.engine.trail.connection import regular_size

    path = trail_location(audit_path)
    regular_size(path)
    return path
