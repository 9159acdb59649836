"""cmp.client against the service running for real on loopback, as the marketing sender would use it."""

from __future__ import annotations

import socket
import threading
import urllib.request

import pytest
from werkzeug.serving import make_server

from cmp.api.lookup import Recent
from cmp.client import ApiError, Client
from cmp.extensions import db
from cmp.services import keys

CONSENTS = "/api/v1/sites/shop/consents"


@pytest.fixture
def base_url(app, site):
    """The app on 127.0.0.1:<free port>, served from threads while the test runs."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def new_key(*scopes) -> str:
    token = keys.create_key("client test", list(scopes)).token
    db.session.commit()
    return token


@pytest.fixture
def cmp(base_url):
    return Client(base_url, new_key("consent:read", "email:write"), timeout=10)


@pytest.fixture
def record(client):
    """Record a decision set server-side, as an account sign-up would."""
    writer = {"Authorization": f"Bearer {new_key('consent:write')}"}

    def record(subject: str, **body):
        response = client.post(CONSENTS, json={"subject": subject, **body}, headers=writer)
        assert response.status_code == 201, response.json

    return record


def counted(cmp: Client) -> list[str]:
    """The HTTP requests `cmp` sends from now on, as "METHOD path"."""
    calls: list[str] = []
    send = cmp._request

    def request(method, path, query=None, body=None):
        calls.append(f"{method} {path}")
        return send(method, path, query, body)

    cmp._request = request
    return calls


def test_lookup_answers_with_the_reason_and_its_proof(cmp, record):
    record("user:42", decisions={"analytics": "granted"})
    answer = cmp.lookup("shop", "user:42", "analytics")
    assert (answer["allowed"], answer["reason"], answer["notice_version"]) == (True, "granted", 1)
    assert answer["event_id"] and answer["decided_at"] and answer["expires_at"]
    nobody = cmp.lookup("shop", "user:nobody", "analytics")
    assert (nobody["allowed"], nobody["reason"], nobody["event_id"]) == (False, "no_record", None)


def test_lookup_many_answers_every_subject_in_order(cmp, record):
    record("user:1", action="accept_all")
    record("user:2", action="reject_all")
    results = cmp.lookup_many("shop", ["user:2", "user:3", "user:1"], ["analytics", "preferences"])
    assert [r["subject"] for r in results] == ["user:2", "user:3", "user:1"]
    assert [r["allowed"] for r in results] == [False, False, True]
    assert results[0]["purposes"]["analytics"]["reason"] == "denied"
    assert results[1]["purposes"]["preferences"]["reason"] == "no_record"


def test_lookup_many_splits_lists_over_ten_thousand(cmp, record):
    record("user:10000", decisions={"analytics": "granted"})
    calls = counted(cmp)
    subjects = [f"user:{n}" for n in range(10_001)]
    results = cmp.lookup_many("shop", subjects, "analytics")
    assert calls == ["POST /api/v1/consents/lookup"] * 2
    assert [r["subject"] for r in results] == subjects
    assert [r["subject"] for r in results if r["allowed"]] == ["user:10000"]


def test_lookup_many_keeps_the_order_across_calls(base_url, record):
    cmp = Client(base_url, new_key("consent:read"), batch_size=2)
    record("user:b", decisions={"analytics": "granted"})
    record("user:e", decisions={"analytics": "granted"})
    calls = counted(cmp)
    results = cmp.lookup_many("shop", ["user:a", "user:b", "user:c", "user:d", "user:e"], ["analytics"])
    assert len(calls) == 3
    assert [r["allowed"] for r in results] == [False, True, False, False, True]
    assert cmp.lookup_many("shop", [], ["analytics"]) == []


def test_allowed_recipients_keeps_only_allowed_addresses_in_order(cmp, record):
    record("email:ada@example.org", decisions={"email_tracking": "granted"})
    record("email:bob@example.org", decisions={"email_tracking": "denied"})
    record("email:Dora@Example.org", decisions={"email_tracking": "granted"})
    addresses = [
        "Dora@Example.org",
        "bob@example.org",
        "not an address",
        "carol@example.org",
        "x" * 400 + "@example.org",
        "ada@example.org",
    ]
    # Addresses the service cannot read are left out, not a reason to send to nobody (or everybody).
    assert cmp.allowed_recipients("shop", addresses, purpose="email_tracking") == [
        "Dora@Example.org",
        "ada@example.org",
    ]
    assert cmp.allowed_recipients("shop", ["nobody"], purpose="email_tracking") == []
    assert cmp.allowed_recipients("shop", [], purpose="email_tracking") == []


def test_nobody_is_allowed_marketing_email_without_a_confirmed_subscription(cmp, record):
    record("email:ada@example.org", decisions={"analytics": "granted"})
    assert cmp.allowed_recipients("shop", ["ada@example.org"]) == []


def test_errors_come_back_in_the_services_shape(cmp, base_url):
    with pytest.raises(ApiError) as unknown_site:
        cmp.lookup("nowhere", "user:1", "analytics")
    assert (unknown_site.value.status, unknown_site.value.code) == (404, "unknown_site")
    assert unknown_site.value.details == {"site": "nowhere"}
    with pytest.raises(ApiError) as unknown_purpose:
        cmp.lookup_many("shop", ["user:1"], ["telemetry"])
    assert (unknown_purpose.value.status, unknown_purpose.value.code) == (422, "unknown_purpose")
    assert unknown_purpose.value.details == {"purposes": ["telemetry"]}
    with pytest.raises(ApiError) as bad_key:
        Client(base_url, "cmp_0123456789abcdef_wrong").lookup("shop", "user:1", "analytics")
    assert (bad_key.value.status, bad_key.value.code) == (401, "invalid_api_key")
    assert "wrong" not in repr(Client(base_url, "cmp_0123456789abcdef_wrong"))


def test_a_key_without_the_scope_is_refused(base_url):
    writer_only = Client(base_url, new_key("consent:write"))
    with pytest.raises(ApiError) as refused:
        writer_only.allowed_recipients("shop", ["ada@example.org"])
    assert (refused.value.status, refused.value.code) == (403, "insufficient_scope")


def test_a_service_that_does_not_answer_is_an_error_not_an_empty_answer():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ApiError) as unreachable:
        Client(f"http://127.0.0.1:{port}", "cmp_x_y", timeout=2).allowed_recipients("shop", ["ada@example.org"])
    assert (unreachable.value.status, unreachable.value.code) == (0, "unreachable")


def test_a_revoked_key_stops_working_within_the_cache_time(app, base_url):
    clock = [1000.0]
    app.extensions["cmp.lookup_cache"]["keys"] = Recent(5, timer=lambda: clock[0])
    token = new_key("consent:read")
    cmp = Client(base_url, token)
    assert cmp.lookup("shop", "user:1", "analytics")["reason"] == "no_record"
    keys.revoke_key(token.split("_")[1])
    db.session.commit()
    clock[0] += 4.9
    assert cmp.lookup("shop", "user:1", "analytics")["reason"] == "no_record"  # still within the cache time
    clock[0] += 0.2
    with pytest.raises(ApiError) as revoked:
        cmp.lookup("shop", "user:1", "analytics")
    assert (revoked.value.status, revoked.value.code) == (401, "invalid_api_key")


# --- marketing email: double opt-in and unsubscribe headers ---------------------------------------------------


def test_subscribe_then_confirm_makes_an_address_allowed(cmp):
    address = "ada@example.org"
    subscription = cmp.subscribe("shop", address, locale="de")
    assert subscription["status"] == "pending"
    assert cmp.allowed_recipients("shop", [address]) == []  # pending is not consent
    with urllib.request.urlopen(subscription["confirmation_url"], timeout=10) as page:
        assert page.status == 200  # the page with its button: opening it confirms nothing
    assert cmp.allowed_recipients("shop", [address]) == []
    with urllib.request.urlopen(subscription["confirmation_url"], data=b"confirm=subscribe", timeout=10) as page:
        assert page.status == 200
    assert cmp.allowed_recipients("shop", [address, "bob@example.org"]) == [address]


def test_unsubscribe_headers_are_one_click_and_the_click_withdraws(cmp):
    address = "ada@example.org"
    confirmation = cmp.subscribe("shop", address)["confirmation_url"]
    with urllib.request.urlopen(confirmation, data=b"confirm=subscribe", timeout=10):
        pass
    headers = cmp.unsubscribe_headers("shop", address)
    assert set(headers) == {"List-Unsubscribe", "List-Unsubscribe-Post"}
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = headers["List-Unsubscribe"].split(",")[0].strip().strip("<>")
    assert url.startswith(cmp.base_url)
    # RFC 8058: the mail client POSTs this body to the URL, with nothing else.
    one_click = urllib.request.Request(url, data=b"List-Unsubscribe=One-Click", method="POST")
    one_click.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(one_click, timeout=10) as response:
        assert response.status in (200, 202, 204)
    assert cmp.allowed_recipients("shop", [address]) == []
    assert cmp.lookup("shop", f"email:{address}", "marketing_email")["reason"] == "withdrawn"
