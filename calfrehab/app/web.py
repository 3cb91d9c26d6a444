"""The Starlette application: routes, sign-in, CSRF, and errors as pages.

Every route goes through :func:`guard`: it finds the signed-in clinician
(on loopback with no accounts, the one local user, signed in on the first
visit), refuses a POST whose CSRF token is missing or wrong with 403
before the form is used, runs the page's handler off the event loop, and
turns a domain error into a page that says what went wrong (never a
traceback). Every response carries the security headers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from calfrehab.app import accounts as acc
from calfrehab.app import pages
from calfrehab.app.pages import Ctx, HttpProblem
from calfrehab.app.security import (
    COOKIE,
    CSRF_FIELD,
    Session,
    csrf_ok,
    security_headers,
)
from calfrehab.app.settings import LOCAL_USER, AppSettings
from calfrehab.app.state import STATIC, AppState
from calfrehab.engine import api

log = logging.getLogger("calfrehab.app")

Handler = Callable[[Ctx], Response]
# Form fields a page may post: far more than any form here has.
MAX_FIELDS = 400


def _set_cookie(response: Response, request: Request, state: AppState, sid: str) -> None:
    response.set_cookie(
        COOKIE, sid, httponly=True, samesite="strict", path="/",
        secure=state.settings.behind_tls or request.url.scheme == "https")


def _bare(state: AppState, status: int, title: str, message: str,
          session: Session | None = None) -> HTMLResponse:
    body = state.render("message.html", user=session.user if session else None,
                        csrf=session.csrf if session else "", nav="", title=title,
                        message=message, clinic=state.settings.clinic_name)
    return HTMLResponse(body, status_code=status, headers=security_headers())


def guard(handler: Handler, *, public: bool = False) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        state: AppState = request.app.state.app
        session = state.sessions.get(request.cookies.get(COOKIE))
        fresh: str | None = None
        if session is None or not session.user:
            if state.settings.single_user():
                session = state.sessions.start(LOCAL_USER)
                fresh = session.sid
            elif public:
                if session is None:
                    session = state.sessions.start("")
                    fresh = session.sid
            elif request.method == "GET":
                return RedirectResponse("/login?next=" + quote(request.url.path),
                                        status_code=303, headers=security_headers())
            else:
                return _bare(state, 403, "Sign in first", "This needs a signed-in clinician.")
        form = None
        if request.method == "POST":
            if fresh is not None:
                # A post that arrives with no session has no token to match.
                return _bare(state, 403, "Refused: no CSRF token",
                             "The form has no valid CSRF token; open the page again.")
            form = await request.form(max_files=1, max_fields=MAX_FIELDS,
                                      max_part_size=pages.MAX_UPLOAD_BYTES)
            sent = form.get(CSRF_FIELD)
            if not csrf_ok(session, sent if isinstance(sent, str) else None):
                log.warning("403 CSRF %s %s", request.method, request.url.path)
                return _bare(state, 403, "Refused: no CSRF token",
                             "The form has no valid CSRF token; open the page again.",
                             session)
        ctx = Ctx(state=state, user=session.user, csrf=session.csrf, method=request.method,
                  path=request.url.path, query=dict(request.query_params),
                  params=dict(request.path_params), form=form,
                  extra={"session": session, "request": request})
        try:
            response = await run_in_threadpool(handler, ctx)
        except HttpProblem as exc:
            response = pages.problem(ctx, exc.status, exc.title, exc.message)
        except api.CalfrehabError as exc:
            response = pages.problem(ctx, 409, "Not done", str(exc))
        except Exception as exc:  # logged by type only: messages may hold case data
            log.error("internal error %s on %s %s", type(exc).__name__, request.method,
                      request.url.path)
            response = pages.problem(ctx, 500, "Internal error",
                                     "Something went wrong; nothing more was written.")
        finally:
            if form is not None:
                await form.close()
        if fresh is not None:
            _set_cookie(response, request, state, fresh)
        new_sid = ctx.extra.get("new_sid")
        if isinstance(new_sid, str):
            _set_cookie(response, request, state, new_sid)
        if ctx.extra.get("signed_out"):
            response.delete_cookie(COOKIE, path="/")
        return response

    return endpoint


# ------------------------------------------------------------ sign in / out


def login(ctx: Ctx) -> Response:
    state = ctx.state
    target = ctx.query.get("next") or ctx.value("next") or "/patients"
    if not target.startswith("/") or target.startswith("//"):
        target = "/patients"
    if state.settings.single_user():
        return pages.redirect(target)
    if ctx.method == "GET":
        return pages.page(ctx, "login.html", title="Sign in", error=None, next=target,
                          name="")
    name = ctx.value("name").strip()
    account = acc.verify(state.settings.accounts, name, ctx.value("password"))
    if account is None:
        log.warning("failed sign-in for a name of %d characters", len(name))
        return pages.page(ctx, "login.html", status=401, title="Sign in",
                          error="That name and password do not match an account.",
                          next=target, name=name)
    old: Session = ctx.extra["session"]
    state.sessions.end(old.sid)  # a new id on sign-in: no session fixation
    ctx.extra["new_sid"] = state.sessions.start(account.name).sid
    log.info("signed in: %s", account.name)
    return pages.redirect(target)


def logout(ctx: Ctx) -> Response:
    session: Session = ctx.extra["session"]
    ctx.state.sessions.end(session.sid)
    ctx.extra["signed_out"] = True
    return pages.redirect("/login" if not ctx.state.settings.single_user() else "/patients")


def home(ctx: Ctx) -> Response:
    return pages.redirect("/patients")


class _Headers(BaseHTTPMiddleware):
    """The security headers on every response, the stylesheet's and an
    error's too (a page's own, set by its handler, are kept)."""

    async def dispatch(self, request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for key, value in security_headers().items():
            response.headers.setdefault(key, value)
        return response


def create_app(settings: AppSettings) -> Starlette:
    state = AppState(settings)

    async def not_found(request: Request, exc: Exception) -> Response:
        return _bare(state, 404, "Not found", f"There is no page {request.url.path}.")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _bare(state, 405, "Not allowed",
                     f"{request.method} is not allowed on {request.url.path}.")

    def r(path: str, handler: Handler, methods: tuple[str, ...] = ("GET",),
          public: bool = False) -> Route:
        return Route(path, guard(handler, public=public), methods=list(methods))

    routes = [
        r("/", home),
        r("/login", login, ("GET", "POST"), public=True),
        r("/logout", logout, ("POST",)),
        r("/patients", pages.patients),
        r("/patients/new", pages.new_patient, ("GET", "POST")),
        r("/patients/{name}", pages.patient),
        r("/patients/{name}/decide", pages.decide, ("POST",)),
        r("/patients/{name}/override", pages.override, ("POST",)),
        r("/patients/{name}/accept", pages.accept, ("POST",)),
        r("/patients/{name}/handout", pages.handout),
        r("/patients/{name}/report", pages.report),
        r("/patients/{name}/{form}", pages.entry_form, ("GET", "POST")),
        r("/import", pages.import_page, ("GET", "POST")),
        r("/rules", pages.rules),
        r("/audit", pages.audit),
        r("/audit/replay", pages.audit_replay),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed},
                    middleware=[Middleware(_Headers)])
    app.state.app = state
    return app


def static_dir() -> Path:
    return STATIC
