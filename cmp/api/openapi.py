"""The OpenAPI 3 description of every route, generated from the marshmallow schemas with apispec."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import version

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, current_app, jsonify

from cmp.schemas.audit import ExportQuerySchema, NoticeQuerySchema, VerificationSchema, VerifyQuerySchema
from cmp.schemas.banner import BannerConfigSchema
from cmp.schemas.common import ErrorSchema, GpcSupportSchema, StatusSchema
from cmp.schemas.consent import BannerConsentSchema, ConsentResultSchema, ServerConsentSchema
from cmp.schemas.dashboard import DashboardQuerySchema
from cmp.schemas.email import (
    HeadersQuerySchema,
    HeadersResultSchema,
    SubscriptionResultSchema,
    SubscriptionSchema,
    TrackingLinksResultSchema,
    TrackingLinksSchema,
)
from cmp.schemas.lookup import (
    SITE,
    SUBJECT,
    BulkLookupResultSchema,
    BulkLookupSchema,
    LinkResultSchema,
    LinkSchema,
    LookupQuerySchema,
    LookupResultSchema,
)
from cmp.schemas.receipt import ReceiptQuerySchema, ReceiptSchema
from cmp.schemas.rights import (
    AgeResultSchema,
    AgeSchema,
    CorrectionResultSchema,
    CorrectionSchema,
    ErasureResultSchema,
    RestrictionResultSchema,
    SiteBodySchema,
    SiteQuerySchema,
    SubjectConsentsSchema,
)

bp = Blueprint("openapi", __name__)

# Every route is described; nothing is left out.
UNDOCUMENTED: frozenset[str] = frozenset()
HTML = "text/html"

JSON = "application/json"
ERRORS = {
    400: "malformed request",
    401: "no API key, or not a valid one",
    403: "the key lacks the scope or the site, or the origin is not allowed",
    404: "unknown site or resource",
    409: "conflict with what is stored",
    413: "body too large",
    415: "not application/json",
    422: "invalid input; details name the fields",
    429: "too many requests from this address (or key); Retry-After says when to try again",
    503: "the consent store is unavailable",
}


# Path parameters are checked as the views check them: the same fields, so the same lengths and patterns.
PATH_FIELDS = {"site_key": SITE, "subject": SUBJECT}


@dataclass(frozen=True)
class Operation:
    endpoint: str
    method: str
    summary: str
    tag: str
    responses: dict[int, object]  # status -> schema class, (media type, description) or description
    body: type | tuple[type, ...] | None = None  # several: the body is one of them
    query: type | None = None  # the schema the view loads the query string with
    scope: str | None = None
    # With a scope: the route also takes requests without a key from the site's allowed origins (the banner).
    origin: bool = False
    errors: tuple[int, ...] = ()
    description: str = ""
    extra: dict = field(default_factory=dict)


OPERATIONS = (
    Operation("health.healthz", "get", "Liveness", "operations", {200: StatusSchema}),
    Operation(
        "health.readyz",
        "get",
        "Readiness: the database answers and is migrated",
        "operations",
        {200: StatusSchema},
        errors=(503,),
    ),
    Operation(
        "health.gpc_support", "get", "Global Privacy Control support declaration", "operations", {200: GpcSupportSchema}
    ),
    Operation("openapi.document", "get", "This description", "operations", {200: (JSON, "OpenAPI 3 document")}),
    Operation(
        "banner.script",
        "get",
        "The banner script, minified and gzipped",
        "banner",
        {200: ("text/javascript", "the banner"), 304: "not modified"},
    ),
    Operation(
        "banner.pinned_script",
        "get",
        "The banner script at an address that never changes",
        "banner",
        {200: ("text/javascript", "the banner"), 304: "not modified"},
        errors=(404,),
    ),
    Operation(
        "sites.banner_config",
        "get",
        "What the banner shows, in the best locale, and the rule for this request",
        "banner",
        {200: BannerConfigSchema},
        errors=(404,),
        description="`locale` is a wish: an unknown or malformed one gets the best locale the site has.",
        extra={"parameters": [{"in": "query", "name": "locale", "schema": {"type": "string"}}]},
    ),
    Operation(
        "sites.preflight",
        "options",
        "CORS preflight, answered for the site's allowed origins",
        "banner",
        {204: "allowed"},
        errors=(403, 404),
    ),
    Operation(
        "sites.record",
        "post",
        "Record a decision set",
        "consents",
        {201: ConsentResultSchema},
        body=(BannerConsentSchema, ServerConsentSchema),
        scope="consent:write",
        origin=True,
        errors=(400, 401, 403, 404, 409, 413, 415, 422, 503),
        description="From the banner (no key; the Origin must be one the site allows; body as BannerConsent, the "
        "answer adds a signed visitor_id), or from a server with a consent:write key (body as ServerConsent).",
    ),
    Operation(
        "sites.link",
        "post",
        "Link identifiers of one person to one subject",
        "consents",
        {200: LinkResultSchema},
        body=LinkSchema,
        scope="consent:write",
        errors=(400, 401, 403, 404, 409, 413, 415, 422, 503),
    ),
    Operation(
        "lookup.lookup_one",
        "get",
        "May we act for this subject and purpose?",
        "lookups",
        {200: LookupResultSchema},
        query=LookupQuerySchema,
        scope="consent:read",
        errors=(401, 403, 404, 422, 503),
    ),
    Operation(
        "lookup.lookup_many",
        "post",
        "Bulk lookup: up to 10,000 subjects, one or more purposes",
        "lookups",
        {200: BulkLookupResultSchema},
        body=BulkLookupSchema,
        scope="consent:read",
        errors=(400, 401, 403, 404, 413, 415, 422, 503),
    ),
)

OPERATIONS += (
    Operation(
        "demo.demo",
        "get",
        "The demo site's support page, embedding the banner",
        "demo",
        {200: (HTML, "page")},
        errors=(404,),
    ),
    Operation(
        "demo.demo_privacy", "get", "The demo site's cookie notice", "demo", {200: (HTML, "page")}, errors=(404,)
    ),
    Operation(
        "demo.analytics",
        "get",
        "The demo's analytics script (runs only once analytics is granted)",
        "demo",
        {200: ("text/javascript", "script")},
    ),
    Operation("demo.pixel", "get", "The demo's page-view pixel", "demo", {200: ("image/gif", "1x1 GIF")}),
    Operation("demo.video", "get", "The demo's video player", "demo", {200: (HTML, "page")}),
)

PAGE = (HTML, "a page in the person's language, saying what changed")
UNSUBSCRIBE_FORM = {
    "type": "object",
    "properties": {
        "List-Unsubscribe": {"type": "string", "enum": ["One-Click"]},
        "confirm": {"type": "string", "enum": ["unsubscribe"]},
    },
}
CONFIRM_FORM = {
    "type": "object",
    "properties": {"confirm": {"type": "string", "enum": ["subscribe"]}},
    "required": ["confirm"],
}
OPERATIONS += (
    Operation(
        "email.subscribe",
        "post",
        "Start a marketing-email subscription: pending (not allowed) until its link is followed",
        "email",
        {201: SubscriptionResultSchema, 200: SubscriptionResultSchema},
        body=SubscriptionSchema,
        scope="email:write",
        errors=(400, 401, 403, 404, 409, 413, 415, 422, 503),
        description="201 with the confirmation URL for the sender to mail; 200 without one when the address "
        "is already confirmed (nothing recorded).",
    ),
    Operation(
        "email.headers",
        "get",
        "List-Unsubscribe and List-Unsubscribe-Post (RFC 8058 one-click) for one recipient",
        "email",
        {200: HeadersResultSchema},
        query=HeadersQuerySchema,
        scope="email:write",
        errors=(401, 403, 404, 422, 503),
    ),
    Operation(
        "email.tracking_links",
        "post",
        "The open pixel and tracked links for one recipient of one message",
        "email",
        {200: TrackingLinksResultSchema},
        body=TrackingLinksSchema,
        scope="email:write",
        errors=(400, 401, 403, 404, 413, 415, 422, 503),
        description="Where email_tracking is not allowed for the recipient now, open_pixel_url is null (mail no "
        "pixel) and each link's url is its destination itself.",
    ),
    Operation(
        "email_links.confirm_page",
        "get",
        "The confirmation page: one button while the subscription is pending; opening it changes nothing",
        "email links",
        {200: PAGE, 400: PAGE, 404: PAGE, 409: PAGE},
    ),
    Operation(
        "email_links.confirm",
        "post",
        "Confirm a subscription (double opt-in): the page's button, with the token alone; records confirm once",
        "email links",
        {200: PAGE, 400: PAGE, 404: PAGE, 409: PAGE, 413: PAGE},
        extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {"schema": CONFIRM_FORM},
                    "multipart/form-data": {"schema": CONFIRM_FORM},
                },
            }
        },
    ),
    Operation(
        "email_links.unsubscribe_page",
        "get",
        "The unsubscribe page: one button; opening it changes nothing",
        "email links",
        {200: PAGE, 400: PAGE, 404: PAGE},
    ),
    Operation(
        "email_links.unsubscribe",
        "post",
        "Unsubscribe: RFC 8058 one-click (List-Unsubscribe=One-Click) or the page's button, with the token alone",
        "email links",
        {200: PAGE, 400: PAGE, 404: PAGE, 409: PAGE, 413: PAGE},
        extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {"schema": UNSUBSCRIBE_FORM},
                    "application/x-www-form-urlencoded": {"schema": UNSUBSCRIBE_FORM},
                },
            }
        },
    ),
    Operation(
        "email_links.open_pixel",
        "get",
        "Email open pixel: always the same GIF; an open is recorded only where email_tracking is granted",
        "email links",
        {200: ("image/gif", "1x1 GIF")},
    ),
    Operation(
        "email_links.click",
        "get",
        "Tracked link: redirects only to the destination signed into the token; the click is recorded only where "
        "email_tracking is granted",
        "email links",
        {302: "to the signed destination", 400: PAGE, 404: PAGE},
    ),
)

# The auditor dashboard: HTML pages and SVG charts for a browser signed in with an audit:read key.
AUDIT_PAGE = (HTML, "a dashboard page")
AUDIT_SIGN_IN = "not signed in: to the sign-in page, with this address as next"
AUDIT_SITE = {
    "in": "query",
    "name": "site",
    "schema": {"type": "string"},
    "description": "default: the key's first site",
}
AUDIT_FORM = {
    "type": "object",
    "properties": {"csrf_token": {"type": "string"}, "api_key": {"type": "string"}, "next": {"type": "string"}},
}
OPERATIONS += (
    Operation(
        "audit_dashboard.login_form",
        "get",
        "The auditor sign-in form",
        "auditor dashboard",
        {200: AUDIT_PAGE, 303: "already signed in: to the dashboard"},
        extra={"parameters": [{"in": "query", "name": "next", "schema": {"type": "string"}}]},
    ),
    Operation(
        "audit_dashboard.login",
        "post",
        "Sign in with an API key holding audit:read (or admin); the session is a signed cookie",
        "auditor dashboard",
        {303: "signed in: to the dashboard", 400: AUDIT_PAGE, 401: AUDIT_PAGE, 413: AUDIT_PAGE},
        description="400 when the form's CSRF token is not this session's; 401 (the form again) for any key that "
        "cannot open the dashboard. `next` leads only to a dashboard page.",
        extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {"schema": AUDIT_FORM},
                    "multipart/form-data": {"schema": AUDIT_FORM},
                },
            }
        },
    ),
    Operation(
        "audit_dashboard.logout",
        "post",
        "Sign out of the auditor dashboard",
        "auditor dashboard",
        {303: "to the sign-in page", 400: AUDIT_PAGE, 413: AUDIT_PAGE},
        extra={
            "requestBody": {
                "required": True,
                "content": {"application/x-www-form-urlencoded": {"schema": AUDIT_FORM}},
            }
        },
    ),
    Operation(
        "audit_dashboard.dashboard",
        "get",
        "Auditor dashboard: consent and refusal rates by purpose, day, country and mode; notices; verify and export",
        "auditor dashboard",
        {200: AUDIT_PAGE, 303: AUDIT_SIGN_IN, 403: AUDIT_PAGE, 404: AUDIT_PAGE, 422: AUDIT_PAGE},
        query=DashboardQuerySchema,
    ),
    Operation(
        "audit_dashboard.chart",
        "get",
        "One dashboard chart (purposes, days, countries or modes) as SVG, with no script",
        "auditor dashboard",
        {200: ("image/svg+xml", "the chart"), 401: AUDIT_PAGE, 403: AUDIT_PAGE, 404: AUDIT_PAGE, 422: AUDIT_PAGE},
        query=DashboardQuerySchema,
    ),
    Operation(
        "audit_dashboard.verify",
        "get",
        "Verify one site's hash chain and show the result",
        "auditor dashboard",
        {200: AUDIT_PAGE, 303: AUDIT_SIGN_IN, 403: AUDIT_PAGE, 404: AUDIT_PAGE, 422: AUDIT_PAGE},
        extra={"parameters": [AUDIT_SITE]},
    ),
    Operation(
        "audit_dashboard.export_events",
        "get",
        "Download the site's whole consent log, as GET /api/v1/audit/events exports it, for the signed-in auditor",
        "auditor dashboard",
        {
            200: (("application/x-ndjson", "text/csv"), "the export, streamed"),
            303: AUDIT_SIGN_IN,
            403: AUDIT_PAGE,
            404: AUDIT_PAGE,
            422: AUDIT_PAGE,
        },
        extra={
            "parameters": [
                AUDIT_SITE,
                {"in": "query", "name": "format", "schema": {"type": "string", "enum": ["jsonl", "csv"]}},
            ]
        },
    ),
    Operation(
        "audit_dashboard.stylesheet",
        "get",
        "The dashboard's stylesheet",
        "auditor dashboard",
        {200: ("text/css", "stylesheet")},
    ),
)

SUBJECT_PATH = (
    "`subject` is any identifier of the person: email:<address>, user:<account id> or visitor:<signed id as the "
    "banner keeps it>, found through its keyed digest."
)
OPERATIONS += (
    Operation(
        "rights.access",
        "get",
        "Access: one subject's current state per purpose and all its events, with their chain fields",
        "people's rights",
        {200: SubjectConsentsSchema},
        scope="dsr",
        errors=(401, 403, 404, 422, 503),
        query=SiteQuerySchema,
        description=SUBJECT_PATH,
    ),
    Operation(
        "rights.withdraw",
        "post",
        "Withdraw: one withdraw event denying every refusable purpose of the site, web and email alike",
        "people's rights",
        {200: ConsentResultSchema},
        body=SiteBodySchema,
        scope="dsr",
        errors=(400, 401, 403, 404, 409, 413, 415, 422, 503),
        description=SUBJECT_PATH + " Earlier events are untouched; the next lookup answers withdrawn.",
    ),
    Operation(
        "rights.erase",
        "post",
        "Erase: delete the subject's links, state and email activity, empty its events' evidence, append erase",
        "people's rights",
        {200: ErasureResultSchema},
        body=SiteBodySchema,
        scope="dsr",
        errors=(400, 401, 403, 404, 413, 415, 422, 503),
        description=SUBJECT_PATH + " The chain still verifies afterwards; a second erasure is a 404.",
    ),
    Operation(
        "rights.restrict",
        "post",
        "Restrict processing: every lookup for the subject answers not allowed, reason restricted",
        "people's rights",
        {200: RestrictionResultSchema},
        body=SiteBodySchema,
        scope="dsr",
        errors=(400, 401, 403, 404, 413, 415, 422, 503),
        description=SUBJECT_PATH + " Records restrict; when the subject is restricted already, nothing is recorded "
        "and event_id is null.",
    ),
    Operation(
        "rights.unrestrict",
        "post",
        "Lift a restriction: lookups answer from the subject's decisions again",
        "people's rights",
        {200: RestrictionResultSchema},
        body=SiteBodySchema,
        scope="dsr",
        errors=(400, 401, 403, 404, 413, 415, 422, 503),
        description=SUBJECT_PATH + " Records unrestrict; when the subject is not restricted, nothing is recorded "
        "and event_id is null.",
    ),
    Operation(
        "rights.correct",
        "post",
        "Correct: the identifier in the path is replaced by another on the same subject, history and state kept",
        "people's rights",
        {200: CorrectionResultSchema},
        body=CorrectionSchema,
        scope="dsr",
        errors=(400, 401, 403, 404, 409, 413, 415, 422, 503),
        description=SUBJECT_PATH + " Records correct (no identifier in it). The old identifier then names no one; "
        "409 identifiers_conflict when the new one belongs to another subject (histories are never merged).",
    ),
    Operation(
        "rights.age",
        "post",
        "Age of digital consent: mark the subject a child or an adult; for a child only a guardian's grant counts",
        "people's rights",
        {200: AgeResultSchema},
        body=AgeSchema,
        scope="dsr",
        errors=(400, 401, 403, 404, 413, 415, 422, 503),
        description=SUBJECT_PATH + " A child is younger than the site's age of digital consent for the country. "
        "Only the outcome is kept, never the age; child or adult is recorded when it changes (else event_id is null).",
    ),
    Operation(
        "receipts.receipt",
        "get",
        "The visitor's own consent receipt (Kantara CR v1.1, then the log's own fields where Kantara has none)",
        "consents",
        {200: ReceiptSchema},
        query=ReceiptQuerySchema,
        errors=(403, 404, 422, 503),
        description="The token comes with the receipt_url of a recorded decision; any other token is a 403.",
    ),
)

EXPORT = (("application/x-ndjson", "text/csv"), "the export: an export entry, events in id order, an end entry")
OPERATIONS += (
    Operation(
        "audit.events",
        "get",
        "Export consent events with their chain fields, streamed (JSON lines or CSV)",
        "audit",
        {200: EXPORT},
        query=ExportQuerySchema,
        scope="audit:read",
        errors=(401, 403, 404, 422, 503),
        description="Constant memory at any size. `site` may repeat (none: every site the key may read). `from` "
        "(inclusive) and `to` (exclusive) are ISO 8601 times on the receive time; `subject` is visitor:, user: or "
        "email:; `purpose` keeps events deciding it. A subject nobody is known by gives an export without events.",
    ),
    Operation(
        "audit.notices",
        "get",
        "Export notice versions: exactly what visitors were shown, with each content hash",
        "audit",
        {200: (("application/x-ndjson", "text/csv"), "one notice version per line or row")},
        query=NoticeQuerySchema,
        scope="audit:read",
        errors=(401, 403, 404, 422, 503),
        description="`site` may repeat; none: every site the key may read.",
    ),
    Operation(
        "audit.verify",
        "get",
        "Recompute one site's hash chain and name the first event that does not match",
        "audit",
        {200: VerificationSchema},
        query=VerifyQuerySchema,
        scope="audit:read",
        errors=(401, 403, 404, 422, 503),
    ),
)

SCHEMAS = (ErrorSchema,)


def _path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _responses(operation: Operation) -> dict:
    responses = {}
    for status, what in operation.responses.items():
        if isinstance(what, str):
            responses[status] = {"description": what}
        elif isinstance(what, tuple):
            media, description = what
            # One media type, or several the route chooses between (a `format` parameter).
            types = media if isinstance(media, tuple) else (media,)
            responses[status] = {"description": description, "content": {m: {"schema": {}} for m in types}}
        else:
            responses[status] = {"description": what.__doc__ or "OK", "content": {JSON: {"schema": what}}}
    for status in operation.errors:
        responses[status] = {"description": ERRORS[status], "content": {JSON: {"schema": "Error"}}}
    return responses


def build(app: Flask) -> dict:
    spec = APISpec(
        title="cmp",
        version=version("cmp"),
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Consent and cookie management: banner, consent log, lookups."},
    )
    spec.components.security_scheme("apiKey", {"type": "http", "scheme": "bearer"})
    for schema in SCHEMAS:
        spec.components.schema(schema.__name__.removesuffix("Schema"), schema=schema)
    converter = next(plugin for plugin in spec.plugins if isinstance(plugin, MarshmallowPlugin)).converter
    path_schemas = {name: converter.field2property(field) for name, field in PATH_FIELDS.items()}
    rules: dict[str, list] = {}
    for rule in app.url_map.iter_rules():
        rules.setdefault(rule.endpoint, []).append(rule)
    for operation in OPERATIONS:
        for rule in rules[operation.endpoint]:
            path = _path(rule.rule)
            spec.path(path=path, operations={operation.method: _details(operation, path, path_schemas)})
    return spec.to_dict()


ORIGIN_HEADER = {
    "in": "header",
    "name": "Origin",
    "schema": {"type": "string"},
    "description": "without a key: one of the site's allowed origins, as the browser sends it",
}


def _details(operation: Operation, path: str, path_schemas: dict[str, dict]) -> dict:
    details = {
        "operationId": operation.method + "_" + re.sub(r"\W+", "_", path).strip("_"),
        "summary": operation.summary,
        "tags": [operation.tag],
        "responses": _responses(operation),
        **operation.extra,
    }
    if operation.description:
        details["description"] = operation.description
    if operation.body:
        bodies = operation.body if isinstance(operation.body, tuple) else (operation.body,)
        schema = {"oneOf": list(bodies)} if len(bodies) > 1 else bodies[0]
        details["requestBody"] = {"required": True, "content": {JSON: {"schema": schema}}}
    parameters = [
        {"in": "path", "name": name, "required": True, "schema": path_schemas.get(name, {"type": "string"})}
        for name in re.findall(r"{([^}]+)}", path)
    ]
    if operation.query:
        parameters.append({"in": "query", "schema": operation.query})
    if operation.scope:
        # OpenAPI 3.0 section 4.7.10.1: an empty requirement makes the key optional.
        details["security"] = [{"apiKey": []}, *([{}] if operation.origin else [])]
        details["description"] = (details.get("description", "") + f" Scope: {operation.scope}.").strip()
        if operation.origin:
            parameters.append(ORIGIN_HEADER)
    details["parameters"] = parameters + details.get("parameters", [])
    return details


@cache
def _document(app: Flask) -> dict:
    return build(app)


@bp.get("/api/v1/openapi.json")
def document():
    response = jsonify(_document(current_app._get_current_object()))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
