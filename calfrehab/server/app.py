"""The HTTP service: CDS Hooks 2.0 (discovery, the patient-view service,
feedback) and a plain JSON API (``/v1/decide``, ``/v1/explain``) with an
OpenAPI description.

Every endpoint runs inside :meth:`Service.guarded`, which authenticates
the caller, bounds the time of the request, turns every failure into a
JSON error that names the problem (never a traceback), and logs one line
that holds no patient data beyond the case id.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from calfrehab.engine import api
from calfrehab.server.auth import AuthError, Client, Verifier
from calfrehab.server.config import ServerConfig
from calfrehab.server.fhirfetch import FetchError, FhirSource, complete
from calfrehab.server.markdown import safe_markdown
from calfrehab.server.openapi import openapi_document
from calfrehab.server.state import ServiceState, state_path
from calfrehab.server.worker import DecisionWorker, WorkerError, WorkerTimeout

# What a CDS service call's body parses into (a hook or a feedback request).
_Parsed = TypeVar("_Parsed")

log = logging.getLogger("calfrehab.server")

JSON_TYPES = ("application/json", "application/fhir+json")


class HttpError(Exception):
    def __init__(self, status: int, message: str, problems: list[Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"status": self.status, "message": self.message}
        if self.problems:
            body["problems"] = self.problems
        return JSONResponse({"error": body}, status_code=self.status, headers=self.headers)


class Service:
    """One running service: its configuration, verifier, worker and the
    cards it has issued (for feedback)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        limits = config.limits
        # Cards issued, token ids seen, hook answers and feedback recorded
        # outlive a restart (server/state.py).
        self.state = ServiceState(state_path(config.audit), limits.remember_s)
        self.verifier = Verifier(config, first_use=self.state.first_use)
        # Hook answers being made, by (caller, hookInstance).
        self.in_flight: dict[tuple[str, str], asyncio.Future[dict[str, Any]]] = {}
        self.worker = DecisionWorker(config.rules, config.audit, limits.decision_timeout_s)
        # Threads only wait on the worker's pipe; their number bounds the
        # decisions queued at once (the pending counter refuses the rest).
        self.pool = ThreadPoolExecutor(max_workers=limits.max_pending,
                                       thread_name_prefix="calfrehab-wait")
        self.pending = 0

    # ------------------------------------------------------------ plumbing

    async def guarded(self, request: Request,
                      work: Callable[[Request, Client | None], Awaitable[Response]]
                      ) -> Response:
        start = time.monotonic()
        request.state.case_id = None
        try:
            async with asyncio.timeout(self.config.limits.request_timeout_s):
                # In a thread: a token naming an allowed jku may fetch its keys.
                client = await asyncio.to_thread(self.authenticate, request)
                response = await work(request, client)
        except HttpError as exc:
            response = exc.response()
        except TimeoutError:
            response = HttpError(504, "the request took longer than "
                                 f"{self.config.limits.request_timeout_s:g} s: "
                                 f"{_recorded_or_not(request)}").response()
        except Exception as exc:  # logged by type only: messages may hold case data
            log.error("internal error %s on %s %s", type(exc).__name__, request.method,
                      request.url.path)
            response = HttpError(500, "internal error").response()
        log.info("%s %s %d %.0fms case=%s", request.method, request.url.path,
                 response.status_code, (time.monotonic() - start) * 1000,
                 request.state.case_id or "-")
        return response

    def authenticate(self, request: Request) -> Client | None:
        if self.config.insecure_no_auth:
            log.warning("UNAUTHENTICATED call accepted (--insecure-dev-no-auth): %s %s",
                        request.method, request.url.path)
            return None
        audience = self.config.audience_base() + request.url.path
        try:
            return self.verifier.verify(request.headers.get("authorization"), audience)
        except AuthError as exc:
            raise HttpError(401, str(exc), headers={
                "WWW-Authenticate": 'Bearer error="invalid_token"'}) from None

    async def body_json(self, request: Request) -> Any:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in JSON_TYPES:
            raise HttpError(415, f"send JSON (Content-Type: application/json), got {kind!r}")
        cap = self.config.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise HttpError(413, f"the body is {declared} bytes; at most {cap} are accepted")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise HttpError(413, f"the body is over {cap} bytes; at most {cap} are accepted")
            chunks.append(chunk)
        try:
            text = b"".join(chunks).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise HttpError(400, "the body is not UTF-8 text") from None
        try:
            return api.parse_json(text, "body")
        except api.CaseValidationError as exc:
            raise HttpError(400, "the body is not valid JSON",
                            [e.as_dict() for e in exc.errors]) from None

    async def ask_worker(self, op: str, payload: dict[str, Any]) -> Any:
        if self.pending >= self.config.limits.max_pending:
            raise HttpError(503, "too many decisions waiting; try again shortly",
                            headers={"Retry-After": "1"})
        self.pending += 1
        try:
            loop = asyncio.get_running_loop()
            status, result = await loop.run_in_executor(self.pool, self.worker.call, op,
                                                        payload)
        except WorkerTimeout as exc:
            raise HttpError(504, f"{exc}: nothing was recorded") from None
        except WorkerError as exc:
            raise HttpError(503, str(exc), headers={"Retry-After": "1"}) from None
        finally:
            self.pending -= 1
        if status == "ok":
            return result
        if status == "invalid":
            raise HttpError(400, "the case is not a valid case file", result)
        if status == "error":
            raise HttpError(422, str(result))
        raise HttpError(500, "internal error")

    async def off_loop(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # FHIR validation is pure Python work: keep the event loop free.
        return await asyncio.to_thread(lambda: fn(*args, **kwargs))

    # ----------------------------------------------------------- endpoints

    async def service_request(
        self, request: Request, parse: Callable[[Any], _Parsed], what: str,
    ) -> _Parsed:
        """The body of a call to calfrehab's CDS service, parsed by ``parse``:
        404 for another service id, 400 naming what is wrong with the body."""
        if request.path_params["service"] != api.CDS_SERVICE_ID:
            raise HttpError(404, f"no CDS service {request.path_params['service']!r}")
        body = await self.body_json(request)
        try:
            return parse(body)
        except api.CdsRequestError as exc:
            raise HttpError(400, what, [{"path": e.path, "message": e.message}
                                        for e in exc.errors]) from None

    async def discovery(self, request: Request, client: Client | None) -> Response:
        return JSONResponse(api.cds_discovery())

    async def hook(self, request: Request, client: Client | None) -> Response:
        hook = await self.service_request(
            request, api.parse_cds_hook, "not a CDS Hooks patient-view request")
        request.state.case_id = hook.context.patientId
        # A client's retry of the same call (same hookInstance, same caller,
        # same patient) gets the answer already given, never a second
        # decision; another patient under a reused hookInstance is a new call.
        caller = f"{client.iss if client else '-'}|{hook.context.patientId}"
        key = (caller, hook.hookInstance)
        recorded = self.state.answer(*key)
        if recorded is not None:
            return JSONResponse(recorded)
        # A copy arriving while the first is still being answered (or after
        # the first request timed out) waits for that same answer. Shielded:
        # once under way it finishes, is recorded and its answer kept, even
        # if this request times out (the 504 then says so).
        task = self.in_flight.get(key)
        if task is None:
            task = asyncio.ensure_future(self.answer_hook(hook, client, key))
            self.in_flight[key] = task
            task.add_done_callback(functools.partial(self._answered, key))
        request.state.recording = task
        request.state.recording_advice = "send the same hookInstance again for its cards"
        answer = await asyncio.shield(task)
        return JSONResponse(answer)

    def _answered(self, key: tuple[str, str], task: asyncio.Future[dict[str, Any]]) -> None:
        self.in_flight.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved: a refusal nobody waited for is not an error


    async def answer_hook(self, hook: api.HookRequest, client: Client | None,
                          key: tuple[str, str]) -> dict[str, Any]:
        missing = api.cds_missing_prefetch(hook)
        if missing:
            # Spec: unable to obtain required data and the prefetch lacks it.
            raise HttpError(412, "prefetch missing: " + ", ".join(missing) + " (send the "
                            "prefetch of GET /cds-services)")
        case_id = hook.context.patientId
        hook = hook.model_copy(update={"prefetch": await self.whole_prefetch(hook, client)})
        zone = self.config.clinic_zone()
        review = datetime.now(zone).date()
        record = await self.off_loop(self.stored_case, (hook.prefetch or {})["patient"])
        try:
            _case, document = await self.off_loop(
                api.chart_case, api.cds_prefetch_bundle(hook), case_id=case_id,
                review_date=review, stored=record.document, source="prefetch", zone=zone,
                unusual=self.unusual)
        except api.NoRecord:
            answer = {"cards": [self.no_record_card(record)]}
            self.state.answered(*key, answer)
            return answer
        except api.FhirMappingError as exc:
            raise HttpError(400, "the prefetched resources do not make a case",
                            [p.as_dict() for p in exc.problems]) from None
        except api.CaseValidationError as exc:
            raise HttpError(400, f"calfrehab's record {record.name} merged with the chart is "
                            "not a valid case", [e.as_dict() for e in exc.errors]) from None
        clinician = client.who() if client else f"{hook.context.userId} (unauthenticated)"
        requester = {"hookInstance": hook.hookInstance, "iss": client.iss if client else None,
                     "sub": client.sub if client else None, "fhirServer": hook.fhirServer}
        result = await self.ask_worker("decide", {
            "document": document, "record": True, "clinician": clinician,
            "requester": requester, "source": "prefetch", "acted_on": True})
        cards, issued = api.cds_cards(result["decision"], source_url=self.config.source_url,
                                      clinician=clinician, patient_id=case_id,
                                      acted_on=result.get("acted_on"))
        sources = (self.config.source_url, self.config.app_url)
        for card in cards:
            # issue 27 item 5: no image, no link but to the configured sources, no HTML
            card["detail"] = safe_markdown(card["detail"], sources)
            card["summary"] = safe_markdown(card["summary"], ())
        if record.name is not None and record.document is not None:
            link = self.app_link(f"/patients/{record.name}", "Open the calf rehab record")
            for card in cards if link else []:
                card["links"] = [link]
        self.state.remember(issued)
        answer = {"cards": cards}
        self.state.answered(*key, answer)
        return answer

    async def whole_prefetch(self, hook: api.HookRequest, client: Client | None
                             ) -> dict[str, Any]:
        """The hook's prefetch, complete and all the patient's in context, or
        412 naming what is not (clinical-basis.md §8: data that could not be
        read is not absent data; a case holds one patient).

        What the prefetch shows is incomplete (an OperationOutcome, a failed
        or cut-off search, a page with a ``next`` link, a ``total`` above what
        it holds) is fetched from ``fhirServer`` when the request names one,
        with its ``fhirAuthorization``; otherwise, or if that fails, 412."""
        prefetch = dict(hook.prefetch or {})
        templates = api.cds_discovery()["services"][0]["prefetch"]
        keys = tuple(templates)
        gaps = api.prefetch_gaps(prefetch, keys)
        if gaps and not hook.fhirServer:
            raise HttpError(412, "the prefetch is incomplete and the request names no "
                            "fhirServer to fetch the rest from: "
                            + "; ".join(g.render() for g in gaps),
                            [{"key": g.key, "message": g.reason} for g in gaps])
        if gaps:
            assert hook.fhirServer is not None
            allowed = self.config.fhir_servers_of(client.iss if client else None)
            if not any(hook.fhirServer.rstrip("/").startswith(a.rstrip("/")) for a in allowed):
                # The request names the server; only the issuer's own may be
                # fetched from (the token is theirs, and a named server
                # could be anything on the clinic's network).
                raise HttpError(412, "the prefetch is incomplete and fhirServer "
                                f"{hook.fhirServer} is not one calfrehab may fetch from for "
                                "this issuer (issuers.fhir_servers): "
                                + "; ".join(g.render() for g in gaps),
                                [{"key": g.key, "message": g.reason} for g in gaps])
            limits = self.config.limits
            source = FhirSource(hook.fhirServer, hook.fhirAuthorization,
                                limits.fhir_timeout_s, limits.fhir_max_pages)
            try:
                prefetch = await complete(prefetch, gaps, templates,
                                          hook.context.model_dump(), source)
            except FetchError as exc:
                raise HttpError(412, "the prefetch is incomplete and the rest could not be "
                                "fetched: " + "; ".join(exc.problems),
                                [{"message": p} for p in exc.problems]) from None
        patient_id = hook.context.patientId
        patient = prefetch.get("patient")
        if not isinstance(patient, dict) or patient.get("resourceType") != "Patient":
            raise HttpError(412, f"context.patientId {patient_id} matches no Patient in the "
                            "prefetch (the patient key holds no Patient resource)")
        strangers = api.prefetch_foreign(prefetch, keys, patient_id)
        if strangers:
            raise HttpError(412, "the prefetch holds data of another patient, which is never "
                            "merged: " + "; ".join(strangers),
                            [{"message": s} for s in strangers])
        return prefetch

    def unusual(self, case: api.Case) -> list[tuple[str, str]]:
        """Each value of a chart's training outside its plausible range, as
        (case path, message): chart_case refuses them (clinical-basis §8)."""
        return [(u.path, f"{u.render()}; correct it in the record, or enter it in "
                         "calfrehab's record with its confirmation")
                for u in api.unusual_values(case, rules_dir=self.config.rules)]

    def stored_case(self, patient: dict[str, Any]) -> StoredCase:
        """calfrehab's own case file of the patient: ``<identifier>.json``
        in the cases directory, the identifier being the Patient's under the
        configured system. 422 for a file that is not JSON."""
        system, folder = self.config.patient_identifier_system, self.config.cases_dir
        if system is None or folder is None:
            return StoredCase(None, None)
        for ident in patient.get("identifier") or []:
            if not isinstance(ident, dict) or ident.get("system") != system:
                continue
            value = ident.get("value")
            if not isinstance(value, str) or not _CASE_NAME.match(value):
                continue
            path = folder / f"{value}.json"
            if not path.is_file():
                return StoredCase(value, None)
            try:
                document = api.parse_json(path.read_text(encoding="utf-8"), path.name)
            except (OSError, UnicodeDecodeError, api.CaseValidationError):
                raise HttpError(422, f"calfrehab's record {path.name} cannot be read as "
                                "JSON") from None
            if not isinstance(document, dict):
                raise HttpError(422, f"calfrehab's record {path.name} is not a case file")
            return StoredCase(value, document)
        return StoredCase(None, None)

    def app_link(self, path: str, label: str) -> dict[str, str] | None:
        if not self.config.app_url:
            return None
        return {"label": label, "url": self.config.app_url.rstrip("/") + path,
                "type": "absolute"}

    def no_record_card(self, record: StoredCase) -> dict[str, Any]:
        """What to record when neither the chart nor calfrehab holds this
        patient's training: a card, not an error (the chart is fine)."""
        card: dict[str, Any] = {
            "uuid": str(uuid.uuid4()),
            "summary": "No calf rehab record for this patient yet: start one",
            "indicator": "info",
            "detail": (
                "calfrehab decides from the training record it keeps (programme, sessions, "
                "pain per exercise) together with this chart. There is none for this patient"
                + (f" (identifier {record.name})" if record.name else "")
                + ": start one in calfrehab, with the programme the patient is on, and the "
                "next visit gets a next step."),
            "source": {"label": "calfrehab", "url": self.config.source_url},
        }
        link = self.app_link("/patients/new", "Start a calf rehab record")
        if link:
            card["links"] = [link]
        return card

    async def feedback(self, request: Request, client: Client | None) -> Response:
        """Each feedback item answered on its own: recorded, already recorded
        (the same card and outcome again records nothing), or refused with
        the reason; one bad item does not refuse the others."""
        feedback = await self.service_request(
            request, api.parse_cds_feedback, "not a CDS Hooks feedback request")
        results: list[dict[str, Any]] = []
        recorded = 0
        for n, item in enumerate(feedback.feedback):
            card = self.state.card(item.card)
            status, message = "recorded", None
            if card is None:
                status, message = "unknown", (f"feedback[{n}].card: no card {item.card} was "
                                              "issued by this service (or it has expired)")
            elif item.outcome == "accepted" and not (
                    {s.id for s in item.acceptedSuggestions or []}
                    and {s.id for s in item.acceptedSuggestions or []} <= set(card.suggestions)):
                status, message = "invalid", (f"feedback[{n}].acceptedSuggestions must name "
                                              "suggestions of that card")
            elif self.state.feedback_seen(item.card, item.outcome):
                status = "already recorded"
            else:
                request.state.case_id = card.case_id
                reason, track, decision = api.cds_feedback_reason(item, card)
                clinician = client.who() if client else card.clinician
                requester = {"hookInstance": None, "iss": client.iss if client else None,
                             "sub": client.sub if client else None, "fhirServer": None}
                try:
                    await self.ask_worker("override", {
                        "decision_id": card.decision_id, "clinician": clinician,
                        "reason": reason, "track": track, "decision": decision,
                        "requester": requester})
                except HttpError as exc:
                    if exc.status != 422:
                        raise
                    # Refused by the trail (the decision was accepted into
                    # the programme since): this item only, said why.
                    status, message = "refused", f"feedback[{n}]: {exc.message}"
                else:
                    self.state.feedback_recorded(item.card, item.outcome)
                    recorded += 1
            result = {"card": item.card, "outcome": item.outcome, "status": status}
            if message:
                result["message"] = message
            results.append(result)
        return JSONResponse({"recorded": recorded, "items": results})

    async def decide(self, request: Request, client: Client | None) -> Response:
        document = await self.body_json(request)
        if isinstance(document, dict) and isinstance(document.get("case_id"), str):
            request.state.case_id = log_safe(document["case_id"])
        record = request.query_params.get("record", "true") != "false"
        # Shielded when it records: a decision under way when the request
        # times out still finishes and is recorded, and the 504 says so.
        task = asyncio.ensure_future(self.ask_worker("decide", {
            "document": document, "record": record, "clinician": _who(client),
            "requester": {"hookInstance": None, "iss": client.iss, "sub": client.sub,
                          "fhirServer": None} if client else None}))
        if record:
            request.state.recording = task
            request.state.recording_advice = "see calfrehab audit list"
        result = await asyncio.shield(task)
        return Response(result["json"].encode("utf-8"), media_type="application/json")

    async def explain(self, request: Request, client: Client | None) -> Response:
        document = await self.body_json(request)
        if isinstance(document, dict) and isinstance(document.get("case_id"), str):
            request.state.case_id = log_safe(document["case_id"])
        result = await self.ask_worker("explain", {"document": document})
        return Response(result["json"].encode("utf-8"), media_type="application/json")

    async def openapi(self, request: Request, client: Client | None) -> Response:
        return JSONResponse(openapi_document(self.config.audience_base()))


_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# A case file's name in the cases directory (as the app addresses it): no
# dot-dot, no slash, so an identifier can never reach outside the folder.
_CASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class StoredCase:
    """calfrehab's record of a patient: its name (the identifier) and its
    document, either None when there is none."""

    name: str | None
    document: dict[str, Any] | None


def log_safe(case_id: str) -> str:
    """The case id as it may appear in the log: a well-formed id, or "?"
    (never arbitrary text from a request body)."""
    return case_id if _SAFE_ID.match(case_id) else "?"


def _warm_mapping() -> None:
    # An empty Bundle is no case, but reading it loads the models.
    with contextlib.suppress(api.FhirMappingError):
        api.case_from_fhir({"resourceType": "Bundle", "type": "collection"}, "warm-up")


def _recorded_or_not(request: Request) -> str:
    """What a 504 says of the decision it was waiting for: a 504 never
    leaves the caller to guess whether something was recorded."""
    task = getattr(request.state, "recording", None)
    advice = getattr(request.state, "recording_advice", "")
    if task is None:
        return "nothing was recorded"
    if not task.done():
        return ("the decision is still being made and is recorded if it completes; "
                + advice)
    if task.cancelled() or task.exception() is not None:
        return "nothing was recorded"
    return "the decision was recorded; " + advice


def _who(client: Client | None) -> str | None:
    return None if client is None else client.who()


def _checkpoint_if_grown(config: ServerConfig, signed: int) -> int:
    """Sign a head of the trail when it holds more entries than the last one
    signed (``signed``); returns the count signed. A failure is logged, never
    raised: the service keeps deciding, and the next run tries again."""
    schedule = config.checkpoint
    assert schedule is not None
    trail_path = api.trail_location(config.audit)
    if not trail_path.exists():  # nothing recorded yet: nothing to sign
        return signed
    try:
        with api.open_trail(trail_path) as trail:
            count = len(trail)
        if count == signed or count == 0:
            return signed
        api.audit_checkpoint(trail_path, config.resolved(schedule.key),
                             log=config.resolved(schedule.log))
        log.info("checkpoint of %d entries appended to %s", count, schedule.log)
        return count
    except api.CalfrehabError as exc:
        log.error("checkpoint not written: %s", exc)
        return signed
    except Exception:  # a scheduled task that dies would stop signing unseen
        log.exception("checkpoint not written")
        return signed


async def _checkpoint_schedule(config: ServerConfig, signed: list[int]) -> None:
    """Every ``every_s`` seconds; ``signed`` holds the count last signed, for
    the final checkpoint at shutdown to read."""
    schedule = config.checkpoint
    assert schedule is not None
    while True:
        await asyncio.sleep(schedule.every_s)
        signed[0] = await asyncio.to_thread(_checkpoint_if_grown, config, signed[0])


def create_app(config: ServerConfig) -> Starlette:
    service = Service(config)

    def route(path: str, method: str,
              work: Callable[[Request, Client | None], Awaitable[Response]]) -> Route:
        async def endpoint(request: Request) -> Response:
            return await service.guarded(request, work)
        return Route(path, endpoint, methods=[method])

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        await asyncio.to_thread(service.worker.start)
        # Load the FHIR models now, not on the first clinician's call.
        await asyncio.to_thread(api.cds_discovery)
        await asyncio.to_thread(_warm_mapping)
        log.info("decision worker ready; audit trail %s",
                 config.audit or "default (CALFREHAB_AUDIT or ~/.local/share/calfrehab)")
        signed = [-1]
        schedule = (asyncio.create_task(_checkpoint_schedule(config, signed))
                    if config.checkpoint is not None else None)
        try:
            yield
        finally:
            service.worker.stop()
            if schedule is not None:
                # The last head, once nothing more is recorded: what the
                # service wrote is covered by a checkpoint when it stops.
                schedule.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await schedule
                await asyncio.to_thread(_checkpoint_if_grown, config, signed[0])
            service.state.close()
            service.pool.shutdown(wait=False, cancel_futures=True)

    async def not_found(request: Request, exc: Exception) -> Response:
        return HttpError(404, f"no such endpoint: {request.method} {request.url.path}"
                         ).response()

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return HttpError(405, f"{request.method} is not allowed on {request.url.path}"
                         ).response()

    # CORS only for the origins configured (none by default): the CDS Hooks
    # sandbox and browser-based record systems call from a page.
    middleware = [Middleware(
        CORSMiddleware, allow_origins=list(config.cors_origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"], max_age=600,
    )] if config.cors_origins else []
    app = Starlette(
        middleware=middleware,
        routes=[
            route("/cds-services", "GET", service.discovery),
            route("/cds-services/{service}", "POST", service.hook),
            route("/cds-services/{service}/feedback", "POST", service.feedback),
            route("/v1/decide", "POST", service.decide),
            route("/v1/explain", "POST", service.explain),
            route("/openapi.json", "GET", service.openapi),
        ],
        exception_handlers={404: not_found, 405: not_allowed},
        lifespan=lifespan,
    )
    app.state.service = service
    return app
