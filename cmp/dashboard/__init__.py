"""The auditor dashboard at /audit: consent statistics, notice history, log verification, export links.

Server-rendered HTML with no script, charts as SVG images beside tables of the same numbers, and
nothing about any person (policy §1.3). Auditors sign in with an API key holding `audit:read`.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache, wraps
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from flask import Blueprint, Response, current_app, make_response, redirect, render_template, request, url_for

from cmp.api.audit import download
from cmp.api.openapi import HTML, describe
from cmp.dashboard import auth
from cmp.dashboard.charts import ACTION_LABELS, CHARTS, HEIGHT, MAX_COUNTRIES, WIDTH
from cmp.errors import Invalid, Unauthenticated, Unknown
from cmp.models.types import utcnow
from cmp.schemas.dashboard import DashboardQuerySchema, dashboard_query_schema
from cmp.services import export, sites, stats, tlog
from cmp.vocabulary import EXPORT_FORMATS

bp = Blueprint("audit_dashboard", __name__)

STYLESHEET = Path(__file__).resolve().parent / "static" / "dashboard.css"
# Nothing runs and nothing loads from elsewhere; forms post only here, and no other site may frame a page.
PAGE_POLICY = (
    "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# A chart opened on its own is a document too: pygal's own <style> may apply, nothing else.
IMAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
# After sign-in the auditor lands on one of these, with only these query parameters (no open redirect).
DESTINATIONS = ("audit_dashboard.dashboard", "audit_dashboard.verify")
DESTINATION_PARAMETERS = ("site", "from", "to")

# How the OpenAPI document shows the dashboard's pages and forms.
TAG = "auditor dashboard"
PAGE = (HTML, "a dashboard page")
SIGN_IN = "not signed in: to the sign-in page, with this address as next"
SITE_PARAMETER = {
    "in": "query",
    "name": "site",
    "schema": {"type": "string"},
    "description": "default: the key's first site",
}
PERIOD_PARAMETERS = [{"in": "query", "schema": DashboardQuerySchema}]
FORM = {
    "type": "object",
    "properties": {"csrf_token": {"type": "string"}, "api_key": {"type": "string"}, "next": {"type": "string"}},
}
FORM_MEDIA = ("application/x-www-form-urlencoded", "multipart/form-data")


def _form_body(*media: str) -> dict:
    return {"required": True, "content": {m: {"schema": FORM} for m in media}}


@bp.after_request
def _protect(response: Response) -> Response:
    # Statistics and sessions are for this auditor only: no Referer leaves the site, from a page, a chart or an
    # export (no cache keeps them either, nor is any sniffed: cmp.api.headers gives every response both rules).
    response.headers["Referrer-Policy"] = "same-origin"
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = PAGE_POLICY
    elif response.mimetype == "image/svg+xml":
        response.headers["Content-Security-Policy"] = IMAGE_POLICY
    return response


def _page(template: str, status: int = 200, **context) -> Response:
    return make_response(render_template(template, csrf_token=auth.csrf_token(), **context), status)


def message_page(status: int, title: str, text: str, details: list[str] = ()) -> Response:
    """A page with a title and a sentence: how the dashboard shows an error (see `cmp.api.errors`)."""
    return _page("audit_message.html", status, title=title, text=text, details=details)


def signed_in(*, page: bool):
    """Run the view for a signed-in auditor; a page sends anyone else to sign in, an image answers 401."""

    def decorate(view):
        @wraps(view)
        def wrapper(**kwargs):
            auditor = auth.current_auditor()
            if auditor is None:
                if page:
                    return redirect(url_for(".login_form", next=request.full_path.rstrip("?")), 303)
                raise Unauthenticated("not_signed_in", "sign in to the auditor dashboard to see this chart")
            return view(auditor, **kwargs)

        return wrapper

    return decorate


def _destination(requested: str | None) -> str:
    """Where sign-in leads: a dashboard page rebuilt from `requested`'s path and known parameters, never elsewhere."""
    if requested:
        parts = urlsplit(requested)
        for endpoint in DESTINATIONS:
            if not parts.scheme and not parts.netloc and parts.path == url_for(endpoint):
                query = {name: value for name, value in parse_qsl(parts.query) if name in DESTINATION_PARAMETERS}
                return url_for(endpoint, **query)
    return url_for(".dashboard")


def _login_page(requested: str | None, status: int = 200, error: bool = False) -> Response:
    return _page("audit_login.html", status, next=_destination(requested), error=error)


@bp.get("/audit/login")
@describe(
    "The auditor sign-in form",
    tag=TAG,
    responses={200: PAGE, 303: "already signed in: to the dashboard"},
    parameters=[{"in": "query", "name": "next", "schema": {"type": "string"}}],
)
def login_form():
    if auth.current_auditor() is not None:
        return redirect(_destination(request.args.get("next")), 303)
    return _login_page(request.args.get("next"))


@bp.post("/audit/login")
@describe(
    "Sign in with an API key holding audit:read (or admin); the session is a signed cookie",
    tag=TAG,
    responses={303: "signed in: to the dashboard", 400: PAGE, 401: PAGE, 413: PAGE},
    description="400 when the form's CSRF token is not this session's; 401 (the form again) for any key that "
    "cannot open the dashboard. `next` leads only to a dashboard page.",
    requestBody=_form_body(*FORM_MEDIA),
)
def login():
    auth.check_csrf(request.form.get("csrf_token"))
    try:
        auth.sign_in(request.form.get("api_key", ""))
    except Unauthenticated:
        return _login_page(request.form.get("next"), 401, error=True)
    return redirect(_destination(request.form.get("next")), 303)


