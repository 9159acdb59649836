"""Public site routes called by the banner (and by servers with a key): banner config and consents."""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, current_app, g, jsonify, request

from cmp.api.cors import add_cors_headers, cors_preflight
from cmp.api.openapi import describe
from cmp.api.receipts import receipt_url
from cmp.api.requests import (
    gpc_header,
    json_body,
    request_country,
    request_evidence,
    require_allowed_origin,
    requires,
    server_evidence,
)
from cmp.errors import Invalid
from cmp.models import ApiKey, Site
from cmp.schemas.banner import BannerConfigSchema
from cmp.schemas.consent import (
    BannerConsentSchema,
    ConsentResultSchema,
    ServerConsentSchema,
    banner_consent_schema,
    consent_result_schema,
    server_consent_schema,
)
from cmp.schemas.lookup import LinkResultSchema, LinkSchema, link_schema
from cmp.services import keys, lookup, notices, tlog
from cmp.services.consent import ConsentRequest, Lifetimes, record_consent
from cmp.services.evidence import Evidence
from cmp.services.identifiers import Identifier, InvalidIdentifier, new_visitor_id
from cmp.services.sites import require_site
from cmp.vocabulary import Action, GivenBy, IdentifierKind, Scope, Source

bp = Blueprint("sites", __name__, url_prefix="/api/v1/sites")
bp.after_request(add_cors_headers)


def _site(site_key: str) -> Site:
    site = require_site(site_key)
    # Kept apart from the ORM object, which a rolled-back transaction expires.
    g.allowed_origins = tuple(site.allowed_origins)
    return site


def _visitor_ids():
    return current_app.extensions["cmp.visitor_ids"]


@bp.get("/<site_key>/banner-config", provide_automatic_options=False)
@describe(
    "What the banner shows, in the best locale, and the rule for this request",
    tag="banner",
    responses={200: BannerConfigSchema},
    errors=(404,),
    description="`locale` is a wish: an unknown or malformed one gets the best locale the site has.",
    parameters=[{"in": "query", "name": "locale", "schema": {"type": "string"}}],
)
def banner_config(site_key: str):
    site = _site(site_key)
    _, country = request_country()
    body = notices.banner_configuration(
        site,
        requested_locale=request.args.get("locale"),
        accepted_languages=[language for language, _ in request.accept_languages],
        country=country,
        gpc=gpc_header(),
        lifetimes=Lifetimes.from_settings(current_app.config),
    )
    response = jsonify(body)
    # Mode and country depend on the caller's address: no shared cache may keep this.
    response.headers["Cache-Control"] = "private, max-age=60"
    response.vary.update(("Accept-Language", "Sec-GPC"))
    return response


@bp.route("/<site_key>/banner-config", methods=["OPTIONS"])
@bp.route("/<site_key>/consents", methods=["OPTIONS"])
@describe(
    "CORS preflight, answered for the site's allowed origins",
    tag="banner",
    responses={204: "allowed"},
    errors=(403, 404),
)
def preflight(site_key: str):
    return cors_preflight(_site(site_key))


def _site_first(view):
    """Find the site before anything else is checked: its allowed origins let the banner read any refusal."""

    @wraps(view)
    def with_site(site_key: str):
        return view(site=_site(site_key))

    return with_site


@bp.post("/<site_key>/consents", provide_automatic_options=False)
@describe(
    "Record a decision set",
    tag="consents",
    responses={201: ConsentResultSchema},
    body=(BannerConsentSchema, ServerConsentSchema),
    errors=(404, 409),
    description="From the banner (no key; the Origin must be one the site allows; body as BannerConsent, the "
    "answer adds a signed visitor_id), or from a server with a consent:write key (body as ServerConsent).",
)
@_site_first
@requires(Scope.CONSENT_WRITE, body=True, origin=True)
def record(site: Site, key: ApiKey | None):
    if key is None:
        return _record_from_banner(site)
    keys.authorise(key, Scope.CONSENT_WRITE, site.key)
    return _record_from_server(site)


def _record_from_banner(site: Site):
    require_allowed_origin(site)
    data = banner_consent_schema.load(json_body())
    visitor_ids = _visitor_ids()
    visitor_id = new_visitor_id()
    if data.get("visitor_id"):
        trusted = visitor_ids.unsign(site.key, data["visitor_id"])
        if trusted is None:
            # Never trusted, never recorded: the banner drops its id and retries with the fresh one.
            raise Invalid(
                "invalid_visitor_id",
                "the visitor id is not one this service signed",
                {"visitor_id": visitor_ids.sign(site.key, visitor_id)},
            )
        visitor_id = trusted
    identifier = Identifier(IdentifierKind.VISITOR, visitor_id)
    evidence = request_evidence(gpc=data["gpc"], page_url=data["page_url"])
    event = _record(site, identifier, Source.BANNER, evidence, data, new_subject=not data.get("visitor_id"))
    body = {**_acknowledgement(site, event), "visitor_id": visitor_ids.sign(site.key, visitor_id)}
    return jsonify(body), 201


def _record_from_server(site: Site):
    data = server_consent_schema.load(json_body())
    try:
        identifier = _visitor_ids().identifier(site.key, data["subject"])
    except InvalidIdentifier as exc:
        raise Invalid("invalid_subject", str(exc), {"subject": "invalid"}) from None
    event = _record(site, identifier, Source(data["source"]), server_evidence(data), data)
    return jsonify(_acknowledgement(site, event)), 201


def _acknowledgement(site: Site, event) -> dict:
    """A recorded decision as its answer: the event, its receipt's address and the log's signed entry statement."""
    return {
        **consent_result_schema.dump(event),
        "receipt_url": receipt_url(site, event),
        "signed_entry": tlog.entry_statement(site, event.id, event.hash, event.received_at),
    }


def _record(site: Site, identifier: Identifier, source: Source, evidence: Evidence, data: dict, new_subject=False):
    return record_consent(
        ConsentRequest(
            site=site,
            identifier=identifier,
            action=Action(data["action"]),
            source=source,
            decisions=data["decisions"],
            notice_version=data["notice_version"],
            locale=data["locale"],
            evidence=evidence,
            new_subject=new_subject,
            given_by=GivenBy(data["given_by"]) if data["given_by"] else None,
        ),
        hmac_key=current_app.config["CMP_HMAC_KEY"],
        lifetimes=Lifetimes.from_settings(current_app.config),
    )


@bp.post("/<site_key>/links", provide_automatic_options=False)
@describe(
    "Link identifiers of one person to one subject",
    tag="consents",
    responses={200: LinkResultSchema},
    body=LinkSchema,
    errors=(404, 409),
)
@requires(Scope.CONSENT_WRITE, body=True)
def link(site_key: str, key: ApiKey):
    """Link identifiers of one person (a signed visitor id and a user id, say) to one subject."""
    keys.authorise(key, Scope.CONSENT_WRITE, site_key)
    site = _site(site_key)
    data = link_schema.load(json_body())
    subject_id = lookup.link(
        site, data["subjects"], hmac_key=current_app.config["CMP_HMAC_KEY"], visitor_ids=_visitor_ids()
    )
    return jsonify({"subject_id": subject_id, "linked": len(data["subjects"])})
