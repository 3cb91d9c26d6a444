"""The pages, and the writes behind their forms.

Each handler takes a :class:`Ctx` (the request as read by :mod:`web`: the
signed-in clinician, the checked form) and returns a response. Handlers
are plain functions run off the event loop: they read files, decide and
write the trail. Every write to a case file checks, under that case's
lock, that the file still has the sha256 the form was opened with; if not,
nothing is written and the form comes back with what was typed and
"changed since you opened it: reload".
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.responses import HTMLResponse, RedirectResponse, Response

from calfrehab.app import views
from calfrehab.app.casedir import NoSuchCase, Snapshot
from calfrehab.app.forms import Field, FieldProblem, FormAsk, field_of, precheck, rehearse
from calfrehab.app.security import DOCUMENT_CSP, security_headers
from calfrehab.app.state import AppState
from calfrehab.engine import api

STALE = "changed since you opened it: reload"
# What the patient page says after a form was saved (?done=...).
DONE = {
    "new": "New case written.",
    "session": "Session logged.",
    "morning": "Next-morning pain logged.",
    "assessment": "Assessment added.",
    "decided": "Decision recorded in the audit trail.",
    "already": "This decision was already recorded for the case as it is; nothing new.",
    "overridden": "Override recorded in the audit trail.",
    "accepted": "Accepted: the programme in the case file is now the decided one.",
}
# A clinic export of a few thousand rows is well under this.
MAX_UPLOAD_BYTES = 8 * 1024 * 1024


@dataclass
class Ctx:
    state: AppState
    user: str
    csrf: str
    method: str
    path: str
    query: dict[str, str]
    params: dict[str, str]
    form: FormData | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def value(self, key: str) -> str:
        if self.form is None:
            return ""
        v = self.form.get(key)
        return v if isinstance(v, str) else ""

    def values(self) -> dict[str, Any]:
        """The posted fields (a key given several times, as checkboxes are,
        as a list), for re-showing a form as it was typed."""
        out: dict[str, Any] = {}
        if self.form is None:
            return out
        for key in self.form:
            got = [v for v in self.form.getlist(key) if isinstance(v, str)]
            out[key] = got if len(got) > 1 else (got[0] if got else "")
        return out


class HttpProblem(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def page(ctx: Ctx, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    body = ctx.state.render(template, user=ctx.user, csrf=ctx.csrf, nav=ctx.path,
                            clinic=ctx.state.settings.clinic_name, **context)
    return HTMLResponse(body, status_code=status, headers=security_headers())


def problem(ctx: Ctx, status: int, title: str, message: str) -> HTMLResponse:
    return page(ctx, "message.html", status=status, title=title, message=message)


def redirect(url: str) -> RedirectResponse:
    # 303: after a POST, the browser GETs the page (a reload does not post again).
    return RedirectResponse(url, status_code=303, headers=security_headers())


def snapshot(ctx: Ctx) -> Snapshot:
    try:
        return ctx.state.cases.read(ctx.params["name"])
    except NoSuchCase as exc:
        raise HttpProblem(404, "No such patient", str(exc)) from None


# ---------------------------------------------------------------- patients


def patients(ctx: Ctx) -> Response:
    rows = views.patient_rows(ctx.state, ctx.query.get("q", ""), ctx.query.get("badge", ""))
    return page(ctx, "patients.html", title="Patients", rows=rows,
                q=ctx.query.get("q", ""), badge=ctx.query.get("badge", ""),
                total=len(ctx.state.cases.names()), cases_dir=str(ctx.state.settings.cases))


def patient(ctx: Ctx, *, notice: str | None = None, status: int = 200,
            kept: dict[str, Any] | None = None, error: str | None = None) -> Response:
    snap = snapshot(ctx)
    view = views.patient_view(ctx.state, snap)
    if notice is None:
        notice = DONE.get(ctx.query.get("done", ""))
    return page(ctx, "patient.html", status=status, title=view["title"], v=view,
                sha256=snap.sha256, name=snap.name, notice=notice, error=error,
                kept=kept or {}, tracks=api.TRACKS)


# ------------------------------------------------------------ interviews

# The interviews a form can run: (title, questions for a new form, run).
Interview = Callable[[Ctx, Path, api.Ask], api.Written]


def _shown(questions: list[api.Question]) -> list[Field]:
    """The fields of a form: the questions a person is asked (not the
    flag-only ones a script may give, which default from the programme),
    each labelled with its track."""
    out = []
    for q in questions:
        if q.key in api.LOG_FLAG_ONLY:
            continue
        f = field_of(q)
        track = next((t for t in api.TRACKS if q.key.startswith(t + "_")), None)
        if track is not None and not q.key.endswith("_done") and q.text.startswith(" "):
            # "  worst pain during" says which track it is about.
            f = replace(f, label=f"{api.track_title(track)}: {f.label}")
        out.append(f)
    return out


def _ticked(ctx: Ctx, key: str) -> bool:
    return ctx.value(key) == "yes"


def _run_new(ctx: Ctx, path: Path, ask: api.Ask) -> api.Written:
    return api.new_case(path, ask, rules_dir=ctx.state.settings.rules,
                        confirm_unusual=_ticked(ctx, "confirm_unusual"))


def _run_log(ctx: Ctx, path: Path, ask: api.Ask) -> api.Written:
    return api.log_session(path, ask, rules_dir=ctx.state.settings.rules,
                           second_session=_ticked(ctx, "second_session"),
                           confirm_unusual=_ticked(ctx, "confirm_unusual"))


def _run_morning(ctx: Ctx, path: Path, ask: api.Ask) -> api.Written:
    return api.log_morning(path, ask, replace=_ticked(ctx, "replace"))


def _run_assess(ctx: Ctx, path: Path, ask: api.Ask) -> api.Written:
    return api.add_assessment(path, ask, rules_dir=ctx.state.settings.rules,
                              confirm_unusual=_ticked(ctx, "confirm_unusual"))


ENTRY_FORMS: dict[str, tuple[str, Interview]] = {
    "session": ("Log a session", _run_log),
    "morning": ("Log the morning after", _run_morning),
    "assessment": ("Add an assessment", _run_assess),
}

# The library's refusals that a clinician may overrule, as boxes on the
# form (the command line's flags of the same names).
OPTIONS: dict[str, tuple[str, str]] = {
    "confirm_unusual": ("--confirm-unusual", "These unusual values are right"),
    "second_session": ("--second-session", "This is a second session on the same day"),
    "replace": ("--replace", "Replace next-morning values already there"),
}
FORM_OPTIONS: dict[str, tuple[str, ...]] = {
    "new": ("confirm_unusual",), "session": ("second_session", "confirm_unusual"),
    "morning": ("replace",), "assessment": ("confirm_unusual",),
}


def _options(kind: str, ctx: Ctx) -> list[dict[str, Any]]:
    return [{"key": k, "label": OPTIONS[k][1], "checked": _ticked(ctx, k)}
            for k in FORM_OPTIONS[kind]]


def on_screen(message: str) -> str:
    """A library message as the app says it: a command-line flag becomes
    the box of the same meaning on the form."""
    for flag, label in OPTIONS.values():
        message = message.replace(f"give {flag}", f"tick \u201c{label}\u201d")
        message = message.replace(flag, f"\u201c{label}\u201d")
    return message


def new_patient(ctx: Ctx) -> Response:
    fields = [field_of(q) for q in api.NEW_QUESTIONS]
    values: dict[str, Any] = {"review_date": ctx.state.today().isoformat()}
    if ctx.method == "GET":
        return page(ctx, "entry.html", title="New patient", fields=fields, values=values,
                    errors={}, action="/patients/new", sha256=None, name=None, top=None,
                    options=_options("new", ctx))
    values = ctx.values()
    file_name = (ctx.value("case_id") or "").strip()
    errors = precheck(api.NEW_QUESTIONS, ctx.form or {})
    top: str | None = None
    if not errors:
        try:
            path = ctx.state.cases.new_path(file_name)
        except NoSuchCase as exc:
            errors["case_id"] = str(exc)
        else:
            with ctx.state.cases.write_lock(file_name):
                try:
                    if path.exists():
                        raise FieldProblem("case_id", f"a case file {path.name} is already "
                                           "in the cases directory; choose another id")
                    _run_new(ctx, path, FormAsk(ctx.form or {}))
                except FieldProblem as exc:
                    errors[exc.key] = exc.message
                except api.CalfrehabError as exc:
                    top = on_screen(str(exc))
                else:
                    return redirect(f"/patients/{file_name}?done=new")
    return page(ctx, "entry.html", status=422, title="New patient", fields=fields,
                values=values, errors=errors, action="/patients/new", sha256=None, name=None,
                top=top or "Nothing was written: correct the fields marked below.",
                options=_options("new", ctx))


def entry_form(ctx: Ctx) -> Response:
    kind = ctx.params["form"]
    if kind not in ENTRY_FORMS:
        raise HttpProblem(404, "No such form", f"no form {kind!r}")
    title, run = ENTRY_FORMS[kind]
    snap = snapshot(ctx)
    if snap.case is None:
        return problem(ctx, 409, "The case file needs fixing first",
                       f"{snap.path.name} is not a valid case file: "
                       + "; ".join(snap.errors))
    questions = rehearse(snap.path, lambda p, a: run(ctx, p, a), ctx.state.today(),
                         api.MORNING_QUESTIONS if kind == "morning" else ())
    fields = _shown(questions)
    action = f"/patients/{snap.name}/{kind}"
    view = views.patient_view(ctx.state, snap, decide=False)
    if ctx.method == "GET":
        values = {f.key: f.default for f in fields if f.default is not None}
        return page(ctx, "entry.html", title=f"{title}: {view['title']}", fields=fields,
                    values=values, errors={}, action=action, sha256=snap.sha256,
                    name=snap.name, top=None, v=view, options=_options(kind, ctx))
    values = ctx.values()
    errors = precheck(questions, ctx.form or {})
    top = None
    status = 422
    if not errors:
        with ctx.state.cases.write_lock(snap.name):
            current = ctx.state.cases.sha256(snap.name)
            if current != ctx.value("sha256"):
                top, status = STALE, 409
                snap = ctx.state.cases.read(snap.name)
                view = views.patient_view(ctx.state, snap, decide=False)
            else:
                try:
                    run(ctx, snap.path, FormAsk(ctx.form or {}))
                except FieldProblem as exc:
                    errors[exc.key] = exc.message
                except api.CalfrehabError as exc:
                    top = on_screen(str(exc))
                else:
                    return redirect(f"/patients/{snap.name}?done={kind}")
    return page(ctx, "entry.html", status=status, title=f"{title}: {view['title']}",
                fields=fields, values=values, errors=errors, action=action,
                sha256=snap.sha256, name=snap.name, v=view, options=_options(kind, ctx),
                top=top or "Nothing was written: correct the fields marked below.")


# --------------------------------------------------------- the trail writes


def _stale(ctx: Ctx, snap: Snapshot) -> Response | None:
    if snap.sha256 != ctx.value("sha256"):
        return patient(ctx, status=409, error=STALE, kept=ctx.values())
    return None


def decide(ctx: Ctx) -> Response:
    name = ctx.params["name"]
    with ctx.state.cases.write_lock(name):
        snap = snapshot(ctx)
        stale = _stale(ctx, snap)
        if stale is not None:
            return stale
        decided = ctx.state.decided(snap)
        if decided is None:
            return patient(ctx, status=409, error="the case file is not valid; nothing decided")
        latest = views.recorded_for(ctx.state, decided.case.case_id)
        if latest and latest[-1]["case_sha256"] == decided.decision.case_sha256 \
                and latest[-1]["rulebase_sha256"] == decided.decision.rulebase.sha256:
            return redirect(f"/patients/{name}?done=already")
        api.decide_and_record(decided, ctx.state.reasoner(), audit_path=ctx.state.audit_path(),
                              clinician=ctx.user)
    return redirect(f"/patients/{name}?done=decided")


def _prescription(ctx: Ctx, track: str | None) -> dict[str, dict[str, Any]] | str | None:
    """The clinician's own prescription from the override form (None: none
    given), or what is wrong with it."""
    exercise = ctx.value("exercise").strip()
    sets, reps, load = (ctx.value(k).strip() for k in ("sets", "reps", "load_kg"))
    if not any((exercise, sets, reps, load)):
        return None
    if track is None:
        return "a prescription is for one track: choose the track"
    missing = [w for w, v in (("exercise", exercise), ("sets", sets), ("reps", reps)) if not v]
    if missing:
        return "a prescription needs " + ", ".join(missing) + " as well"
    if exercise not in views.exercises_on(ctx.state, track):
        return f"{exercise.replace('_', ' ')} is not an exercise of the {track} track"
    try:
        rx: dict[str, Any] = {"exercise": exercise, "sets": int(sets), "reps": int(reps)}
        if load:
            rx["load_kg"] = float(load.replace(",", "."))
    except ValueError:
        return "sets and reps are whole numbers, the load a number of kg"
    if rx["sets"] < 1 or rx["reps"] < 1 or rx.get("load_kg", 0) < 0:
        return "sets and reps are at least 1, the load 0 kg or more"
    return {track: rx}


def override(ctx: Ctx) -> Response:
    name = ctx.params["name"]
    reason = ctx.value("reason").strip()
    decision_id = ctx.value("decision_id").strip()
    track = ctx.value("track").strip() or None
    kind = ctx.value("decision").strip() or None
    if not reason:
        return patient(ctx, status=422, error="an override needs a reason",
                       kept=ctx.values())
    if track is not None and track not in api.TRACKS:
        return patient(ctx, status=422, error=f"no track {track!r}", kept=ctx.values())
    if kind is not None and kind not in api.DECISION_KINDS:
        return patient(ctx, status=422, error=f"no decision {kind!r}", kept=ctx.values())
    prescriptions = _prescription(ctx, track)
    if isinstance(prescriptions, str):
        return patient(ctx, status=422, error=prescriptions, kept=ctx.values())
    if prescriptions is not None and kind is None:
        return patient(ctx, status=422, kept=ctx.values(),
                       error="a prescription goes with your decision for the track: choose it")
    with ctx.state.cases.write_lock(name):
        snap = snapshot(ctx)
        stale = _stale(ctx, snap)
        if stale is not None:
            return stale
        try:
            api.override_decision(ctx.state.audit_path(), decision_id, ctx.user, reason, track,
                                  kind, prescriptions=prescriptions)
        except api.CalfrehabError as exc:
            # A form from before the decision was accepted (another tab,
            # another clinician): an accepted decision takes no override.
            return patient(ctx, status=409, error=on_screen(str(exc)), kept=ctx.values())
    return redirect(f"/patients/{name}?done=overridden")


def accept(ctx: Ctx) -> Response:
    name = ctx.params["name"]
    decision_id = ctx.value("decision_id").strip() or None
    with ctx.state.cases.write_lock(name):
        snap = snapshot(ctx)
        stale = _stale(ctx, snap)
        if stale is not None:
            return stale
        try:
            api.accept(snap.path, ctx.state.audit_path(), decision=decision_id,
                       clinician=ctx.user)
        except api.CalfrehabError as exc:
            return patient(ctx, status=409, error=on_screen(str(exc)))
    return redirect(f"/patients/{name}?done=accepted")


# ------------------------------------------------------ handout and report


def _document(ctx: Ctx, write: Callable[[Path, Path], object]) -> Response:
    snap = snapshot(ctx)
    with tempfile.TemporaryDirectory(prefix="calfrehab-app-") as scratch:
        out = Path(scratch) / "out.html"
        try:
            write(snap.path, out)
        except api.CalfrehabError as exc:
            return problem(ctx, 409, "Cannot make it", str(exc))
        body = out.read_text(encoding="utf-8")
    return HTMLResponse(body, headers=security_headers(DOCUMENT_CSP))


def handout(ctx: Ctx) -> Response:
    # With the trail, the handout says what the clinician decided (any
    # override and its reason), as `calfrehab handout --audit` does.
    audit = ctx.state.trail.path if ctx.state.trail.exists() else None
    return _document(ctx, lambda case, out: api.write_handout(
        case, out, rules_dir=ctx.state.settings.rules, audit=audit))


def report(ctx: Ctx) -> Response:
    audit = ctx.state.trail.path if ctx.state.trail.exists() else None
    return _document(ctx, lambda case, out: api.write_report(
        case, out, audit=audit, rules_dir=ctx.state.settings.rules))


# ------------------------------------------------------------------ import


def import_page(ctx: Ctx) -> Response:
    if ctx.method == "GET":
        return page(ctx, "import.html", title="Import a clinic CSV", result=None, error=None)
    upload = ctx.form.get("csv") if ctx.form is not None else None
    order = ctx.value("date_order") or None
    if not isinstance(upload, UploadFile) or not upload.filename:
        return page(ctx, "import.html", status=422, title="Import a clinic CSV", result=None,
                    error="choose a CSV file to upload")
    if order not in (None, "dmy", "mdy"):
        return page(ctx, "import.html", status=422, title="Import a clinic CSV", result=None,
                    error="date order must be day-month-year or month-day-year")
    data = upload.file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        return page(ctx, "import.html", status=413, title="Import a clinic CSV", result=None,
                    error=f"the file is over {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    with tempfile.TemporaryDirectory(prefix="calfrehab-app-") as scratch:
        src = Path(scratch) / "upload.csv"
        src.write_bytes(data)
        try:
            result = api.import_csv(src, ctx.state.settings.cases, date_order=order,  # type: ignore[arg-type]
                                    rules_dir=ctx.state.settings.rules)
        except api.CalfrehabError as exc:
            return page(ctx, "import.html", status=422, title="Import a clinic CSV",
                        result=None, error=str(exc))
    cases = [{**c.model_dump(), "name": Path(c.path).stem} for c in result.cases]
    return page(ctx, "import.html", title="Import a clinic CSV", error=None,
                result={"cases": cases, "errors": [e.render() for e in result.errors],
                        "rows_read": result.rows_read, "rows_imported": result.rows_imported,
                        "file": upload.filename})


# ------------------------------------------------------------ rules, audit


def rules(ctx: Ctx) -> Response:
    return page(ctx, "rules.html", title="Rules",
                **views.rules_view(ctx.state, ctx.query.get("condition", ""),
                                   ctx.query.get("track", "")))


def audit(ctx: Ctx) -> Response:
    return page(ctx, "audit.html", title="Audit trail", **views.audit_view(ctx.state, ctx.query))


def audit_replay(ctx: Ctx) -> Response:
    return page(ctx, "replay.html", title="Replay under the current rules",
                **views.replay_view(ctx.state))
