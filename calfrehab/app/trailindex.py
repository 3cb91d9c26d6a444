"""What the patient list needs from the audit trail: each case's latest
recorded decision, and the newest one a clinician overrode or accepted, with
their flags, in one pass over the trail.

The pass is kept until the trail's head (entry count and last hash) moves,
so a list of a thousand patients reads the trail once, not once per row.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calfrehab.engine import api

# The flag a session flare asserts (rules/pain-model.yaml): a rule-language
# name, read from the decision's firings, so no rule id is spelled here.
FLARE_FLAG = "session_flare"


@dataclass(frozen=True)
class Latest:
    """A case's latest recorded decision, as the list shows it."""

    decision_id: str
    review_date: str
    recorded_at: str
    clinician: str | None
    outcome: str | None
    tracks: dict[str, str | None]
    flare: bool
    overrides: int
    case_sha256: str


def flare_in(decision: dict[str, Any]) -> bool:
    firings = decision.get("firings")
    return any(isinstance(f, dict) and f.get("asserted") == FLARE_FLAG
               for f in (firings if isinstance(firings, list) else []))


def _tracks(decision: dict[str, Any]) -> dict[str, str | None]:
    found = decision.get("tracks")
    tracks: dict[str, Any] = found if isinstance(found, dict) else {}
    out: dict[str, str | None] = {}
    for track in api.TRACKS:
        info = tracks.get(track)
        value = info.get("decision") if isinstance(info, dict) else None
        out[track] = value if isinstance(value, str) else None
    return out


class TrailIndex:
    """The latest decision per case id of one trail file, and the newest
    one a clinician acted on (overrode or accepted) with the case it was
    made on."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._head: tuple[int, str] | None = None
        self._latest: dict[str, Latest] = {}
        self._acted: dict[str, tuple[Latest, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def open(self) -> Any | None:
        """The trail, read-only, or None when nothing has been recorded yet
        (reading never creates one)."""
        try:
            return api.open_trail(self.path)
        except api.CalfrehabError:
            if self.path is not None and self.path.exists():
                raise  # there is a file, and it is not a trail: say so
            return None

    def exists(self) -> bool:
        """Whether a trail has been recorded (opened, and closed again)."""
        trail = self.open()
        if trail is None:
            return False
        trail.close()
        return True

    def latest(self) -> dict[str, Latest]:
        self._read()
        return self._latest

    def in_force(self, case_id: str, current: Mapping[str, Any]) -> Latest | None:
        """The recorded decision a case stands on, as the patient's page,
        report and handout have it (api.in_force: the newest one a clinician
        overrode or accepted, while nothing was entered since it in
        ``current``, the case file's document or its sessions and
        assessments; else the latest recorded), of the two this index keeps."""
        self._read()
        acted, acted_case = self._acted.get(case_id, (None, None))
        return api.in_force(acted, acted_case, self._latest.get(case_id), current)

    def _read(self) -> None:
        trail = self.open()
        if trail is None:
            self._head, self._latest, self._acted = None, {}, {}
            return
        with self._lock, trail:
            head = trail.head()
            if head == self._head:
                return
            entries = trail.entries()
            # Overrides and acceptances come after their decision: which
            # decisions were acted on is known before the pass that builds rows.
            acted_on = {e.decision_id for e in entries if e.kind in ("override", "accepted")}
            latest: dict[str, Latest] = {}
            acted: dict[str, tuple[Latest, dict[str, Any]]] = {}
            overrides: dict[str, int] = {}
            # The latest override's decision for its track, per decision:
            # the list shows what the clinician decided, not what was proposed.
            chosen: dict[str, dict[str, str]] = {}
            for entry in entries:
                if entry.kind == "override":
                    overrides[entry.decision_id] = overrides.get(entry.decision_id, 0) + 1
                    track, kind = entry.decision.get("track"), entry.decision.get("decision")
                    chosen[entry.decision_id] = (
                        {track: kind} if isinstance(track, str) and isinstance(kind, str)
                        else {})
                    continue
                if entry.kind != "decision":
                    continue
                doc = entry.decision
                item = Latest(
                    decision_id=entry.decision_id,
                    review_date=entry.review_date.isoformat(),
                    recorded_at=entry.recorded_at.strftime("%Y-%m-%d %H:%M"),
                    clinician=entry.clinician,
                    outcome=doc.get("outcome") if isinstance(doc.get("outcome"), str) else None,
                    tracks=_tracks(doc),
                    flare=flare_in(doc),
                    overrides=0,
                    case_sha256=entry.case_sha256,
                )
                latest[entry.case_id] = item
                if entry.decision_id in acted_on:  # newest by seq wins, as in case_state
                    acted[entry.case_id] = (item, entry.case or {})

            def with_overrides(item: Latest) -> Latest:
                if not overrides.get(item.decision_id):
                    return item
                tracks = {**item.tracks, **chosen.get(item.decision_id, {})}
                return Latest(**{**item.__dict__, "tracks": tracks,
                                 "overrides": overrides[item.decision_id]})

            self._latest = {c: with_overrides(i) for c, i in latest.items()}
            self._acted = {c: (with_overrides(i), case) for c, (i, case) in acted.items()}
            self._head = head
