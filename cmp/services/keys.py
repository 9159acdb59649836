"""API keys: created with scopes and optional sites, stored as a digest, checked in constant time.

Also the dashboard sessions an auditor opens with a key: a random id in the cookie, its digest and end here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update

from cmp.errors import NotPermitted, Unauthenticated
from cmp.extensions import db
from cmp.models import ApiKey, DashboardSession
from cmp.models.types import utcnow
from cmp.services.sites import SiteError, get_site
from cmp.vocabulary import Scope

PREFIX = "cmp"
# A key's public id as `create_key` makes it (hex); anything else is refused before a query is built.
KEY_ID = re.compile(r"[0-9a-f]{1,32}")
# `last_used_at` is written at most this often per key, keeping writes off the hot path.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    token: str  # shown once, never stored


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(name: str, scopes: list[str], sites: list[str] = ()) -> NewKey:
    if not scopes:
        raise SiteError("a key needs at least one scope")
    scopes = [Scope(scope).value for scope in scopes]
    for site_key in sites:
        if get_site(site_key) is None:
            raise SiteError(f"no site {site_key!r}")
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        key_id=key_id,
        secret_digest=_digest(secret),
        name=name,
        scopes=sorted(set(scopes)),
        sites=sorted(set(sites)),
    )
    db.session.add(key)
    db.session.flush()
    return NewKey(key, f"{PREFIX}_{key_id}_{secret}")


def list_keys() -> list[ApiKey]:
    return list(db.session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(key_id: str) -> ApiKey:
    key = db.session.scalars(select(ApiKey).where(ApiKey.key_id == key_id)).first()
    if key is None:
        raise SiteError(f"no key {key_id!r}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        # Every dashboard session opened with it ends now, not at the auditor's next click.
        db.session.execute(delete(DashboardSession).where(DashboardSession.key_id == key.id))
        db.session.flush()
    return key


def authenticate(token: str) -> ApiKey:
    """The live key for a bearer token, or `Unauthenticated`; never says which part was wrong."""
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    key = None
    if prefix == PREFIX and KEY_ID.fullmatch(key_id) and secret:
        key = db.session.scalars(select(ApiKey).where(ApiKey.key_id == key_id)).first()
    # Compare a digest even when no key was found, so timing does not tell whether the id exists.
    expected = key.secret_digest if key else _digest("")
    if not hmac.compare_digest(expected, _digest(secret)) or key is None or key.revoked_at is not None:
        raise Unauthenticated("invalid_api_key", "the API key is not valid")
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        db.session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
        db.session.commit()
    return key


def authorise(key: ApiKey, scope: Scope, site_key: str | None = None) -> None:
    """Refuse a key that lacks `scope` (admin holds every scope) or is bound to other sites."""
    if scope.value not in key.scopes and Scope.ADMIN.value not in key.scopes:
        raise NotPermitted("insufficient_scope", f"this key lacks the {scope.value} scope", {"required": scope.value})
    if site_key is not None and key.sites and site_key not in key.sites:
        raise NotPermitted("site_not_allowed", f"this key is not bound to site {site_key!r}", {"site": site_key})


def open_session(key: ApiKey, lifetime: timedelta) -> str:
    """Open a dashboard session for `key`, ending `lifetime` from now; returns its id, for the cookie only.

    Sessions that have ended are cleared out on the way, so the table holds only live ones.
    """
    now = utcnow()
    db.session.execute(delete(DashboardSession).where(DashboardSession.expires_at <= now))
    session_id = secrets.token_urlsafe(32)
    db.session.add(
        DashboardSession(digest=_digest(session_id), key_id=key.id, created_at=now, expires_at=now + lifetime)
    )
    db.session.commit()
    return session_id


def session_key(session_id: str) -> ApiKey | None:
    """The live key of an open session, or None: the session is unknown, ended, or its key revoked."""
    row = db.session.execute(
        select(DashboardSession.expires_at, ApiKey)
        .join(ApiKey, ApiKey.id == DashboardSession.key_id)
        .where(DashboardSession.digest == _digest(session_id))
    ).first()
    if row is None or row.expires_at <= utcnow() or row.ApiKey.revoked_at is not None:
        return None
    return row.ApiKey


def end_session(session_id: str) -> None:
    """End a dashboard session for every copy of its cookie (OWASP Session Management: server-side logout)."""
    db.session.execute(delete(DashboardSession).where(DashboardSession.digest == _digest(session_id)))
    db.session.commit()
