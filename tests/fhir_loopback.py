"""A small FHIR R4 server on a loopback port, for the tests of fetching the
rest of an incomplete prefetch. No real FHIR server can be installed here,
so this one answers reads, searches, paging and errors the way the FHIR R4
specification (4.0.1) says a server does:

- read, ``GET [base]/[type]/[id]`` (http.html "read"): the resource, or 404
  with an OperationOutcome;
- search, ``GET [base]/[type]?params`` (http.html "search", search.html):
  a Bundle of type ``searchset``; ``patient``/``subject`` select by the
  reference's id (search.html "reference"), ``code`` by token
  ``system|code``, ``system|`` or ``code`` (search.html "token"),
  ``status``/``clinical-status`` by code, ``_count`` sets the page size
  (search.html "_count": the server may return fewer), ``_sort=-date``
  sorts newest first (search.html "_sort"); parameters it does not know
  are ignored (search.html "Handling errors": a server may ignore them);
- ``Bundle.total``: the number of matches across all pages
  (bundle-definitions.html "Bundle.total"); each entry has ``fullUrl`` and
  ``search.mode = match`` (bundle.html "Bundle.entry.search.mode");
- paging (http.html "Paging"): a page with more to come has a ``next``
  link; the link is opaque (here a page token held by the server), and
  following it gives the next page of the same result;
- errors (http.html "Handling errors", operationoutcome.html): a failing
  request answers 4xx/5xx with an OperationOutcome body; a search that
  could not finish may return an ``OperationOutcome`` entry with
  ``search.mode = outcome`` (search.html "Handling errors");
- authorization: every request must carry the bearer token given at start
  (CDS Hooks 2.0 "fhirAuthorization"), else 401 with an OperationOutcome.

It records the requests it served, so a test can see what was fetched.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def outcome(severity: str, code: str, text: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": text}]}


def _ref_id(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("reference"), str):
        return str(value["reference"]).split("/_history")[0].rsplit("/", 1)[-1]
    return None


def _date_of(resource: dict[str, Any]) -> str:
    for key in ("effectiveDateTime", "performedDateTime", "authoredOn", "onsetDateTime",
                "recordedDate"):
        if isinstance(resource.get(key), str):
            return str(resource[key])
    period = resource.get("effectivePeriod") or resource.get("performedPeriod")
    if isinstance(period, dict) and isinstance(period.get("start"), str):
        return str(period["start"])
    return ""


def _codings(resource: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for key in ("code", "medicationCodeableConcept"):
        concept = resource.get(key)
        if isinstance(concept, dict):
            out += [(c.get("system", ""), c.get("code", "")) for c in concept.get("coding", [])]
    return out


def _token_matches(codings: list[tuple[str, str]], wanted: str) -> bool:
    # search.html "token": system|code, system| (any code of the system), code.
    for want in wanted.split(","):
        if "|" in want:
            system, code = want.split("|", 1)
            if any(s == system and (not code or c == code) for s, c in codings):
                return True
        elif any(c == want for _, c in codings):
            return True
    return False


def _matches(resource: dict[str, Any], params: dict[str, list[str]]) -> bool:
    for name, values in params.items():
        value = values[0]
        if name in ("patient", "subject"):
            who = _ref_id(resource.get("subject")) or _ref_id(resource.get("patient"))
            if who != value.rsplit("/", 1)[-1]:
                return False
        elif name == "code":
            if not _token_matches(_codings(resource), value):
                return False
        elif name == "status":
            if resource.get("status") not in value.split(","):
                return False
        elif name == "clinical-status":
            codes = [c.get("code") for c in (resource.get("clinicalStatus") or {})
                     .get("coding", [])]
            if not set(codes) & set(value.split(",")):
                return False
    return True


@dataclass
class FhirStore:
    """What the server holds and how it misbehaves on purpose."""

    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    resources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    page_size: int = 2
    failing: set[str] = field(default_factory=set)  # types whose search answers 500
    failing_pages: set[str] = field(default_factory=set)  # types whose 2nd page answers 500
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    pages: dict[str, tuple[str, list[dict[str, Any]], int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, *resources: dict[str, Any]) -> None:
        for r in resources:
            self.resources.setdefault(r["resourceType"], []).append(r)


class _Handler(BaseHTTPRequestHandler):
    store: FhirStore
    base: str

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        store = self.store
        with store.lock:
            store.requests.append((self.path, self.headers.get("Authorization")))
        if self.headers.get("Authorization") != f"Bearer {store.token}":
            self.send(401, outcome("error", "login", "a valid bearer token is required"))
            return
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p][1:]  # drop "fhir"
        params = parse_qs(url.query)
        if parts == [] and "_page" in params:
            self.page(params["_page"][0])
            return
        if len(parts) == 2:
            for r in store.resources.get(parts[0], []):
                if r.get("id") == parts[1]:
                    self.send(200, r)
                    return
            self.send(404, outcome("error", "not-found", f"{parts[0]}/{parts[1]} is unknown"))
            return
        if len(parts) != 1:
            self.send(400, outcome("error", "not-supported", f"no such path {url.path}"))
            return
        rtype = parts[0]
        if rtype in store.failing:
            self.send(500, outcome("fatal", "exception", f"the {rtype} index is down"))
            return
        size = int(params.pop("_count", [str(store.page_size)])[0])
        newest_first = params.pop("_sort", [""])[0] == "-date"
        found = [r for r in store.resources.get(rtype, []) if _matches(r, params)]
        if newest_first:
            found.sort(key=_date_of, reverse=True)
        key = uuid.uuid4().hex
        with store.lock:
            store.pages[key] = (rtype, found, min(size, store.page_size))
        self.page(f"{key}:0")

    def page(self, token: str) -> None:
        key, _, offset_text = token.partition(":")
        if key not in self.store.pages:
            self.send(410, outcome("error", "not-found", "that page has expired"))
            return
        rtype, found, size = self.store.pages[key]
        offset = int(offset_text)
        if offset > 0 and rtype in self.store.failing_pages:
            self.send(500, outcome("fatal", "timeout", f"page {offset // size + 1} timed out"))
            return
        chunk = found[offset:offset + size]
        bundle: dict[str, Any] = {
            "resourceType": "Bundle", "type": "searchset", "total": len(found),
            "link": [{"relation": "self", "url": f"{self.base}?_page={key}:{offset}"}],
            "entry": [{"fullUrl": f"{self.base}/{r['resourceType']}/{r['id']}",
                       "resource": r, "search": {"mode": "match"}} for r in chunk],
        }
        if offset + size < len(found):
            bundle["link"].append({"relation": "next",
                                   "url": f"{self.base}?_page={key}:{offset + size}"})
        self.send(200, bundle)


@contextmanager
def fhir_server(store: FhirStore) -> Iterator[str]:
    """Serve ``store`` on a free loopback port; yield the base URL."""
    class Handler(_Handler):
        pass

    Handler.store = store
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{httpd.server_address[1]}/fhir"
    Handler.base = base
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        httpd.shutdown()
        httpd.server_close()
