"""Signing in to the auditor dashboard: which keys open it, the session cookie, CSRF, and no open redirect."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cmp.extensions import db
from cmp.models import ApiKey, DashboardSession
from cmp.models.types import utcnow
from cmp.services import keys, sites
from tests.conftest import make_app
from tests.dashboard.pages import csrf_token, new_key, session_of, sign_in

WRONG_KEY_TEXT = "That key cannot open the auditor dashboard"


def is_signed_in(client) -> bool:
    response = client.get("/audit")
    return response.status_code == 200


@pytest.mark.parametrize("scopes", [["audit:read"], ["admin"], ["consent:read", "audit:read"]])
def test_a_key_with_audit_read_or_admin_signs_in(client, site, scopes):
    response = sign_in(client, new_key(*scopes))

    assert response.status_code == 303
    assert response.headers["Location"] == "/audit"
    assert is_signed_in(client)


def test_the_session_cookie_is_http_only_strict_and_scoped_to_the_dashboard(client, site):
    sign_in(client, new_key("audit:read"))
    cookie = client.get_cookie("cmp_audit", path="/audit")

    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict" and cookie.path == "/audit"
    assert cookie.expires is not None  # a lifetime, not a cookie that lives as long as the browser
    assert not cookie.secure  # testing runs on http; production sets Secure (see test_production_cookie_is_secure)


def test_production_cookie_is_secure(database_url):
    app = make_app(database_url, CMP_ENV="production", CMP_PUBLIC_URL="https://cmp.example")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True


def test_the_cookie_holds_no_key(client, site):
    token = new_key("audit:read")
    sign_in(client, token)
    cookie = client.get_cookie("cmp_audit", path="/audit")
    # "cmp_<hex id>_<secret>": the secret is URL-safe base64 and may itself hold "_".
    _, key_id, secret = token.split("_", 2)

    assert secret not in cookie.value
    assert key_id not in str(session_of(client))
    # Only a random session id (the server keeps its digest) and the form token, besides Flask's own flag.
    assert set(session_of(client)) - {"_permanent"} == {"session_id", "csrf"}


@pytest.mark.parametrize(
    "token",
    ["cmp_0123456789abcdef_wrong", "not a key at all", "", "revoked", "without the scope"],
)
def test_a_key_that_cannot_audit_gets_the_form_again_with_401(client, site, token):
    if token == "revoked":
        token = new_key("audit:read")
        keys.revoke_key(token.split("_")[1])
        db.session.commit()
    elif token == "without the scope":
        token = new_key("consent:read", "consent:write", "dsr")

    response = sign_in(client, token)

    assert response.status_code == 401
    assert WRONG_KEY_TEXT in response.text
    assert 'name="api_key"' in response.text
    assert not is_signed_in(client)


def test_wrong_keys_all_get_the_same_answer(client, site):
    """Whether the key exists, is revoked or lacks the scope is not revealed."""
    revoked = new_key("audit:read")
    keys.revoke_key(revoked.split("_")[1])
    db.session.commit()
    # Junk too: a NUL byte or a control character never reaches a query (PostgreSQL refuses NUL in text).
    tokens = ["cmp_0123456789abcdef_wrong", revoked, new_key("consent:read"), "cmp_0123\x00456789_x", "cmp_\x01_\x02"]

    pages = {sign_in(client, token).text.replace(csrf_token(client), "") for token in tokens}

    assert len(pages) == 1


def test_revoking_the_key_signs_the_auditor_out(client, site):
    token = new_key("audit:read")
    sign_in(client, token)
    assert is_signed_in(client)

    keys.revoke_key(token.split("_")[1])
    db.session.commit()

    response = client.get("/audit")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/audit/login")
    assert "session_id" not in session_of(client)
    assert client.get("/audit/charts/purposes.svg").status_code == 401
    assert open_sessions() == 0


def test_losing_the_scope_signs_the_auditor_out(client, site):
    token = new_key("audit:read")
    sign_in(client, token)
    key = db.session.scalars(sa.select(ApiKey).where(ApiKey.key_id == token.split("_")[1])).one()
    key.scopes = ["consent:read"]
    db.session.commit()

    assert client.get("/audit").status_code == 303


def expire_in(seconds: float) -> None:
    """Move every open session's end to `seconds` from now, as if signed in that much earlier."""
    db.session.execute(sa.update(DashboardSession).values(expires_at=utcnow() + timedelta(seconds=seconds)))
    db.session.commit()


def open_sessions() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(DashboardSession))


def test_the_session_ends_after_its_lifetime(app, client, site):
    """However often the auditor clicks, the session lasts its lifetime from sign-in."""
    sign_in(client, new_key("audit:read"))
    [opened] = db.session.scalars(sa.select(DashboardSession))
    assert opened.expires_at - opened.created_at == app.permanent_session_lifetime

    expire_in(60)
    assert is_signed_in(client)
    expire_in(-60)
    assert not is_signed_in(client)
    assert open_sessions() == 0


def test_signing_out_ends_every_copy_of_the_session(app, client, site):
    sign_in(client, new_key("audit:read"))
    copy = app.test_client()
    copy.set_cookie("cmp_audit", client.get_cookie("cmp_audit", path="/audit").value, path="/audit")
    assert is_signed_in(copy)

    response = client.post("/audit/logout", data={"csrf_token": csrf_token(client)})

    assert response.status_code == 303
    assert not is_signed_in(copy)
    assert copy.get("/audit/charts/purposes.svg").status_code == 401
    assert open_sessions() == 0


