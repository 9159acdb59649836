"""The marketing sender's email API (scope `email:write`): subscriptions, unsubscribe headers, tracking links."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, jsonify, request, url_for

from cmp.api.requests import json_body, require_key, server_evidence
from cmp.models import ApiKey, Site
from cmp.schemas.email import (
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


def install_tokens(state) -> None:
    """Sign email links with the app's secret keys; registered with each blueprint that reads or makes them."""
    config = state.app.config
    state.app.extensions.setdefault(
        "cmp.email_tokens",
        EmailTokens(
            config["CMP_SECRET_KEY"],
            config["CMP_SECRET_KEY_FALLBACKS"],
            confirmation_max_age=timedelta(hours=config["CMP_CONFIRMATION_MAX_AGE_HOURS"]),
        ),
    )


bp.record_once(install_tokens)


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


def _private(response, status: int = 200):
    # Answers hold links that act for one person: no cache may keep them.
    response.headers["Cache-Control"] = "no-store"
    return response, status


@bp.post("/subscriptions")
def subscribe():
    """Start a double opt-in; the sender mails the confirmation URL to the address."""
    payload = json_body()
    key = require_key(Scope.EMAIL_WRITE)
    data = subscription_schema.load(payload)
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
    return _private(jsonify(subscription_result_schema.dump(body)), 201 if token else 200)


@bp.get("/headers")
def headers():
    """List-Unsubscribe and List-Unsubscribe-Post for one recipient (RFC 2369, RFC 8058)."""
    key = require_key(Scope.EMAIL_WRITE)
    query = headers_query_schema.load(request.args.to_dict())
    site = _site(key, query["site"])
    token = email.unsubscribe_token(
        site, query["email"], locale=query["locale"], hmac_key=current_app.config["CMP_HMAC_KEY"]
    )
    url = public_url("email_links.unsubscribe", token=token)
    body = {"site": site.key, "unsubscribe_url": url, "headers": email.list_unsubscribe_headers(url)}
    return _private(jsonify(headers_result_schema.dump(body)))


@bp.post("/tracking-links")
def tracking_links():
    """The open pixel and tracked links for one recipient of one message, signed here so senders never make tokens.

    Where email tracking is not allowed for the recipient now there is no pixel (null) and each link is its plain
    destination.
    """
    payload = json_body()
    key = require_key(Scope.EMAIL_WRITE)
    data = tracking_links_schema.load(payload)
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
    return _private(jsonify(tracking_links_result_schema.dump(body)))
