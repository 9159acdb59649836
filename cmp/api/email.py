"""The marketing sender's email API (scope `email:write`): subscriptions, unsubscribe headers, tracking links."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request, url_for

from cmp.api.openapi import describe
from cmp.api.requests import json_body, requires, server_evidence
from cmp.models import ApiKey, Site
from cmp.schemas.email import (
    HeadersQuerySchema,
    HeadersResultSchema,
    SubscriptionResultSchema,
    SubscriptionSchema,
    TrackingLinksResultSchema,
    TrackingLinksSchema,
    headers_query_schema,
    headers_result_schema,
    subscription_result_schema,
    subscription_schema,
    tracking_links_result_schema,
    tracking_links_schema,
)
from cmp.services import email, keys
from cmp.services.consent import Lifetimes
from cmp.services.email import EmailTokens
from cmp.services.sites import require_site
from cmp.vocabulary import Scope

bp = Blueprint("email", __name__, url_prefix="/api/v1/email")


def email_tokens() -> EmailTokens:
    return current_app.extensions["cmp.email_tokens"]


def lifetimes() -> Lifetimes:
    return Lifetimes.from_settings(current_app.config)


def public_url(endpoint: str, **values) -> str:
    """An absolute URL for a link that leaves in an email or a receipt.

    On CMP_PUBLIC_URL, which production requires (behind a proxy the request's own scheme is http); elsewhere on
    this request's host.
    """
    base = current_app.config["CMP_PUBLIC_URL"] or request.url_root
    return base.rstrip("/") + url_for(endpoint, **values)[len(request.script_root) :]


def _site(key: ApiKey, site_key: str) -> Site:
    keys.authorise(key, Scope.EMAIL_WRITE, site_key)
    return require_site(site_key)


@bp.post("/subscriptions")
@describe(
    "Start a marketing-email subscription: pending (not allowed) until its link is followed",
    tag="email",
    responses={201: SubscriptionResultSchema, 200: SubscriptionResultSchema},
    body=SubscriptionSchema,
    errors=(404, 409),
    description="201 with the confirmation URL for the sender to mail; 200 without one when the address "
    "is already confirmed (nothing recorded).",
)
@requires(Scope.EMAIL_WRITE, body=True)
def subscribe(key: ApiKey):
    """Start a double opt-in; the sender mails the confirmation URL to the address."""
    data = subscription_schema.load(json_body())
    site = _site(key, data["site"])
    subscription = email.subscribe(
        site,
        data["email"],
        locale=data["locale"],
        notice_version=data["notice_version"],
        evidence=server_evidence(data),
        tokens=email_tokens(),
        hmac_key=current_app.config["CMP_HMAC_KEY"],
        lifetimes=lifetimes(),
    )
    token = subscription.confirmation_token
    body = {
        "site": site.key,
        "status": subscription.status,
        "subject_id": subscription.subject_id,
        "event_id": subscription.event_id,
        "confirmation_url": token and public_url("email_links.confirm", token=token),
        "confirmation_expires_at": subscription.confirmation_expires_at,
    }
    return jsonify(subscription_result_schema.dump(body)), 201 if token else 200


@bp.get("/headers")
@describe(
    "List-Unsubscribe and List-Unsubscribe-Post (RFC 8058 one-click) for one recipient",
    tag="email",
    responses={200: HeadersResultSchema},
    query=HeadersQuerySchema,
    errors=(404,),
)
@requires(Scope.EMAIL_WRITE)
def headers(key: ApiKey):
    """List-Unsubscribe and List-Unsubscribe-Post for one recipient (RFC 2369, RFC 8058)."""
    query = headers_query_schema.load(request.args.to_dict())
    site = _site(key, query["site"])
    token = email.unsubscribe_token(
        site, query["email"], locale=query["locale"], hmac_key=current_app.config["CMP_HMAC_KEY"]
    )
    url = public_url("email_links.unsubscribe", token=token)
    body = {"site": site.key, "unsubscribe_url": url, "headers": email.list_unsubscribe_headers(url)}
    return jsonify(headers_result_schema.dump(body))


@bp.post("/tracking-links")
@describe(
    "The open pixel and tracked links for one recipient of one message",
    tag="email",
    responses={200: TrackingLinksResultSchema},
    body=TrackingLinksSchema,
    errors=(404,),
    description="Where email_tracking is not allowed for the recipient now, open_pixel_url is null (mail no "
    "pixel) and each link's url is its destination itself.",
)
@requires(Scope.EMAIL_WRITE, body=True)
def tracking_links(key: ApiKey):
    """The open pixel and tracked links for one recipient of one message, signed here so senders never make tokens.

    Where email tracking is not allowed for the recipient now there is no pixel (null) and each link is its plain
    destination.
    """
    data = tracking_links_schema.load(json_body())
    site = _site(key, data["site"])
    links = email.tracking_links(
        site,
        data["email"],
        data["message_id"],
        data["destinations"],
        tokens=email_tokens(),
        hmac_key=current_app.config["CMP_HMAC_KEY"],
    )
    body = {
        "site": site.key,
        "message_id": data["message_id"],
        "tracking": links.tracking,
        "open_pixel_url": links.open_token and public_url("email_links.open_pixel", token=links.open_token),
        "links": [
            {"destination": destination, "url": public_url("email_links.click", token=token) if token else destination}
            for destination, token in links.click_tokens
        ],
    }
    return jsonify(tracking_links_result_schema.dump(body))
