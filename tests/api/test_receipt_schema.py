"""Every kind of receipt validates against the Kantara Consent Receipt v1.1 schema, as the standard publishes it.

The schema and its example are read from the standards folder beside the project; these tests are skipped
where it is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from cmp.extensions import db
from cmp.models import NoticeVersion
from cmp.services import notices, sites
from cmp.services.receipts import ReceiptTokens
from cmp.vocabulary import Action
from tests.conftest import running_app
from tests.helpers import ORIGIN, bearer, events, post_consent

KANTARA = Path(__file__).resolve().parents[3] / "shared" / "standards" / "kantara-consent-receipt-v1.1"
PUBLIC = "https://consent.example-company.com"
ADDRESS = "ada@example.org"
CONTROLLER = {
    "name": "Shop GmbH",
    "email": "privacy@shop.example",
    "address": "Gleimstraße 1, 10437 Berlin",
    "country": "DE",
    "phone": "+49 30 1234567",
    "dpo": "Dr. Ada Weber, dpo@shop.example",
}


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    if not KANTARA.is_dir():
        pytest.skip("the Kantara Consent Receipt v1.1 schema is not present beside the project")
    # The published file opens with `//` comment lines, which are not JSON.
    text = "\n".join(
        line for line in (KANTARA / "schema.json").read_text().splitlines() if not line.lstrip().startswith("//")
    )
    schema = json.loads(text)
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    jsonschema.Draft4Validator.check_schema(schema)
    validator = jsonschema.Draft4Validator(schema)
    # The standard's own example passes, so a failure below is the receipt's and not the validator's.
    validator.validate(json.loads((KANTARA / "example.json").read_text()))
    return validator


def problems(validator, receipt: dict) -> list[str]:
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(receipt)]


@pytest.fixture
def app(database_url):
    # A country from a trusted CDN's header, so some receipts know where their person was and the others do not.
    with running_app(
        database_url, CMP_PUBLIC_URL=PUBLIC, CMP_COUNTRY_HEADER="CF-IPCountry", CMP_TRUSTED_PROXIES=["127.0.0.1/32"]
    ) as app:
        yield app


def shop(controller: dict | None) -> sites.Site:
    """The demo's shape: seeded purposes, a third-party cookie, partner sharing (sale/sharing) and a transfer."""
    site = sites.create_site("shop", "Shop", origins=[ORIGIN], policy_url="https://shop.example/privacy")
    sites.add_cookie(site, "_ga", purpose="analytics", provider="Google", storage="persistent", lifetime_seconds=86400)
    sites.add_purpose(
        site,
        "partner_sharing",
        texts={"en": {"name": "Sharing with partners"}},
        gpc=True,
        default_opt_out="granted",
        pii_categories=["Contact details", "Purchase history"],
    )
    sites.add_purpose(
        site,
        "cross_border_transfer",
        texts={"en": {"name": "International transfer"}},
        recipients=["Shop Technology (Shenzhen) Co., Ltd."],
    )
    if controller:
        sites.set_controller(site, controller)
    notices.publish_notice(site)
    db.session.commit()
    return site


def every_kind_of_event(client) -> None:
    """Banner and server consents, GPC, a withdrawal, the email double opt-in and unsubscribe, and an erasure."""
    visitor = post_consent(client, action="accept_all", headers={"CF-IPCountry": "DE"}).json
    assert post_consent(client, action="reject_all").status_code == 201
    assert post_consent(client, action="default").status_code == 201
    assert post_consent(client, action="gpc", headers={"Sec-GPC": "1", "CF-IPCountry": "US"}).status_code == 201
    writer, dsr, sender = bearer("consent:write"), bearer("dsr"), bearer("email:write")
    server = client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": "user:42", "decisions": {"partner_sharing": "granted", "cross_border_transfer": "granted"}},
        headers=writer,
    )
    assert server.status_code == 201, server.json
    subject = f"visitor:{visitor['visitor_id']}"
    withdrawn = client.post(f"/api/v1/subjects/{subject}/withdraw", json={"site": "shop"}, headers=dsr)
    assert withdrawn.status_code == 200, withdrawn.json
    subscribed = client.post("/api/v1/email/subscriptions", json={"site": "shop", "email": ADDRESS}, headers=sender)
    confirmation = subscribed.json["confirmation_url"].removeprefix(PUBLIC)
    assert client.post(confirmation, data={"confirm": "subscribe"}).status_code == 200
    headers = client.get("/api/v1/email/headers", query_string={"site": "shop", "email": ADDRESS}, headers=sender)
    unsubscribed = client.post(headers.json["unsubscribe_url"].removeprefix(PUBLIC), data={"confirm": "unsubscribe"})
    assert unsubscribed.status_code == 200
    # Restriction, a child's age and a correction decide nothing, as the erasure below does.
    rights = [("user:42", "restrict", {}), ("user:42", "unrestrict", {}), ("user:42", "age", {"age": 12})]
    rights += [("user:42", "age", {"age": 30}), (subject, "correct", {"identifier": "user:7"})]
    for named, right, body in rights:
        response = client.post(f"/api/v1/subjects/{named}/{right}", json={"site": "shop", **body}, headers=dsr)
        assert response.status_code == 200, response.json
    assert client.post("/api/v1/subjects/user:42/erase", json={"site": "shop"}, headers=dsr).status_code == 200


def receipts_of_every_event(app, client) -> dict[str, dict]:
    tokens: ReceiptTokens = app.extensions["cmp.receipt_tokens"]
    found = {}
    for event in events():
        response = client.get(
            f"/api/v1/sites/shop/receipts/{event.id}", query_string={"token": tokens.sign("shop", event.id)}
        )
        assert response.status_code == 200, response.json
        found.setdefault(event.action, response.json)
    return found


