"""Links people follow from an email: confirm, unsubscribe (RFC 8058 one-click), the open pixel, tracked clicks.

No cookies and no login: the token in the URL is all these routes go by. Following a link to a page changes
nothing (mail scanners fetch every link of a message); only the page's button, a POST, confirms or unsubscribes.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, g, redirect, request
from sqlalchemy.exc import SQLAlchemyError

from cmp.api.email import email_tokens, lifetimes
from cmp.api.openapi import HTML, describe
from cmp.api.pages import TRANSPARENT_GIF, page_locale, render_page
from cmp.api.requests import request_evidence
from cmp.errors import DomainError, Malformed
from cmp.extensions import db
from cmp.services import email
from cmp.services.email import ONE_CLICK, UNSUBSCRIBE_PATH, Link, LinkKind
from cmp.services.sites import require_site
from cmp.vocabulary import Source

log = logging.getLogger(__name__)

bp = Blueprint("email_links", __name__)


@bp.before_request
def _browser_locale():
    # Until a token says which language its person chose, pages follow the browser.
    g.page_locale = page_locale(None, [language for language, _ in request.accept_languages])


def _link(kind: LinkKind, token: str) -> Link:
    if kind == LinkKind.UNSUBSCRIBE:
        link = email.unsubscribe_link(token, tokens=email_tokens())
    else:
        link = email_tokens().read(kind, token)
    if link.locale:
        g.page_locale = page_locale(link.locale)
    return link


def _hmac_key() -> str:
    return current_app.config["CMP_HMAC_KEY"]


PAGE = (HTML, "a page in the person's language, saying what changed")
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def _form(properties: dict, required: tuple[str, ...] = ()) -> dict:
    schema = {"type": "object", "properties": properties, **({"required": list(required)} if required else {})}
    return {"required": True, "content": {media: {"schema": schema} for media in FORMS}}


@bp.get("/email/confirm/<token>")
@describe(
    "The confirmation page: one button while the subscription is pending; opening it changes nothing",
    tag="email links",
    responses={200: PAGE, 400: PAGE, 404: PAGE, 409: PAGE},
)
def confirm_page(token: str):
    """A page with one button while the subscription is pending; opening it (as link scanners do) changes nothing."""
    link = _link(LinkKind.CONFIRM, token)
    site = require_site(link.site)
    outcome = email.confirmation(site, link)
    return render_page("email_confirm.html", g.page_locale, message=outcome.status, site=site.name)


# No CSRF token, and no Origin check: the token in the URL is the only credential (no cookie, no session rides
# along), so a forged cross-site POST needs the secret token, and whoever holds it could as well POST it from
# anywhere. The page's own form sends `Origin: null` anyway, its Referrer-Policy being no-referrer (Fetch
# standard, "append a request Origin header"). What the POST adds is intent: a person pressing the button.
@bp.post("/email/confirm/<token>")
@describe(
    "Confirm a subscription (double opt-in): the page's button, with the token alone; records confirm once",
    tag="email links",
    responses={200: PAGE, 400: PAGE, 404: PAGE, 409: PAGE, 413: PAGE},
    requestBody=_form({"confirm": {"type": "string", "enum": ["subscribe"]}}, required=("confirm",)),
)
def confirm(token: str):
    link = _link(LinkKind.CONFIRM, token)
    site = require_site(link.site)
    if request.form.get("confirm") != "subscribe":
        raise Malformed("button_not_pressed", "to confirm, POST the page's form (confirm=subscribe)")
    outcome = email.confirm(site, link, evidence=request_evidence(), hmac_key=_hmac_key(), lifetimes=lifetimes())
    return render_page("email_confirm.html", g.page_locale, message=outcome.status, site=site.name)


# Decorators apply bottom-up: the short route is registered first, so url_for builds it; the long one serves
# the signed links mailed before short ones.
@bp.get("/email/unsubscribe/<token>")
@bp.get(f"{UNSUBSCRIBE_PATH}<token>")
@describe(
    "The unsubscribe page: one button; opening it changes nothing",
    tag="email links",
    responses={200: PAGE, 400: PAGE, 404: PAGE},
)
def unsubscribe_page(token: str):
    """A page with one button; opening it (as link scanners do) changes nothing."""
    link = _link(LinkKind.UNSUBSCRIBE, token)
    site = require_site(link.site)
    message = "already_unsubscribed" if email.is_unsubscribed(site, link) else "unsubscribe"
    return render_page("email_unsubscribe.html", g.page_locale, message=message, site=site.name)


@bp.post("/email/unsubscribe/<token>")
@bp.post(f"{UNSUBSCRIBE_PATH}<token>")
@describe(
    "Unsubscribe: RFC 8058 one-click (List-Unsubscribe=One-Click) or the page's button, with the token alone",
    tag="email links",
    responses={200: PAGE, 400: PAGE, 404: PAGE, 409: PAGE, 413: PAGE},
    requestBody=_form(
        {
            "List-Unsubscribe": {"type": "string", "enum": ["One-Click"]},
            "confirm": {"type": "string", "enum": ["unsubscribe"]},
        }
    ),
)
def unsubscribe(token: str):
    link = _link(LinkKind.UNSUBSCRIBE, token)
    site = require_site(link.site)
    outcome = email.unsubscribe(
        site,
        link,
        source=_unsubscribe_source(),
        evidence=request_evidence(),
        hmac_key=_hmac_key(),
        lifetimes=lifetimes(),
    )
    return render_page("email_unsubscribe.html", g.page_locale, message=outcome.status, site=site.name)


def _unsubscribe_source() -> Source:
    # RFC 8058 section 3.1: the mail client POSTs List-Unsubscribe=One-Click, as multipart/form-data or urlencoded.
    if request.form.get("List-Unsubscribe") == "One-Click":
        return Source.ONE_CLICK
    if request.form.get("confirm") == "unsubscribe":
        return Source.EMAIL_LINK
    raise Malformed("not_one_click", f"to unsubscribe, POST {ONE_CLICK} or the page's form")


@bp.get("/t/o/<token>.gif")
@describe(
    "Email open pixel: always the same GIF; an open is recorded only where email_tracking is granted",
    tag="email links",
    responses={200: ("image/gif", "1x1 GIF")},
)
def open_pixel(token: str):
    """Always the same GIF; an open is recorded only where email tracking is granted."""
    try:
        link = email_tokens().read(LinkKind.OPEN, token)
        email.record_activity(require_site(link.site), link)
    except DomainError:
        pass  # a tampered token, or a site or subject gone: nothing to record, and nothing to tell
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("email open not recorded")
    return Response(TRANSPARENT_GIF, mimetype="image/gif")


@bp.get("/t/c/<token>")
@describe(
    "Tracked link: redirects only to the destination signed into the token; the click is recorded only where "
    "email_tracking is granted",
    tag="email links",
    responses={302: "to the signed destination", 400: PAGE, 404: PAGE},
)
def click(token: str):
    """Redirect to the destination signed into the token, never another; the click is recorded only where granted."""
    link = email_tokens().read(LinkKind.CLICK, token)
    destination = email.safe_destination(link)
    try:
        email.record_activity(require_site(link.site), link)
    except DomainError:
        pass  # the site or the subject is gone (erased): nothing to record, and the reader still gets there
    except SQLAlchemyError:
        # The destination is signed, so the reader still gets there; unknown consent records nothing.
        db.session.rollback()
        log.exception("email click not recorded")
    response = redirect(destination, 302)
    # The destination learns nothing of the token (subject, message) through Referer.
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
