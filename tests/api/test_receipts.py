"""Consent receipts: the link each recorded decision answers with, and who may read one."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from cmp.extensions import db
from cmp.services import notices, sites
from cmp.services.receipts import ReceiptTokens
from tests.conftest import running_app
from tests.helpers import ORIGIN, bearer, events, post_consent

PUBLIC = "https://cmp.example"


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def local(url: str) -> str:
    """The path and query of a receipt URL, for the test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def assert_refused(response):
    assert response.status_code == 403, response.json
    assert response.json == {
        "error": {"code": "invalid_receipt_token", "message": "this receipt link is not valid", "details": {}}
    }


def test_a_banner_decision_answers_with_its_receipt(client, site):
    recorded = post_consent(client, action="accept_all", locale="de", page_url="https://shop.example/help")
    assert recorded.status_code == 201
    url = recorded.json["receipt_url"]
    assert url.startswith(f"http://localhost/api/v1/sites/shop/receipts/{recorded.json['event_id']}?token=")

    response = client.get(url, headers={"Origin": ORIGIN})

    assert response.status_code == 200, response.json
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    receipt = response.json
    [event] = events()
    assert receipt["version"] == "KI-CR-v1.1.0"
    assert receipt["consentReceiptID"] == event.id
    assert receipt["piiPrincipalId"] == event.subject_id
    assert receipt["consentTimestamp"] == int(event.received_at.timestamp())
    assert receipt["collectionMethod"] == "cookie banner on the website"
    assert receipt["language"] == "de"
    [controller] = receipt["piiControllers"]
    assert controller["piiController"] == "Shop" and controller["piiControllerUrl"] == "https://shop.example/privacy"
    assert controller["email"] == "not provided"  # until the operator sets the controller's identity
    assert receipt["policyUrl"] == "https://shop.example/privacy"
    assert receipt["action"] == "accept_all" and receipt["givenBy"] is None
    assert receipt["noticeVersion"] == 1 and receipt["noticeHash"] == event.notice_hash
    assert receipt["eventHash"] == event.hash
    assert receipt["evidence"]["pageUrl"] == "https://shop.example/help"
    assert receipt["storageLocation"] is None
    [service] = receipt["services"]
    purposes = {p["purposeCategory"][0]: p for p in service["purposes"]}
    assert set(purposes) == {"necessary", "preferences", "analytics"}
    analytics = purposes["analytics"]
    assert analytics["purpose"] == "Statistik"  # as the visitor was shown it, in German
    assert analytics["consentType"] == "EXPLICIT" and analytics["decision"] == "granted"
    assert analytics["termination"] == event.expires_at.isoformat()
    assert analytics["thirdPartyDisclosure"] is True and analytics["thirdPartyName"] == "Google"
    assert purposes["necessary"]["primaryPurpose"] is True
    assert purposes["preferences"]["thirdPartyDisclosure"] is False


def test_a_default_decision_is_implied_and_a_refusal_has_no_termination(client, site):
    recorded = post_consent(client, action="default")
    receipt = client.get(recorded.json["receipt_url"]).json
    analytics = next(p for p in receipt["services"][0]["purposes"] if p["purposeCategory"] == ["analytics"])
    assert analytics["consentType"] == "IMPLIED"
    # Kantara requires a string: a refusal's termination does not apply.
    assert analytics["decision"] == "denied" and analytics["termination"] == "N/A"
    # Country unknown and no controller's country to fall back on.
    assert receipt["jurisdiction"] == "unknown"


@pytest.fixture
def public_app(database_url):
    with running_app(database_url, CMP_PUBLIC_URL=PUBLIC, CMP_STORAGE_LOCATION="CN (Shenzhen)") as app:
        yield app


def test_receipt_urls_use_the_public_url_and_name_the_storage_location(public_app):
    client = public_app.test_client()
    sites.create_site("shop", "Shop", origins=[ORIGIN], policy_url="https://shop.example/privacy")
    notices.publish_notice(sites.get_site("shop"))
    db.session.commit()
    recorded = client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": "user:42", "decisions": {"analytics": "granted"}},
        headers=bearer("consent:write"),
    )
    url = recorded.json["receipt_url"]
    assert url.startswith(f"{PUBLIC}/api/v1/sites/shop/receipts/")
    receipt = client.get(local(url)).json
    assert receipt["storageLocation"] == "CN (Shenzhen)"
    assert receipt["collectionMethod"].startswith("the website's own systems")
    assert receipt["evidence"] == {"ipPrefix": None, "userAgent": None, "pageUrl": None}


def test_a_wrong_or_tampered_token_reveals_nothing(client, site):
    url = post_consent(client, action="accept_all").json["receipt_url"]
    token = token_of(url)
    base = url.split("?")[0]
    # The first character changed, not the last: base64's last character carries padding bits, and a change
    # confined to them decodes to the same signature.
    tampered = ("A" if token[0] != "A" else "B") + token[1:]
    for wrong in ("x", "A" * len(token), tampered, token + "A", token[:-2], "é"):
        assert_refused(client.get(base, query_string={"token": wrong}))


