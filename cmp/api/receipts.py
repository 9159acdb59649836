"""Consent receipts, fetched by the visitor's browser across origins from the banner's settings layer."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from cmp.api.cors import add_cors_headers
from cmp.api.email import public_url
from cmp.api.openapi import describe
from cmp.models import ConsentEvent, Site
from cmp.schemas.receipt import ReceiptQuerySchema, ReceiptSchema, receipt_query_schema, receipt_schema
from cmp.services import receipts
from cmp.services.sites import require_site

bp = Blueprint("receipts", __name__, url_prefix="/api/v1/sites")
bp.after_request(add_cors_headers)


def receipt_tokens() -> receipts.ReceiptTokens:
    return current_app.extensions["cmp.receipt_tokens"]


def receipt_url(site: Site, event: ConsentEvent) -> str:
    """The absolute address of an event's receipt, on CMP_PUBLIC_URL when set, with its signed token."""
    token = receipt_tokens().sign(site.key, event.id)
    return public_url("receipts.receipt", site_key=site.key, event_id=event.id, token=token)


@bp.get("/<site_key>/receipts/<event_id>")
@describe(
    "The visitor's own consent receipt (Kantara CR v1.1, then the log's own fields where Kantara has none)",
    tag="consents",
    responses={200: ReceiptSchema},
    query=ReceiptQuerySchema,
    errors=(403, 404, 503),
    description="The token comes with the receipt_url of a recorded decision; any other token is a 403.",
)
def receipt(site_key: str, event_id: str):
    site = require_site(site_key)
    # Set before the token is checked, so the banner can read a refusal too.
    g.allowed_origins = tuple(site.allowed_origins)
    query = receipt_query_schema.load(request.args.to_dict())
    found = receipts.find_receipt(site, event_id, query["token"], tokens=receipt_tokens())
    body = receipt_schema.dump(
        receipts.receipt_document(found, storage_location=current_app.config["CMP_STORAGE_LOCATION"])
    )
    return jsonify(body)