# Every action but `expire` and `admin`, which no request makes (retention and operators record them).
KINDS = {action.value for action in Action} - {Action.EXPIRE, Action.ADMIN}


@pytest.mark.parametrize("controller", [CONTROLLER, None], ids=["controller-set", "no-controller"])
def test_every_kind_of_receipt_validates_against_the_kantara_schema(app, validator, controller):
    client = app.test_client()
    shop(controller)
    every_kind_of_event(client)

    receipts = receipts_of_every_event(app, client)

    assert set(receipts) == KINDS
    for action, receipt in receipts.items():
        assert problems(validator, receipt) == [], action


def test_a_receipt_names_the_controller_its_contact_and_its_third_parties(app):
    client = app.test_client()
    shop(CONTROLLER)
    every_kind_of_event(client)
    receipts = receipts_of_every_event(app, client)

    accepted = receipts["accept_all"]
    assert accepted["piiControllers"] == [
        {
            "piiController": "Shop GmbH",
            "contact": "Dr. Ada Weber, dpo@shop.example",
            "address": {"streetAddress": "Gleimstraße 1, 10437 Berlin", "addressCountry": "DE"},
            "email": "privacy@shop.example",
            "phone": "+49 30 1234567",
            "piiControllerUrl": "https://shop.example/privacy",
        }
    ]
    assert accepted["jurisdiction"] == "DE"  # where the person was
    assert receipts["gpc"]["jurisdiction"] == "US"
    # Country unknown: the controller's own law applies (GDPR Art. 3(1)).
    assert receipts["reject_all"]["jurisdiction"] == "DE"

    purposes = {p["purposeCategory"][0]: p for p in receipts["confirm"]["services"][0]["purposes"]}
    assert purposes["marketing_email"]["piiCategory"] == ["Contact details (email address)"]
    shared = {p["purposeCategory"][0]: p for p in _server_receipt(app, client)["services"][0]["purposes"]}
    # Sale or sharing (GPC) discloses to third parties even where the notice names none.
    assert shared["partner_sharing"]["thirdPartyDisclosure"] is True
    assert shared["partner_sharing"]["thirdPartyName"] == "third parties not named in the notice (sale or sharing)"
    assert shared["partner_sharing"]["piiCategory"] == ["Contact details", "Purchase history"]
    assert shared["cross_border_transfer"]["thirdPartyDisclosure"] is True
    assert shared["cross_border_transfer"]["thirdPartyName"] == "Shop Technology (Shenzhen) Co., Ltd."

    refused = {p["purposeCategory"][0]: p for p in receipts["reject_all"]["services"][0]["purposes"]}
    assert refused["analytics"]["decision"] == "denied" and refused["analytics"]["termination"] == "N/A"
    assert refused["analytics"]["thirdPartyDisclosure"] is True and refused["analytics"]["thirdPartyName"] == "Google"
    assert refused["preferences"]["thirdPartyDisclosure"] is False
    assert receipts["erase"]["services"] == [{"service": "Shop", "purposes": []}]


def _server_receipt(app, client) -> dict:
    [event] = [e for e in events() if e.action == "save"]
    token = app.extensions["cmp.receipt_tokens"].sign("shop", event.id)
    return client.get(f"/api/v1/sites/shop/receipts/{event.id}", query_string={"token": token}).json


def test_without_a_controller_a_receipt_says_what_is_not_provided(app, validator):
    client = app.test_client()
    site = sites.create_site("shop", "Shop", origins=[ORIGIN])  # no policy URL either
    notices.publish_notice(site)
    db.session.commit()
    receipt = client.get(post_consent(client, action="accept_all").json["receipt_url"].removeprefix(PUBLIC)).json

    assert problems(validator, receipt) == []
    not_provided = "not provided"
    assert receipt["piiControllers"] == [
        {"piiController": "Shop", "contact": not_provided, "address": {}, "email": not_provided, "phone": not_provided}
    ]
    assert receipt["policyUrl"] == "not provided"
    assert receipt["jurisdiction"] == "unknown"


def test_a_receipt_under_a_notice_published_before_data_categories_still_validates(app, validator):
    client = app.test_client()
    site = shop(None)
    # A notice as earlier versions published it: no data categories or recipients per purpose.
    content = json.loads(json.dumps(notices.current_notice(site).content))
    for purpose in content["purposes"]:
        del purpose["pii_categories"], purpose["recipients"]
    content["policy_url"] = "https://shop.example/privacy-2025"
    db.session.add(
        NoticeVersion(site_id=site.id, version=2, content=content, content_hash=notices.content_hash(content))
    )
    db.session.commit()
    writer = bearer("consent:write")
    recorded = client.post(
        "/api/v1/sites/shop/consents",
        json={
            "subject": "user:7",
            "notice_version": 2,
            "decisions": {"analytics": "granted", "partner_sharing": "granted"},
        },
        headers=writer,
    )
    assert recorded.status_code == 201, recorded.json

    receipt = client.get(recorded.json["receipt_url"].removeprefix(PUBLIC)).json

    assert problems(validator, receipt) == []
    assert receipt["policyUrl"] == "https://shop.example/privacy-2025"
    purposes = {p["purposeCategory"][0]: p for p in receipt["services"][0]["purposes"]}
    # A seeded purpose's categories are the catalogue's; a site's own purpose had none to show.
    assert purposes["analytics"]["piiCategory"][0].startswith("Device and browser data")
    assert purposes["partner_sharing"]["piiCategory"] == ["not provided"]