def test_another_events_token_is_refused(client, site):
    first = post_consent(client, action="accept_all").json
    second = post_consent(client, action="reject_all").json
    url = f"/api/v1/sites/shop/receipts/{second['event_id']}"
    assert_refused(client.get(url, query_string={"token": token_of(first["receipt_url"])}))


def test_a_token_of_another_site_is_refused(client, site):
    recorded = post_consent(client, action="accept_all").json
    sites.create_site("blog", "Blog", origins=[ORIGIN])
    db.session.commit()
    url = f"/api/v1/sites/blog/receipts/{recorded['event_id']}"
    assert_refused(client.get(url, query_string={"token": token_of(recorded["receipt_url"])}))


def test_a_refusal_carries_cors_for_allowed_origins_only(client, site):
    event_id = post_consent(client, action="accept_all").json["event_id"]
    url = f"/api/v1/sites/shop/receipts/{event_id}"
    allowed = client.get(url, query_string={"token": "x"}, headers={"Origin": ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    other = client.get(url, query_string={"token": "x"}, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_a_missing_token_is_422(client, site):
    event_id = post_consent(client, action="accept_all").json["event_id"]
    response = client.get(f"/api/v1/sites/shop/receipts/{event_id}")
    assert response.status_code == 422
    assert "token" in response.json["error"]["details"]["fields"]


def test_a_signed_token_for_an_event_no_longer_kept_is_404(app, client, site):
    tokens: ReceiptTokens = app.extensions["cmp.receipt_tokens"]
    event_id = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    response = client.get(
        f"/api/v1/sites/shop/receipts/{event_id}", query_string={"token": tokens.sign("shop", event_id)}
    )
    assert response.status_code == 404 and response.json["error"]["code"] == "unknown_receipt"


def test_tokens_signed_with_a_previous_key_still_work():
    old = ReceiptTokens("old-secret-key-0123456789abcdef")
    rotated = ReceiptTokens("new-secret-key-0123456789abcdef", ["old-secret-key-0123456789abcdef"])
    rotated.check("shop", "E1", old.sign("shop", "E1"))
    assert rotated.sign("shop", "E1") != old.sign("shop", "E1")


def test_an_erased_subjects_receipt_no_longer_shows_its_evidence(client, site):
    recorded = post_consent(client, action="accept_all", page_url="https://shop.example/help").json
    assert client.get(recorded["receipt_url"]).json["evidence"]["pageUrl"] == "https://shop.example/help"
    erased = client.post(
        f"/api/v1/subjects/visitor:{recorded['visitor_id']}/erase", json={"site": "shop"}, headers=bearer("dsr")
    )
    assert erased.status_code == 200, erased.json
    receipt = client.get(recorded["receipt_url"]).json
    assert receipt["evidence"] is None
    assert receipt["consentReceiptID"] == recorded["event_id"]


def test_withdrawal_answers_with_a_receipt_too(client, site):
    recorded = post_consent(client, action="accept_all").json
    withdrawn = client.post(
        f"/api/v1/subjects/visitor:{recorded['visitor_id']}/withdraw", json={"site": "shop"}, headers=bearer("dsr")
    ).json
    receipt = client.get(withdrawn["receipt_url"]).json
    assert receipt["action"] == "withdraw" and receipt["consentReceiptID"] == withdrawn["event_id"]


@pytest.mark.parametrize(("locale", "name"), [("de-AT", "Statistik"), ("ja", "Analytics")])
def test_purpose_names_come_from_the_closest_locale_the_notice_has(client, site, locale, name):
    recorded = client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": "user:42", "decisions": {"analytics": "granted"}, "locale": locale},
        headers=bearer("consent:write"),
    )
    receipt = client.get(recorded.json["receipt_url"]).json
    assert receipt["language"] == locale
    assert [p["purpose"] for p in receipt["services"][0]["purposes"]] == [name]


@pytest.mark.parametrize("given_by", [None, "guardian"])
def test_a_receipt_says_what_the_audit_export_says_of_the_same_event(client, site, given_by):
    """The receipt's own fields carry the export's values, in the export's types: one fact, one form."""
    body = {"subject": "user:42", "action": "accept_all", **({"given_by": given_by} if given_by else {})}
    recorded = client.post("/api/v1/sites/shop/consents", json=body, headers=bearer("consent:write"))
    assert recorded.status_code == 201, recorded.json
    receipt = client.get(local(recorded.json["receipt_url"])).json

    export = client.get("/api/v1/audit/events", query_string={"site": "shop"}, headers=bearer("audit:read"))
    [entry] = [e for e in map(json.loads, export.get_data(as_text=True).splitlines()) if e["entry"] == "event"]

    assert entry["id"] == receipt["consentReceiptID"]
    assert (receipt["receivedAt"], receipt["expiresAt"]) == (entry["received_at"], entry["expires_at"])
    assert (receipt["action"], receipt["givenBy"]) == (entry["action"], entry["given_by"]) == ("accept_all", given_by)
    assert (receipt["noticeVersion"], receipt["noticeHash"]) == (entry["notice_version"], entry["notice_hash"])
    assert receipt["eventHash"] == entry["hash"]
