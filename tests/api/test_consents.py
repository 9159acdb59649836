"""Recording consent through POST /api/v1/sites/<site>/consents, from the banner and from servers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cmp.extensions import db
from cmp.models import ConsentEvent, ConsentState
from cmp.services import chain, keys, notes, notices, sites, tlog
from tests.helpers import CHROME, ORIGIN, bearer, counts, events, post_consent, state, tree_root


def test_accept_all_records_event_state_and_chain(client, site):
    response = post_consent(
        client,
        action="accept_all",
        locale="de",
        page_url="https://shop.example/help/article?email=a@b.example#top",
        headers={"X-Forwarded-For": "198.51.100.7"},
    )
    assert response.status_code == 201
    body = response.json
    assert body["decisions"] == {
        "necessary": "granted",
        "preferences": "granted",
        "analytics": "granted",
    }
    assert body["notice_version"] == 1
    assert body["notice_hash"] == notices.current_notice(site).content_hash
    assert body["mode"] == "opt_in"  # no GeoIP database: unknown country, strictest rule
    assert body["country"] is None

    # Acknowledged once durable, before it has a place: the answer carries the log's signed promise instead.
    assert body["seq"] is None
    promise = notes.open_note(body["signed_entry"], [tlog.log_key().verifier])
    entry = notes.parse_entry_statement(promise.text)
    assert (entry.origin, entry.event_id, entry.event_hash.hex()) == (
        tlog.log_key().origin("shop"),
        body["event_id"],
        body["hash"],
    )

    [event] = events()
    assert event.id == body["event_id"] and event.hash == body["hash"]
    # Integrated once the request committed: the first leaf of the site's tree, linked to nothing.
    assert event.seq == 1 and event.prev_hash is None
    assert tlog.latest_checkpoint(site.id).root == tree_root([event.hash])
    assert event.action == "accept_all" and event.source == "banner" and event.locale == "de"
    assert event.page_url == "https://shop.example/help/article"
    assert event.ip_prefix == "127.0.0.0"  # the test client's address, truncated; the untrusted XFF is ignored
    assert event.user_agent == {
        "browser": "Chrome",
        "browser_major": 120,
        "os": "Windows",
        "device": "desktop",
        "bot": False,
    }
    assert event.expires_at - event.received_at == timedelta(days=365)
    assert state(event.subject_id) == body["decisions"]
    assert chain.verify_site(site).ok


def test_event_ids_are_sortable_and_unguessable(client, site):
    ids = [post_consent(client, action="reject_all").json["event_id"] for _ in range(5)]
    assert ids == sorted(ids)
    assert len({event_id[10:] for event_id in ids}) == 5  # 80 random bits each, not a counter
    assert all(len(event_id) == 26 for event_id in ids)


def test_visitor_id_is_signed_and_reused(client, site):
    first = post_consent(client, action="accept_all").json
    signed = first["visitor_id"]
    assert "." in signed
    second = post_consent(client, action="save", visitor_id=signed, decisions={"analytics": "denied"}).json
    assert second["subject_id"] == first["subject_id"]
    assert second["visitor_id"] == signed
    assert state(first["subject_id"])["analytics"] == "denied"
    assert state(first["subject_id"])["preferences"] == "granted"


@pytest.mark.parametrize(
    "forged",
    [
        "AAAAAAAAAAAAAAAAAAAAAA",  # unsigned
        "AAAAAAAAAAAAAAAAAAAAAA.c2lnbmF0dXJl",  # made-up signature
    ],
)
def test_forged_visitor_id_is_refused_and_a_new_one_issued(client, site, forged):
    before = counts()
    response = post_consent(client, action="accept_all", visitor_id=forged)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "invalid_visitor_id"
    fresh = response.json["error"]["details"]["visitor_id"]
    assert counts() == before
    retried = post_consent(client, action="accept_all", visitor_id=fresh)
    assert retried.status_code == 201


def test_tampered_visitor_id_is_refused(client, site):
    signed = post_consent(client, action="accept_all").json["visitor_id"]
    value, signature = signed.split(".")
    tampered = ("B" if value[0] != "B" else "C") + value[1:] + "." + signature
    before = counts()
    response = post_consent(client, action="reject_all", visitor_id=tampered)
    assert response.status_code == 422
    assert counts() == before


def test_visitor_id_of_one_site_is_not_accepted_by_another(client, site):
    other = sites.create_site("blog", "Blog", origins=[ORIGIN])
    notices.publish_notice(other)
    signed = post_consent(client, action="accept_all").json["visitor_id"]
    response = post_consent(client, "blog", action="accept_all", visitor_id=signed)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "invalid_visitor_id"


def test_reject_all_denies_every_refusable_purpose_and_keeps_necessary(client, site):
    body = post_consent(client, action="reject_all").json
    assert body["decisions"] == {"necessary": "granted", "preferences": "denied", "analytics": "denied"}
    event = db.session.get(ConsentEvent, body["event_id"])
    assert event.expires_at - event.received_at == timedelta(days=182)  # a refusal is asked again after 6 months


def test_save_records_only_what_was_decided(client, site):
    body = post_consent(client, action="save", decisions={"analytics": "granted"}).json
    assert body["decisions"] == {"analytics": "granted", "necessary": "granted"}
    rows = {row.purpose: row for row in db.session.scalars(db.select(ConsentState))}
    assert rows["analytics"].expires_at - rows["analytics"].decided_at == timedelta(days=365)
    assert "preferences" not in rows


def test_withdraw_denies_all_non_necessary_and_keeps_earlier_events(client, site):
    signed = post_consent(client, action="accept_all").json["visitor_id"]
    body = post_consent(client, action="withdraw", visitor_id=signed).json
    assert body["decisions"] == {"necessary": "granted", "preferences": "denied", "analytics": "denied"}
    first, second = events()
    assert first.action == "accept_all" and first.decisions["analytics"] == "granted"
    assert second.action == "withdraw"
    assert state(second.subject_id)["analytics"] == "denied"


def test_gpc_header_is_recorded(client, site):
    body = post_consent(client, action="reject_all", headers={"Sec-GPC": "1"}).json
    assert body["gpc"] is True
    assert events()[0].gpc is True


def test_gpc_action_needs_the_signal(client, site):
    before = counts()
    response = post_consent(client, action="gpc")
    assert response.status_code == 422
    assert response.json["error"]["code"] == "gpc_not_seen"
    assert counts() == before


def test_default_action_records_the_modes_defaults(client, site):
    body = post_consent(client, action="default").json
    assert body["decisions"] == {"necessary": "granted", "preferences": "denied", "analytics": "denied"}


# --- refusals: right status, error shape, nothing written -------------------------------------------------


def _refused(response, status: int, code: str, before: dict):
    assert response.status_code == status, response.json
    error = response.json["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    assert error["message"]
    assert counts() == before


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"action": "save", "decisions": {"telemetry": "granted"}}, 422, "unknown_purpose"),
        ({"action": "save", "decisions": {"necessary": "denied"}}, 422, "not_refusable"),
        ({"action": "save", "decisions": {"marketing_email": "granted"}}, 422, "purpose_not_in_banner"),
        ({"action": "save", "decisions": {}}, 422, "no_decisions"),
        ({"action": "accept_all", "decisions": {"analytics": "denied"}}, 422, "decisions_contradict_action"),
        ({"action": "accept_all", "notice_version": 7}, 422, "unknown_notice_version"),
        ({"action": "subscribe"}, 422, "invalid"),
        ({"action": "save", "decisions": {"analytics": "yes"}}, 422, "invalid"),
        ({"action": "save", "decisions": ["analytics"]}, 422, "invalid"),
        ({"action": "accept_all", "notice_version": "1"}, 422, "invalid"),
        ({"action": "accept_all", "gpc": "true"}, 422, "invalid"),
        ({"action": "accept_all", "page_url": "javascript:alert(1)"}, 422, "invalid"),
        ({"action": "accept_all", "locale": "<script>"}, 422, "invalid"),
        ({"action": "accept_all", "surprise": 1}, 422, "invalid"),
        ({"action": "accept_all", "notice_version": None}, 422, "invalid"),
    ],
)
def test_invalid_decisions_are_refused_and_nothing_is_written(client, site, body, status, code):
    before = counts()
    body = {"notice_version": 1, **body}
    response = client.post("/api/v1/sites/shop/consents", json=body, headers={"Origin": ORIGIN, "User-Agent": CHROME})
    _refused(response, status, code, before)


def test_validation_errors_name_the_fields(client, site):
    response = post_consent(client, action="accept_all", notice_version="1", gpc="yes")
    assert set(response.json["error"]["details"]["fields"]) == {"notice_version", "gpc"}


def test_malformed_json_is_400(client, site):
    before = counts()
    response = client.post(
        "/api/v1/sites/shop/consents",
        data='{"action": "accept_all",',
        content_type="application/json",
        headers={"Origin": ORIGIN},
    )
    _refused(response, 400, "malformed_json", before)


def test_json_that_is_not_an_object_is_400(client, site):
    before = counts()
    response = client.post("/api/v1/sites/shop/consents", json=["accept_all"], headers={"Origin": ORIGIN})
    _refused(response, 400, "malformed_json", before)


def test_other_media_types_are_415(client, site):
    before = counts()
    response = client.post(
        "/api/v1/sites/shop/consents",
        data="action=accept_all",
        content_type="application/x-www-form-urlencoded",
        headers={"Origin": ORIGIN},
    )
    _refused(response, 415, "unsupported_media_type", before)


def test_oversized_body_is_413(client, site):
    before = counts()
    big = {"action": "accept_all", "notice_version": 1, "locale": "en", "padding": "x" * (70 * 1024)}
    response = client.post("/api/v1/sites/shop/consents", json=big, headers={"Origin": ORIGIN})
    _refused(response, 413, "payload_too_large", before)


def test_unknown_site_is_404(client, site):
    before = counts()
    _refused(post_consent(client, "nowhere", action="accept_all"), 404, "unknown_site", before)


def test_disallowed_origin_is_403_without_cors_headers(client, site):
    before = counts()
    response = post_consent(client, origin="https://evil.example", action="accept_all")
    _refused(response, 403, "origin_not_allowed", before)
    assert "Access-Control-Allow-Origin" not in response.headers


def test_missing_origin_without_a_key_is_403(client, site):
    before = counts()
    _refused(post_consent(client, origin=None, action="accept_all"), 403, "origin_not_allowed", before)


def test_a_site_without_a_notice_cannot_record(client, app):
    sites.create_site("fresh", "Fresh", origins=[ORIGIN])
    before = counts()
    _refused(post_consent(client, "fresh", action="accept_all"), 422, "unknown_notice_version", before)


# --- CORS ---------------------------------------------------------------------------------------------------


def test_allowed_origin_gets_cors_headers_on_success_and_error(client, site):
    ok = post_consent(client, action="accept_all")
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in ok.headers["Vary"]
    error = post_consent(client, action="save", decisions={"nope": "granted"})
    assert error.status_code == 422
    assert error.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_preflight_is_answered_only_for_allowed_origins(client, site):
    allowed = client.options(
        "/api/v1/sites/shop/consents", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in allowed.headers["Access-Control-Allow-Headers"]
    refused = client.options(
        "/api/v1/sites/shop/consents",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused.headers


# --- servers with an API key ----------------------------------------------------------------------------------


def test_server_records_consent_for_a_user_with_abearer(client, site):
    headers = bearer("consent:write")
    response = client.post(
        "/api/v1/sites/shop/consents",
        json={
            "subject": "user:42",
            "decisions": {"analytics": "granted", "email_tracking": "denied"},
            "ip": "203.0.113.99",
            "user_agent": CHROME,
            "country": "US",
        },
        headers=headers,
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert body["source"] == "api" and body["action"] == "save"
    assert body["decisions"] == {"analytics": "granted", "email_tracking": "denied"}
    assert body["mode"] == "opt_out" and body["country"] == "US"
    [event] = events()
    assert event.ip_prefix == "203.0.113.0"
    assert state(event.subject_id) == body["decisions"]


def test_email_identifiers_are_never_stored_in_plaintext(client, site, backend):
    address = "Ada.Lovelace@Example.org"
    response = client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": f"email:{address}", "decisions": {"email_tracking": "denied"}},
        headers=bearer("consent:write"),
    )
    assert response.status_code == 201
    again = client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": "email:ada.lovelace@example.org", "decisions": {"email_tracking": "denied"}},
        headers=bearer("consent:write"),
    )
    assert again.json["subject_id"] == response.json["subject_id"]  # normalised before hashing
    for table in ("subject_identifiers", "subjects", "consent_events", "consent_state"):
        dump = " ".join(str(row) for row in db.session.execute(db.text(f"SELECT * FROM {table}")))
        assert "lovelace" not in dump.lower(), table


def test_server_cannot_grant_a_double_opt_in_purpose(client, site):
    before = counts()
    response = client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": "user:7", "decisions": {"marketing_email": "granted"}},
        headers=bearer("consent:write"),
    )
    _refused(response, 422, "double_opt_in_required", before)


def test_server_may_pass_a_signed_visitor_id(client, site):
    signed = post_consent(client, action="reject_all").json["visitor_id"]
    response = client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": f"visitor:{signed}", "decisions": {"analytics": "granted"}, "source": "import"},
        headers=bearer("consent:write"),
    )
    assert response.status_code == 201
    assert response.json["source"] == "import"
    assert len({e.subject_id for e in events()}) == 1
    forged = client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": "visitor:AAAAAAAAAAAAAAAAAAAAAA", "decisions": {"analytics": "granted"}},
        headers=bearer("consent:write"),
    )
    assert forged.status_code == 422
    assert forged.json["error"]["code"] == "invalid_subject"


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Authorization": "Bearer cmp_0000000000000000_notarealsecret"}, 401, "invalid_api_key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "invalid_api_key"),
        ({"Authorization": "Bearer "}, 401, "invalid_api_key"),
    ],
)
def test_bad_keys_are_401(client, site, headers, status, code):
    before = counts()
    response = client.post(
        "/api/v1/sites/shop/consents", json={"subject": "user:1", "action": "accept_all"}, headers=headers
    )
    _refused(response, status, code, before)


def test_key_without_scope_or_for_another_site_is_403(client, site):
    sites.create_site("blog", "Blog")
    before = counts()
    body = {"subject": "user:1", "action": "accept_all"}
    wrong_scope = client.post("/api/v1/sites/shop/consents", json=body, headers=bearer("consent:read"))
    _refused(wrong_scope, 403, "insufficient_scope", before)
    wrong_site = client.post(
        "/api/v1/sites/shop/consents", json=body, headers=bearer("consent:write", bound_to=["blog"])
    )
    _refused(wrong_site, 403, "site_not_allowed", before)
    bound = client.post("/api/v1/sites/shop/consents", json=body, headers=bearer("consent:write", bound_to=["shop"]))
    assert bound.status_code == 201
    admin = client.post("/api/v1/sites/shop/consents", json=body, headers=bearer("admin"))
    assert admin.status_code == 201


def test_revoked_key_is_401(client, site):
    new = keys.create_key("gone", ["consent:write"])
    keys.revoke_key(new.key.key_id)
    response = client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": "user:1", "action": "accept_all"},
        headers={"Authorization": f"Bearer {new.token}"},
    )
    assert response.status_code == 401


def test_key_use_is_timestamped(client, site):
    new = keys.create_key("used", ["consent:write"])
    assert new.key.last_used_at is None
    client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": "user:1", "action": "accept_all"},
        headers={"Authorization": f"Bearer {new.token}"},
    )
    db.session.expire_all()
    assert new.key.last_used_at is not None


# --- notices ------------------------------------------------------------------------------------------------


def test_decisions_are_checked_against_the_notice_the_visitor_saw(client, site):
    sites.add_purpose(site, "partner_sharing", texts={"en": {"name": "Partners"}})
    notices.publish_notice(site, material=True)
    old = post_consent(client, action="save", notice_version=1, decisions={"partner_sharing": "granted"})
    assert old.status_code == 422 and old.json["error"]["code"] == "unknown_purpose"
    new = post_consent(client, action="accept_all", notice_version=2)
    assert new.status_code == 201
    assert new.json["decisions"]["partner_sharing"] == "granted"
    assert new.json["notice_hash"] == notices.get_notice(site, 2).content_hash