def test_signing_in_clears_out_expired_sessions(app, client, site):
    token = new_key("audit:read")
    sign_in(client, token)
    expire_in(-1)

    sign_in(app.test_client(), token)

    assert open_sessions() == 1
    assert not is_signed_in(client)


def test_signing_in_again_ends_the_previous_session(app, client, site):
    token = new_key("audit:read")
    sign_in(client, token)
    earlier = client.get_cookie("cmp_audit", path="/audit").value
    sign_in(client, token)

    copy = app.test_client()
    copy.set_cookie("cmp_audit", earlier, path="/audit")
    assert is_signed_in(client) and not is_signed_in(copy)
    assert open_sessions() == 1


def test_the_stored_session_is_a_digest_of_the_cookies_id(client, site):
    sign_in(client, new_key("audit:read"))
    session_id = session_of(client)["session_id"]
    [stored] = db.session.scalars(sa.select(DashboardSession))

    assert len(session_id) >= 32 and stored.digest == hashlib.sha256(session_id.encode()).hexdigest()


def test_a_key_bound_to_another_site_sees_only_that_site(client, site):
    sites.create_site("blog", "Blog")
    db.session.commit()
    sign_in(client, new_key("audit:read", bound_to=["blog"]))

    page = client.get("/audit")
    assert page.status_code == 200
    assert 'value="blog"' in page.text and 'value="shop"' not in page.text

    for path in ("/audit?site=shop", "/audit/charts/purposes.svg?site=shop", "/audit/verify?site=shop"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert response.mimetype == "text/html"


def test_an_unbound_key_sees_every_site(client, site):
    sites.create_site("blog", "Blog")
    db.session.commit()
    sign_in(client, new_key("audit:read"))

    page = client.get("/audit")
    assert 'value="blog"' in page.text and 'value="shop"' in page.text
    assert client.get("/audit?site=blog").status_code == 200
    assert client.get("/audit?site=nowhere").status_code == 404


def test_sign_in_without_the_forms_token_is_refused(client, site):
    token = new_key("audit:read")
    client.get("/audit/login")

    for sent in (None, "", "forged-token"):
        data = {"api_key": token} | ({} if sent is None else {"csrf_token": sent})
        response = client.post("/audit/login", data=data)
        assert response.status_code == 400
        assert response.mimetype == "text/html"
        assert "not sent from this dashboard" in response.text
    assert not is_signed_in(client)


def test_a_token_from_another_session_is_refused(app, client, site):
    other = app.test_client()
    other.get("/audit/login")
    response = client.post("/audit/login", data={"api_key": new_key("audit:read"), "csrf_token": csrf_token(other)})
    assert response.status_code == 400


def test_signing_in_replaces_the_forms_token(client, site):
    """A token planted before sign-in (session fixation) is worth nothing after it."""
    client.get("/audit/login")
    before = csrf_token(client)
    sign_in(client, new_key("audit:read"))
    assert csrf_token(client) != before


def test_sign_out_needs_the_forms_token(client, site):
    sign_in(client, new_key("audit:read"))

    assert client.post("/audit/logout").status_code == 400
    assert is_signed_in(client)

    response = client.post("/audit/logout", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 303 and response.headers["Location"] == "/audit/login"
    assert not is_signed_in(client)


def test_pages_ask_to_sign_in_and_come_back(client, site):
    response = client.get("/audit?site=shop&from=2026-01-01")
    assert response.status_code == 303
    assert response.headers["Location"] == "/audit/login?next=/audit?site%3Dshop%26from%3D2026-01-01"

    login = client.get(response.headers["Location"])
    assert 'name="next" value="/audit?site=shop&amp;from=2026-01-01"' in login.text
    assert sign_in(client, new_key("audit:read"), next="/audit?site=shop&from=2026-01-01").headers["Location"] == (
        "/audit?site=shop&from=2026-01-01"
    )


def test_charts_answer_401_without_a_session(client, site):
    response = client.get("/audit/charts/purposes.svg?site=shop")
    assert response.status_code == 401
    assert response.mimetype == "text/html"


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/audit",
        "//evil.example/audit",
        "/\\evil.example",
        "\\\\evil.example/audit",
        "javascript:alert(1)",
        "https:evil.example",
        "/audit/../../evil",
        "/api/v1/openapi.json",
        "/audit/login",
        "/audit@evil.example",
    ],
)
def test_sign_in_never_leads_away_from_the_dashboard(client, site, next_url):
    response = sign_in(client, new_key("audit:read"), next=next_url)
    assert response.status_code == 303
    assert response.headers["Location"] == "/audit"


def test_sign_in_keeps_only_the_dashboards_own_parameters(client, site):
    next_url = "/audit/verify?site=shop&to=2026-01-31&redirect=https://evil.example"
    response = sign_in(client, new_key("audit:read"), next=next_url)
    assert response.headers["Location"] == "/audit/verify?site=shop&to=2026-01-31"


def test_a_signed_in_auditor_opening_the_form_goes_to_the_dashboard(client, site):
    sign_in(client, new_key("audit:read"))
    response = client.get("/audit/login?next=https://evil.example")
    assert response.status_code == 303 and response.headers["Location"] == "/audit"
