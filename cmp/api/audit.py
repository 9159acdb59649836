"""The auditor's routes (scope `audit:read`): the consent log and notices exported, and the log verified.

Every filter is checked, and the key's sites enforced, before the first byte is sent: a bad request gets the
usual error; once streaming has begun, the export's end entry is the sign that it is whole.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context

from cmp.api.openapi import describe
from cmp.api.requests import requires
from cmp.models import ApiKey, Site
from cmp.schemas.audit import (
    ExportQuerySchema,
    NoticeQuerySchema,
    VerificationSchema,
    VerifyQuerySchema,
    export_query_schema,
    notice_query_schema,
    verification_schema,
    verify_query_schema,
)
from cmp.services import chain, export, keys
from cmp.services.sites import get_site, list_sites, require_site
from cmp.vocabulary import Scope

bp = Blueprint("audit", __name__, url_prefix="/api/v1/audit")


def _query(schema) -> dict:
    # `site` may repeat; every other parameter is taken once.
    args = {name: request.args.get(name) for name in request.args if name != "site"}
    return schema.load({**args, "site": request.args.getlist("site")})


def _sites(key: ApiKey, asked: list[str]) -> list[Site]:
    """The sites asked for, each one the key may read; by default every site it may read."""
    if not asked:
        return [site for site in (get_site(k) for k in key.sites) if site] if key.sites else list_sites()
    for site_key in dict.fromkeys(asked):
        keys.authorise(key, Scope.AUDIT_READ, site_key)
    return [require_site(site_key) for site_key in dict.fromkeys(asked)]


def download(chunks: Iterator[str], fmt: str, name: str) -> Response:
    """A streamed file of the export; the dashboard's export links use it too."""
    response = Response(stream_with_context(chunks), mimetype=export.MEDIA_TYPES[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    # Nor may a reverse proxy hold the stream back until it is whole (nginx honours this header).
    response.headers["X-Accel-Buffering"] = "no"
    return response


EXPORT = (("application/x-ndjson", "text/csv"), "the export: an export entry, events in id order, an end entry")


@bp.get("/events")
@describe(
    "Export consent events with their log fields and signed checkpoints, streamed (JSON lines or CSV)",
    tag="audit",
    responses={200: EXPORT},
    query=ExportQuerySchema,
    errors=(404,),
    description="Constant memory at any size. `site` may repeat (none: every site the key may read). `from` "
    "(inclusive) and `to` (exclusive) are ISO 8601 times on the receive time; `subject` is visitor:, user: or "
    "email:; `purpose` keeps events deciding it. A subject nobody is known by gives an export without events.",
)
@requires(Scope.AUDIT_READ)
def events(key: ApiKey):
    query = _query(export_query_schema)
    sites = _sites(key, query["site"])
    selection = export.select_events(
        sites,
        start=query.get("start"),
        end=query.get("end"),
        subject=query.get("subject"),
        purpose=query.get("purpose"),
        hmac_key=current_app.config["CMP_HMAC_KEY"],
        visitor_ids=current_app.extensions["cmp.visitor_ids"],
    )
    fmt = query["format"]
    chunks = export.render(export.export_entries(selection), fmt)
    return download(chunks, fmt, export.filename("events", sites, fmt))


@bp.get("/notices")
@describe(
    "Export notice versions: exactly what visitors were shown, with each content hash",
    tag="audit",
    responses={200: (("application/x-ndjson", "text/csv"), "one notice version per line or row")},
    query=NoticeQuerySchema,
    errors=(404,),
    description="`site` may repeat; none: every site the key may read.",
)
@requires(Scope.AUDIT_READ)
def notices(key: ApiKey):
    query = _query(notice_query_schema)
    sites = _sites(key, query["site"])
    fmt = query["format"]
    chunks = export.render(export.notice_entries(sites), fmt, notices=True)
    return download(chunks, fmt, export.filename("notices", sites, fmt))


@bp.get("/verify")
@describe(
    "Verify one site's log: every event, and its tree against the latest signed checkpoint; name the first fault",
    tag="audit",
    responses={200: VerificationSchema},
    query=VerifyQuerySchema,
    errors=(404,),
)
@requires(Scope.AUDIT_READ)
def verify(key: ApiKey):
    query = verify_query_schema.load(request.args.to_dict())
    keys.authorise(key, Scope.AUDIT_READ, query["site"])
    site = require_site(query["site"])
    result = chain.verify_site(site)
    seq, head = chain.checkpoint(site.id)
    body = {"site": site.key, **result.as_dict(), "checkpoint": {"seq": seq, "hash": head}}
    return jsonify(verification_schema.dump(body))
