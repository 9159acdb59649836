"""People's rights (scope `dsr`) over one subject's consent records: access, withdrawal, erasure, restriction,
correction of an identifier, and the age of digital consent."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from cmp.api.receipts import receipt_url
from cmp.api.requests import json_body, require_key
from cmp.models import ApiKey, Site
from cmp.schemas.consent import consent_result_schema
from cmp.schemas.rights import (
    age_result_schema,
    age_schema,
    correction_result_schema,
    correction_schema,
    erasure_result_schema,
    restriction_result_schema,
    site_body_schema,
    site_query_schema,
    subject_consents_schema,
)
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


def _posted(schema, subject: str) -> tuple[dict, Site, str]:
    """A rights request's body, the site and the subject id, checked in the API's order: the body is JSON, then
    the key holds `dsr`, then the body's fields, then the key reaches the site and the subject exists there."""
    payload = json_body()
    key = require_key(Scope.DSR)
    data = schema.load(payload)
    site, subject_id = _subject(key, data["site"], subject)
    return data, site, subject_id


@bp.get("/<path:subject>/consents")
def access(subject: str):
    key = require_key(Scope.DSR)
    query = site_query_schema.load(request.args.to_dict())
    site, subject_id = _subject(key, query["site"], subject)
    return _private(jsonify(subject_consents_schema.dump(rights.access(site, subject_id))))


@bp.post("/<path:subject>/withdraw")
def withdraw(subject: str):
    _, site, subject_id = _posted(site_body_schema, subject)
    event = rights.withdraw(
        site,
        subject_id,
        hmac_key=current_app.config["CMP_HMAC_KEY"],
        lifetimes=Lifetimes.from_settings(current_app.config),
    )
    return _private(jsonify({**consent_result_schema.dump(event), "receipt_url": receipt_url(site, event)}))


@bp.post("/<path:subject>/erase")
def erase(subject: str):
    _, site, subject_id = _posted(site_body_schema, subject)
    return _private(jsonify(erasure_result_schema.dump(rights.erase(site, subject_id))))


@bp.post("/<path:subject>/restrict")
def restrict(subject: str):
    _, site, subject_id = _posted(site_body_schema, subject)
    return _private(jsonify(restriction_result_schema.dump(rights.restrict(site, subject_id, True))))


@bp.post("/<path:subject>/unrestrict")
def unrestrict(subject: str):
    _, site, subject_id = _posted(site_body_schema, subject)
    return _private(jsonify(restriction_result_schema.dump(rights.restrict(site, subject_id, False))))


@bp.post("/<path:subject>/correct")
def correct(subject: str):
    data, site, subject_id = _posted(correction_schema, subject)
    correction = rights.correct(
        site,
        subject_id,
        subject,
        data["identifier"],
        hmac_key=current_app.config["CMP_HMAC_KEY"],
        visitor_ids=current_app.extensions["cmp.visitor_ids"],
    )
    return _private(jsonify(correction_result_schema.dump(correction)))


@bp.post("/<path:subject>/age")
def age(subject: str):
    data, site, subject_id = _posted(age_schema, subject)
    return _private(jsonify(age_result_schema.dump(rights.record_age(site, subject_id, data["age"], data["country"]))))