@bp.post("/audit/logout")
@describe(
    "Sign out of the auditor dashboard",
    tag=TAG,
    responses={303: "to the sign-in page", 400: PAGE, 413: PAGE},
    requestBody=_form_body("application/x-www-form-urlencoded"),
)
def logout():
    auth.check_csrf(request.form.get("csrf_token"))
    auth.sign_out()
    return redirect(url_for(".login_form"), 303)


def _selection(auditor: auth.Auditor):
    """The site and period the request asks for; the site is None only when the key has none to audit."""
    query = dashboard_query_schema.load(request.args)
    return auditor.site(query["site"]), stats.Period(query["first"], query["last"])


def _require(site) -> None:
    if site is None:
        raise Unknown("unknown_site", "this key has no site to audit")


def _required_site(auditor: auth.Auditor):
    site, _ = _selection(auditor)
    _require(site)
    return site


@bp.get("/audit")
@describe(
    "Auditor dashboard: consent and refusal rates by purpose, day, country and mode; notices; verify and export",
    tag=TAG,
    responses={200: PAGE, 303: SIGN_IN, 403: PAGE, 404: PAGE, 422: PAGE},
    parameters=PERIOD_PARAMETERS,
)
@signed_in(page=True)
def dashboard(auditor: auth.Auditor):
    site, period = _selection(auditor)
    context = {"auditor": auditor, "sites": auditor.sites(), "site": site, "period": period}
    if site is not None:
        query = {"site": site.key, "from": period.first.isoformat(), "to": period.last.isoformat()}
        context |= {
            "summary": stats.summarise(site, period),
            "notices": stats.notice_history(site),
            "overrides": sites.weakened_countries(site),
            "log": tlog.status(site),
            "log_key": tlog.log_key(),
            "charts": {name: url_for(".chart", name=name, **query) for name in CHARTS},
            "verify_url": url_for(".verify", site=site.key),
            "exports": {fmt: url_for(".export_events", site=site.key, format=fmt) for fmt in EXPORT_FORMATS},
        }
    return _page(
        "audit_dashboard.html",
        actions=ACTION_LABELS,
        max_countries=MAX_COUNTRIES,
        chart_size=(WIDTH, HEIGHT),
        **context,
    )


@bp.get("/audit/charts/<name>.svg")
@describe(
    "One dashboard chart (purposes, days, countries or modes) as SVG, with no script",
    tag=TAG,
    responses={200: ("image/svg+xml", "the chart"), 401: PAGE, 403: PAGE, 404: PAGE, 422: PAGE},
    parameters=PERIOD_PARAMETERS,
)
@signed_in(page=False)
def chart(auditor: auth.Auditor, name: str):
    draw = CHARTS.get(name)
    if draw is None:
        raise Unknown("unknown_chart", f"there is no chart {name!r}")
    site, period = _selection(auditor)
    _require(site)
    return Response(draw(site, period), mimetype="image/svg+xml")


@bp.get("/audit/verify")
@describe(
    "Check one site's latest signed checkpoint against the previous one, and show the last full verification",
    tag=TAG,
    responses={200: PAGE, 303: SIGN_IN, 403: PAGE, 404: PAGE, 422: PAGE},
    parameters=[SITE_PARAMETER],
)
@signed_in(page=True)
def verify(auditor: auth.Auditor):
    """O(log n) however long the log: the full walk of every event runs in the background (`cmp verify`)."""
    site = _required_site(auditor)
    checked_at = utcnow()
    full = stats.last_verification(site)
    return _page(
        "audit_verify.html",
        auditor=auditor,
        site=site,
        check=stats.check_latest_checkpoint(site),
        full=full,
        full_age=age(checked_at - full.checked_at) if full else None,
        checked_at=checked_at,
    )


def age(elapsed: timedelta) -> str:
    """How long ago, as a person reads it: the two largest units, rounded down ("2 d 3 h", "5 min 20 s")."""
    seconds = max(0, int(elapsed.total_seconds()))
    parts = [(seconds // 86400, "d"), (seconds // 3600 % 24, "h"), (seconds // 60 % 60, "min"), (seconds % 60, "s")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    return " ".join(f"{value} {unit}" for value, unit in parts[:2])


@bp.get("/audit/export")
@describe(
    "Download the site's whole consent log, as GET /api/v1/audit/events exports it, for the signed-in auditor",
    tag=TAG,
    responses={
        200: (("application/x-ndjson", "text/csv"), "the export, streamed"),
        303: SIGN_IN,
        403: PAGE,
        404: PAGE,
        422: PAGE,
    },
    parameters=[
        SITE_PARAMETER,
        {"in": "query", "name": "format", "schema": {"type": "string", "enum": ["jsonl", "csv"]}},
    ],
)
@signed_in(page=True)
def export_events(auditor: auth.Auditor):
    """The site's whole consent log as the audit API exports it, for the signed-in auditor's browser."""
    site = _required_site(auditor)
    fmt = request.args.get("format", "jsonl")
    if fmt not in EXPORT_FORMATS:
        raise Invalid("invalid_format", f"format must be one of {', '.join(EXPORT_FORMATS)}")
    selection = export.select_events(
        [site],
        hmac_key=current_app.config["CMP_HMAC_KEY"],
        visitor_ids=current_app.extensions["cmp.visitor_ids"],
    )
    chunks = export.render(export.export_entries(selection), fmt)
    return download(chunks, fmt, export.filename("events", [site], fmt))


@cache
def _stylesheet() -> bytes:
    return STYLESHEET.read_bytes()


@bp.get("/audit/dashboard.css")
@describe("The dashboard's stylesheet", tag=TAG, responses={200: ("text/css", "stylesheet")})
def stylesheet():
    return Response(_stylesheet(), mimetype="text/css")
