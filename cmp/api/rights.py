"""People's rights (scope `dsr`): access to, withdrawal of and erasure of one subject's consent records."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from cmp.api.receipts import receipt_url
from cmp.api.requests import json_body, require_key
from cmp.models import ApiKey, Site
from cmp.schemas.consent import consent_result_schema
from cmp.schemas.rights import erasure_result_schema, site_body_schema, site_query_schema, subject_consents_schema
from cmp.services import keys, rights
from cmp.services.consent import Lifetimes
from cmp.services.sites import require_site
from cmp.vocabulary import Scope

bp = Blueprint("rights", __name__, url_prefix="/api/v1/subjects")


def _subject(key: ApiKey, site_key: str, subject: str) -> tuple[Site, str]:
    """The site (the key must be bound to it, if bound at all) and the subject id `subject` names there."""
    keys.authorise(key, Scope.DSR, site_key)
    site = require_site(site_key)
    subject_id = rights.find_subject(
        site,
        subject,
        hmac_key=current_app.config["CMP_HMAC_KEY"],
        visitor_ids=current_app.extensions["cmp.visitor_ids"],
    )
    return site, subject_id


def _private(response):
    # Answers are about one person: no cache may keep them.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<path:subject>/consents")
def access(subject: str):
    key = require_key(Scope.DSR)
    query = site_query_schema.load(request.args.to_dict())
    site, subject_id = _subject(key, query["site"], subject)
    return _private(jsonify(subject_consents_schema.dump(rights.access(site, subject_id))))


@bp.post("/<path:subject>/withdraw")
def withdraw(subject: str):
    payload = json_body()
    key = require_key(Scope.DSR)
    data = site_body_schema.load(payload)
    site, subject_id = _subject(key, data["site"], subject)
    event = rights.withdraw(
        site,
        subject_id,
        hmac_key=current_app.config["CMP_HMAC_KEY"],
        lifetimes=Lifetimes.from_settings(current_app.config),
    )
    return _private(jsonify({**consent_result_schema.dump(event), "receipt_url": receipt_url(site, event)}))


@bp.post("/<path:subject>/erase")
def erase(subject: str):
    payload = json_body()
    key = require_key(Scope.DSR)
    data = site_body_schema.load(payload)
    site, subject_id = _subject(key, data["site"], subject)
    return _private(jsonify(erasure_result_schema.dump(rights.erase(site, subject_id))))
