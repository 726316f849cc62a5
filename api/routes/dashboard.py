"""The analyst dashboard: server-rendered pages behind a signed session cookie.

Sign-in exchanges a bearer token for a session (HttpOnly, SameSite=Strict, signed); the
sign-in form itself carries a CSRF token matched against a sealed cookie (no login CSRF).
Signing out revokes the session in the ledger. Every state-changing form carries the
session's CSRF token, checked on POST. Roles apply as in the
API: viewers look, analysts approve / reject / revoke, admins change the policy and allowlist
(``dashboard_policy``). The API itself never accepts the cookie, only bearer tokens, so a
cross-site request can never ride on a browser session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader

from api.auth import LOGIN_COOKIE, SESSION_COOKIE, Principal, Session, csrf_matches
from api.charts import line_chart
from api.deps import ServiceDep
from api.reasons import split_reasons
from engine.schema.decision import Action, Status
from engine.service import ServiceError

TEMPLATES = Jinja2Templates(env=Environment(loader=PackageLoader("api"), autoescape=True))
TEMPLATES.env.globals["split_reasons"] = split_reasons
VERBS = ("approve", "reject", "revoke")
QUEUE_PAGE = 20
ACTIVE_SHOWN = 500  # soonest to expire first; the API pages through the rest
MANUAL_TTLS = [(3600, "1 hour"), (6 * 3600, "6 hours"), (86_400, "1 day"), (7 * 86_400, "7 days")]

router = APIRouter(include_in_schema=False)


class LoginRequired(Exception):
    """No valid dashboard session: the browser is sent to the sign-in page."""


@dataclass(frozen=True, slots=True)
class DashboardUser:
    principal: Principal
    session: Session


def session_user(request: Request, service: ServiceDep) -> DashboardUser:
    raw = request.cookies.get(SESSION_COOKIE)
    session = request.app.state.signer.loads(raw, now=service.clock.time()) if raw else None
    if session is None or service.session_revoked(session.session_id):
        raise LoginRequired
    identity = service.identity(session.token_id)
    if identity is None:
        raise LoginRequired
    principal = Principal(name=identity.name, role=identity.role, token_id=identity.token_id)
    return DashboardUser(principal=principal, session=session)


UserDep = Annotated[DashboardUser, Depends(session_user)]


# Sent with every dashboard page: no framing (clickjacking on the approve buttons), no
# scripts or styles from anywhere but this server, no caching of pages holding CSRF tokens.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
PAGE_PREFIXES = ("/dashboard", "/login", "/logout")


def install(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def to_login(_: Request, __: LoginRequired) -> RedirectResponse:
        return RedirectResponse("/login", status_code=303)

    @app.middleware("http")
    async def page_headers(request: Request, call_next) -> Response:
        response = await call_next(request)
        if request.url.path == "/" or request.url.path.startswith(PAGE_PREFIXES):
            response.headers.update(PAGE_HEADERS)
        return response


def render(request: Request, name: str, user: DashboardUser | None, **context) -> HTMLResponse:
    status_code = context.pop("status_code", 200)
    base = {"user": user and user.principal, "csrf": user and user.session.csrf}
    return TEMPLATES.TemplateResponse(request, name, base | context, status_code=status_code)


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/dashboard", status_code=303)


def login_page(
    request: Request, service: ServiceDep, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    """The sign-in form with a fresh CSRF token, and the sealed cookie that vouches for it."""
    app = request.app
    token, cookie = app.state.signer.login_form(now=service.clock.time())
    page = render(
        request, "login.html", None, login_csrf=token, error=error, status_code=status_code
    )
    page.set_cookie(
        LOGIN_COOKIE,
        cookie,
        httponly=True,
        samesite="strict",
        secure=app.state.secure_cookies,
        path="/login",
    )
    return page


@router.get("/login")
def login_form(request: Request, service: ServiceDep) -> HTMLResponse:
    return login_page(request, service)


@router.post("/login")
def login(
    request: Request,
    service: ServiceDep,
    token: Annotated[str, Form(max_length=512)] = "",
    csrf: Annotated[str, Form(max_length=512)] = "",
) -> Response:
    app = request.app
    cookie = request.cookies.get(LOGIN_COOKIE)
    if not app.state.signer.login_form_matches(cookie, csrf, now=service.clock.time()):
        return login_page(
            request,
            service,
            error="The sign-in form expired or did not come from this site; sign in again.",
            status_code=403,
        )
    identity = service.authenticate(token.strip()) if token.strip() else None
    if identity is None:
        return login_page(request, service, error="Unknown or revoked token.", status_code=401)
    session = app.state.signer.new(
        identity.token_id, now=service.clock.time(), ttl_s=app.state.session_ttl_s
    )
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        app.state.signer.dumps(session),
        max_age=int(app.state.session_ttl_s),
        httponly=True,
        samesite="strict",
        secure=app.state.secure_cookies,
        path="/",
    )
    return response


@router.post("/logout")
def logout(service: ServiceDep, user: UserDep, csrf: Annotated[str, Form()] = "") -> Response:
    if not csrf_matches(user.session, csrf):
        return Response("CSRF check failed", status_code=403)
    service.revoke_session(user.session.session_id, expires_at=user.session.expires_at)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/dashboard")
def overview(request: Request, service: ServiceDep, user: UserDep) -> HTMLResponse:
    series = service.timeseries()
    charts = []
    if series is not None:
        times = series["t"]
        charts.append(line_chart("Requests per second", times, {"requests/s": series["rps"]}))
        charts.append(
            line_chart(
                "Blocked vs allowed (requests/s)",
                times,
                {"allowed": series["allowed"], "blocked": series["blocked"]},
            )
        )
    return render(
        request, "overview.html", user, status=service.status(), charts=charts, series=series
    )


@router.get("/dashboard/queue")
def queue(
    request: Request, service: ServiceDep, user: UserDep, cursor: str | None = None
) -> HTMLResponse:
    page = service.list_decisions(state=Status.PROPOSED, limit=QUEUE_PAGE, cursor=cursor)
    backtests = {d.id: service.backtest(decision_id=d.id) for d in page.items}
    return render(
        request,
        "queue.html",
        user,
        page=page,
        groups=queue_groups(page.items, service.held_by_guard(page.items)),
        backtests=backtests,
        now=service.now(),
        **read_flash(request),
    )


@dataclass(frozen=True, slots=True)
class QueueGroup:
    title: str
    items: list
    held: bool = False


def queue_groups(items: list, held_ids: set[str]) -> list[QueueGroup]:
    """The page's proposals grouped: blast-radius holds first, then by detector, campaigns
    (one decision over many addresses) apart from single clients; each group keeps the
    newest-first order."""
    groups: dict[tuple[str, bool], list] = {}
    held = [d for d in items if str(d.id) in held_ids]
    for d in items:
        if str(d.id) not in held_ids:
            groups.setdefault((d.detector, bool(d.members)), []).append(d)
    out = [QueueGroup("Held by the blast-radius guard", held, held=True)] if held else []
    for (detector, campaign), members in groups.items():
        kind = "campaigns" if campaign else "single clients"
        out.append(QueueGroup(f"{detector.replace('_', ' ')} · {kind}", members))
    return out


@router.get("/dashboard/active")
def active(request: Request, service: ServiceDep, user: UserDep) -> HTMLResponse:
    now = service.now()
    items = [d for d in service.active_decisions() if d.is_active(now)]
    return render(
        request,
        "active.html",
        user,
        items=items[:ACTIVE_SHOWN],
        total=len(items),
        now=now,
        actions=[a.value for a in Action],
        ttls=MANUAL_TTLS,
        **read_flash(request),
    )


@router.post("/dashboard/decisions/add")
def add_manual(
    request: Request,
    service: ServiceDep,
    user: UserDep,
    csrf: Annotated[str, Form()] = "",
    client: Annotated[str, Form(max_length=64)] = "",
    action: Annotated[str, Form(max_length=32)] = "block",
    ttl_s: Annotated[int, Form(gt=0, le=365 * 86_400)] = 3600,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """An analyst's own decision from the Active page (the API's ``POST /api/v1/decisions``)."""
    refused = refuse(request, user, csrf=csrf, role="analyst")
    if refused is not None:
        return refused
    back = "/dashboard/active"
    try:
        decision = service.add_manual(
            client=client.strip(), action=action, ttl_s=ttl_s, reason=reason, by=user.principal.name
        )
    except ServiceError as exc:
        return flash_redirect(request, back, error=str(exc))
    return flash_redirect(
        request,
        back,
        message=f"{decision.action.value} on {decision.client} added ({decision.id}).",
    )


@router.get("/dashboard/decisions/{decision_id}")
def decision_page(
    request: Request, service: ServiceDep, user: UserDep, decision_id: str
) -> HTMLResponse:
    try:
        detail = service.get_decision(decision_id)
    except ServiceError as exc:
        return render(request, "error.html", user, error=str(exc), status_code=404)
    return render(
        request,
        "decision.html",
        user,
        d=detail.decision,
        audit=detail.audit,
        backtest=service.backtest(decision_id=decision_id),
        now=service.now(),
        **read_flash(request),
    )


@router.post("/dashboard/decisions/{decision_id}/{verb}")
def transition(
    request: Request,
    service: ServiceDep,
    user: UserDep,
    decision_id: str,
    verb: str,
    csrf: Annotated[str, Form()] = "",
    comment: Annotated[str, Form(max_length=2000)] = "",
    back: Annotated[str, Form()] = "/dashboard/queue",
) -> Response:
    refused = refuse(request, user, csrf=csrf, role="analyst")
    if refused is not None:
        return refused
    if verb not in VERBS:
        return render(request, "error.html", user, error=f"No action {verb!r}.", status_code=404)
    back = back if back.startswith("/dashboard") and "//" not in back else "/dashboard/queue"
    try:
        getattr(service, verb)(decision_id, by=user.principal.name, comment=comment or None)
    except ServiceError as exc:
        return flash_redirect(request, back, error=str(exc))
    done = {"approve": "approved", "reject": "rejected", "revoke": "revoked"}[verb]
    return flash_redirect(request, back, message=f"Decision {decision_id} {done}.")


def refuse(request: Request, user: DashboardUser, *, csrf: str, role: str) -> Response | None:
    """The 403 page for a form POST with a bad CSRF token or too low a role, else None."""
    if not csrf_matches(user.session, csrf):
        return render(request, "error.html", user, error="CSRF check failed.", status_code=403)
    if not user.principal.may(role):
        return render(
            request, "error.html", user, error=f"This needs the {role} role.", status_code=403
        )
    return None


def flash_redirect(request: Request, to: str, **flash: str) -> RedirectResponse:
    """303 to ``to`` carrying a signed one-line message (nobody can forge page text)."""
    sealed = request.app.state.signer.seal("flash", flash)
    return RedirectResponse(f"{to}?flash={quote(sealed)}", status_code=303)


def read_flash(request: Request) -> dict[str, str]:
    """``message`` / ``error`` for the page, from a signed ``?flash=`` parameter."""
    raw = request.query_params.get("flash")
    doc = request.app.state.signer.unseal("flash", raw) if raw else {}
    return {k: str(doc[k]) for k in ("message", "error") if k in doc}
