"""Auditor sign-in: an API key with `audit:read` pasted once, then a server-side session named by a signed cookie.

The cookie (Flask's signed session) holds only a random session id and the form token; the server keeps the
id's digest, the key and when the session ends. Every request checks that row and the key again, so signing
out ends every copy of the cookie at once, and revoking the key, or taking its scope away, signs the auditor
out at their next click.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from flask import current_app, session

from cmp.errors import Malformed, NotPermitted, Unauthenticated
from cmp.models import ApiKey, Site
from cmp.services import keys, sites
from cmp.vocabulary import Scope

SESSION_ID = "session_id"
CSRF = "csrf"


@dataclass(frozen=True)
class Auditor:
    """A signed-in auditor's key, as far as the dashboard needs it."""

    key: ApiKey

    @property
    def name(self) -> str:
        return self.key.name

    def may_audit(self, site_key: str) -> bool:
        return not self.key.sites or site_key in self.key.sites

    def sites(self) -> list[Site]:
        """The sites this key may audit: those it is bound to, or every site for an unbound key."""
        return [site for site in sites.list_sites() if self.may_audit(site.key)]

    def site(self, site_key: str | None) -> Site | None:
        """The site asked for (403 outside the key's sites, 404 unknown), or the first one when none is asked."""
        if site_key is None:
            return next(iter(self.sites()), None)
        keys.authorise(self.key, Scope.AUDIT_READ, site_key)
        return sites.require_site(site_key)


def csrf_token() -> str:
    """The token this session's forms carry, made on first use (a visitor who is not signed in has one too)."""
    token = session.get(CSRF)
    if not token:
        token = session[CSRF] = secrets.token_urlsafe(32)
    return token


def check_csrf(sent: str | None) -> None:
    """Refuse a form that does not carry this session's token: it was not sent from our own page."""
    expected = session.get(CSRF)
    if not expected or not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise Malformed("invalid_csrf_token", "the form was not sent from this dashboard, or it has expired")


def sign_in(token: str) -> Auditor:
    """Start a session for a live key with `audit:read` (or `admin`); any other key is `Unauthenticated`.

    A key that is valid but lacks the scope gets the same answer as a wrong one, so the form tells
    nobody which keys exist.
    """
    key = keys.authenticate(token.strip())
    try:
        keys.authorise(key, Scope.AUDIT_READ)
    except NotPermitted:
        raise Unauthenticated("invalid_api_key", "the API key is not valid") from None
    # A new session, and a new form token, so nothing set before sign-in carries over (session fixation).
    sign_out()
    session_id = keys.open_session(key, current_app.permanent_session_lifetime)
    session.permanent = True
    session[SESSION_ID] = session_id
    session[CSRF] = secrets.token_urlsafe(32)
    return Auditor(key)


def sign_out() -> None:
    """End the session on the server, so a copy of the cookie opens nothing either, and clear the cookie."""
    session_id = session.get(SESSION_ID)
    if session_id is not None:
        keys.end_session(session_id)
    session.clear()


def current_auditor() -> Auditor | None:
    """The signed-in auditor, checked again now; a session that has ended or whose key no longer qualifies is ended."""
    session_id = session.get(SESSION_ID)
    if session_id is None:
        return None
    key = keys.session_key(session_id)
    if key is None or not _has_scope(key):
        sign_out()
        return None
    return Auditor(key)


def _has_scope(key: ApiKey) -> bool:
    try:
        keys.authorise(key, Scope.AUDIT_READ)
    except NotPermitted:
        return False
    return True
