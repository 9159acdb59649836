"""Consent lookups for the marketing sender and the analytics pipeline (scope `consent:read`)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from cmp.api.requests import json_body, require_key
from cmp.errors import NotFound
from cmp.schemas.lookup import bulk_lookup_schema, lookup_query_schema
from cmp.services import lookup
from cmp.services.sites import get_site
from cmp.vocabulary import Scope

bp = Blueprint("lookup", __name__, url_prefix="/api/v1/consents")


def _answers(site_key: str, subjects: list[str], purposes: list[str]):
    require_key(Scope.CONSENT_READ, site_key)
    site = get_site(site_key)
    if site is None:
        raise NotFound("unknown_site", f"no site {site_key!r}", {"site": site_key})
    return lookup.lookup(
        site,
        subjects,
        purposes,
        hmac_key=current_app.config["CMP_HMAC_KEY"],
        visitor_ids=current_app.extensions["cmp.visitor_ids"],
    )


def _private(response):
    # Answers are about people: no cache may keep them.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/lookup")
def lookup_one():
    query = lookup_query_schema.load(request.args.to_dict())
    [answers] = _answers(query["site"], [query["subject"]], [query["purpose"]])
    body = {"site": query["site"], "subject": query["subject"], "purpose": query["purpose"]}
    return _private(jsonify({**body, **answers[query["purpose"]].as_dict()}))


# 10,000 subjects of up to 320 characters, quoted: larger than the default body limit on purpose.
BULK_MAX_BYTES = 4 * 1024 * 1024


@bp.post("/lookup")
def lookup_many():
    request.max_content_length = BULK_MAX_BYTES
    data = bulk_lookup_schema.load(json_body())
    purposes = list(dict.fromkeys(data["purposes"]))
    answers = _answers(data["site"], data["subjects"], purposes)
    results = [
        {
            "subject": subject,
            "allowed": all(a.allowed for a in by_purpose.values()),
            "purposes": {p: a.as_dict() for p, a in by_purpose.items()},
        }
        for subject, by_purpose in zip(data["subjects"], answers, strict=True)
    ]
    return _private(jsonify({"site": data["site"], "purposes": purposes, "results": results}))
