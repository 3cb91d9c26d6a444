"""Fetching the rest of an incomplete prefetch from the record's FHIR server.

CDS Hooks 2.0 ("Prefetch", "FHIR Resource Access"): a service that lacks
data may query ``fhirServer`` itself with the bearer token the client gives
in ``fhirAuthorization``. calfrehab does so only for what the prefetch
shows is incomplete (:mod:`calfrehab.engine.fhir.prefetch`): it follows a
searchset's ``next`` links as the server wrote them (FHIR R4 http.html
"Paging": the links are opaque to the client), or, for a key the client
could not fetch, runs the discovery template's search again and pages
through it. Whatever it cannot complete, it names; the hook then answers
412 and decides nothing (clinical-basis.md §8).

Why httpx rather than a FHIR client library: the job is three GETs shapes
(a read, a search, a ``next`` URL followed verbatim) with a bearer token,
a per-request and an overall time limit, and no redirects (a token must
never leave the record's server). fhirpy (aiohttp/requests) and fhirclient
(requests, built around the SMART launch flow) would each add a second
HTTP stack beside httpx, and both wrap results in their own resource
classes, while here every resource must reach the mapping as the JSON the
server sent (resources the mapping does not use are never validated).
httpx is already what the tests call the service with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from calfrehab.engine.api import (
    PrefetchGap,
    outcome_problem,
    resolve_prefetch_template,
    searchset_gap,
)


class FetchError(Exception):
    """What could not be completed; one line per prefetch key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class FhirSource:
    base: str
    authorization: Mapping[str, Any] | None
    timeout_s: float
    max_pages: int

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/fhir+json"}
        auth = self.authorization or {}
        token = auth.get("access_token")
        if isinstance(token, str) and token:
            kind = auth.get("token_type") if isinstance(auth.get("token_type"), str) else "Bearer"
            headers["Authorization"] = f"{kind} {token}"
        return headers

    def url(self, target: str) -> str:
        """An absolute URL on this server. A link that points anywhere else
        is refused: the bearer token is the record's, for its server only."""
        base = self.base.rstrip("/") + "/"
        absolute = urljoin(base, target)
        b, a = urlsplit(base), urlsplit(absolute)
        # HAPI-style paging links are the base itself: [base]?_getpages=...
        on_base = a.path == b.path.rstrip("/") or a.path.startswith(b.path)
        if (a.scheme, a.netloc) != (b.scheme, b.netloc) or not on_base:
            raise ValueError(f"{target} is not on the FHIR server {self.base}")
        return absolute


async def _get(client: httpx.AsyncClient, source: FhirSource, url: str) -> Any:
    response = await client.get(url, headers=source.headers())
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200:
        said = outcome_problem(body) if isinstance(body, Mapping) \
            and body.get("resourceType") == "OperationOutcome" else None
        raise ValueError(f"GET {url} answered {response.status_code}"
                         + (f" ({said})" if said else ""))
    if not isinstance(body, Mapping):
        raise ValueError(f"GET {url} did not answer FHIR JSON")
    if body.get("resourceType") == "OperationOutcome":
        raise ValueError(f"GET {url} answered {outcome_problem(body) or 'an OperationOutcome'}")
    return body


async def _complete_search(client: httpx.AsyncClient, source: FhirSource, key: str,
                           first: Mapping[str, Any] | None, start: str) -> dict[str, Any]:
    entries: list[Any] = list((first or {}).get("entry") or [])
    totals = [first.get("total")] if first is not None else []
    url: str | None = start
    pages = 0
    while url is not None:
        pages += 1
        if pages > source.max_pages:
            raise ValueError(f"more than {source.max_pages} pages")
        page = await _get(client, source, source.url(url))
        if page.get("resourceType") != "Bundle":
            raise ValueError(f"GET {url} answered a {page.get('resourceType')}, not a Bundle")
        totals.append(page.get("total"))
        gap = searchset_gap(key, {**page, "link": [], "total": None})
        if gap is not None:  # an OperationOutcome entry on the page
            raise ValueError(gap.reason)
        entries += page.get("entry") or []
        nxt = [link.get("url") for link in page.get("link") or []
               if isinstance(link, Mapping) and link.get("relation") == "next"]
        url = nxt[0] if nxt and isinstance(nxt[0], str) else None
    whole: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
    known = [t for t in totals if isinstance(t, int) and not isinstance(t, bool)]
    if known:
        whole["total"] = max(known)
    left = searchset_gap(key, whole)
    if left is not None:
        raise ValueError(left.reason)
    return whole


async def complete(prefetch: Mapping[str, Any], gaps: list[PrefetchGap],
                   templates: Mapping[str, str], context: Mapping[str, Any],
                   source: FhirSource) -> dict[str, Any]:
    """The prefetch with every gap filled from the FHIR server, or
    FetchError naming each key that could not be completed."""
    out = dict(prefetch)
    problems: list[str] = []
    limits = httpx.Timeout(source.timeout_s)
    async with httpx.AsyncClient(timeout=limits, follow_redirects=False) as client:
        async def one(gap: PrefetchGap) -> None:
            try:
                if gap.url is not None:
                    out[gap.key] = await _complete_search(client, source, gap.key,
                                                          prefetch[gap.key], gap.url)
                    return
                query = resolve_prefetch_template(templates[gap.key], context)
                if query is None:
                    raise ValueError("its prefetch template has no value for a token")
                if "?" in query:
                    out[gap.key] = await _complete_search(client, source, gap.key, None, query)
                else:
                    out[gap.key] = await _get(client, source, source.url(query))
            except (ValueError, httpx.HTTPError) as exc:
                why = str(exc) or type(exc).__name__
                problems.append(f"{gap.render()}; fetching the rest from {source.base} "
                                f"failed: {why}")

        try:
            async with asyncio.timeout(source.timeout_s * 2):
                await asyncio.gather(*(one(g) for g in gaps))
        except TimeoutError:
            problems.append(f"fetching from {source.base} took longer than "
                            f"{source.timeout_s * 2:g} s: "
                            + ", ".join(g.key for g in gaps))
    if problems:
        raise FetchError(problems)
    return out
