"""People's rights (scope `dsr`) over one subject's consent records: access, withdrawal, erasure, restriction,
correction of an identifier, and the age of digital consent."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from cmp.api.openapi import describe
from cmp.api.receipts import receipt_url
from cmp.api.requests import json_body, requires
from cmp.models import ApiKey, Site
from cmp.schemas.consent import ConsentResultSchema, consent_result_schema
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


def _posted(schema, key: ApiKey, subject: str) -> tuple[dict, Site, str]:
    """A rights request's body loaded with `schema`, and the site and subject id it names (see `_subject`)."""
    data = schema.load(json_body())
    return (data, *_subject(key, data["site"], subject))


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


SUBJECT_PATH = (
    "`subject` is any identifier of the person: email:<address>, user:<account id> or visitor:<signed id as the "
    "banner keeps it>, found through its keyed digest."
)


@bp.get("/<path:subject>/consents")
@describe(
    "Access: one subject's current state per purpose and all its events, with their chain fields",
    tag="people's rights",
    responses={200: SubjectConsentsSchema},
    query=SiteQuerySchema,
    errors=(404,),
    description=SUBJECT_PATH,
)
@requires(Scope.DSR)
def access(subject: str, key: ApiKey):
    query = site_query_schema.load(request.args.to_dict())
    site, subject_id = _subject(key, query["site"], subject)
    return jsonify(subject_consents_schema.dump(rights.access(site, subject_id)))


@bp.post("/<path:subject>/withdraw")
@describe(
    "Withdraw: one withdraw event denying every refusable purpose of the site, web and email alike",
    tag="people's rights",
    responses={200: ConsentResultSchema},
    body=SiteBodySchema,
    errors=(404, 409),
    description=SUBJECT_PATH + " Earlier events are untouched; the next lookup answers withdrawn.",
)
@requires(Scope.DSR, body=True)
def withdraw(subject: str, key: ApiKey):
    _, site, subject_id = _posted(site_body_schema, key, subject)
    event = rights.withdraw(
        site,
        subject_id,
        hmac_key=current_app.config["CMP_HMAC_KEY"],
        lifetimes=Lifetimes.from_settings(current_app.config),
    )
    return jsonify({**consent_result_schema.dump(event), "receipt_url": receipt_url(site, event)})


@bp.post("/<path:subject>/erase")
@describe(
    "Erase: delete the subject's links, state and email activity, empty its events' evidence, append erase",
    tag="people's rights",
    responses={200: ErasureResultSchema},
    body=SiteBodySchema,
    errors=(404,),
    description=SUBJECT_PATH + " The chain still verifies afterwards; a second erasure is a 404.",
)
@requires(Scope.DSR, body=True)
def erase(subject: str, key: ApiKey):
    _, site, subject_id = _posted(site_body_schema, key, subject)
    return jsonify(erasure_result_schema.dump(rights.erase(site, subject_id)))


@bp.post("/<path:subject>/restrict")
@describe(
    "Restrict processing: every lookup for the subject answers not allowed, reason restricted",
    tag="people's rights",
    responses={200: RestrictionResultSchema},
    body=SiteBodySchema,
    errors=(404,),
    description=SUBJECT_PATH + " Records restrict; when the subject is restricted already, nothing is recorded "
    "and event_id is null.",
)
@requires(Scope.DSR, body=True)
def restrict(subject: str, key: ApiKey):
    _, site, subject_id = _posted(site_body_schema, key, subject)
    return jsonify(restriction_result_schema.dump(rights.restrict(site, subject_id, True)))


@bp.post("/<path:subject>/unrestrict")
@describe(
    "Lift a restriction: lookups answer from the subject's decisions again",
    tag="people's rights",
    responses={200: RestrictionResultSchema},
    body=SiteBodySchema,
    errors=(404,),
    description=SUBJECT_PATH + " Records unrestrict; when the subject is not restricted, nothing is recorded "
    "and event_id is null.",
)
@requires(Scope.DSR, body=True)
def unrestrict(subject: str, key: ApiKey):
    _, site, subject_id = _posted(site_body_schema, key, subject)
    return jsonify(restriction_result_schema.dump(rights.restrict(site, subject_id, False)))


@bp.post("/<path:subject>/correct")
@describe(
    "Correct: the identifier in the path is replaced by another on the same subject, history and state kept",
    tag="people's rights",
    responses={200: CorrectionResultSchema},
    body=CorrectionSchema,
    errors=(404, 409),
    description=SUBJECT_PATH + " Records correct (no identifier in it). The old identifier then names no one; "
    "409 identifiers_conflict when the new one belongs to another subject (histories are never merged).",
)
@requires(Scope.DSR, body=True)
def correct(subject: str, key: ApiKey):
    data, site, subject_id = _posted(correction_schema, key, subject)
    correction = rights.correct(
        site,
        subject_id,
        subject,
        data["identifier"],
        hmac_key=current_app.config["CMP_HMAC_KEY"],
        visitor_ids=current_app.extensions["cmp.visitor_ids"],
    )
    return jsonify(correction_result_schema.dump(correction))


@bp.post("/<path:subject>/age")
@describe(
    "Age of digital consent: mark the subject a child or an adult; for a child only a guardian's grant counts",
    tag="people's rights",
    responses={200: AgeResultSchema},
    body=AgeSchema,
    errors=(404,),
    description=SUBJECT_PATH + " A child is younger than the site's age of digital consent for the country. "
    "Only the outcome is kept, never the age; child or adult is recorded when it changes (else event_id is null).",
)
@requires(Scope.DSR, body=True)
def age(subject: str, key: ApiKey):
    data, site, subject_id = _posted(age_schema, key, subject)
    return jsonify(age_result_schema.dump(rights.record_age(site, subject_id, data["age"], data["country"])))
