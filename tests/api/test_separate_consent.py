"""Separate consent (PIPL Art. 23, 38, 39): configured with what the law says a person must be told, shown by the
banner configuration, never granted by Accept all, granted only by its own act, and kept apart in receipts."""

from __future__ import annotations

import json
import shlex

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from cmp.extensions import db
from cmp.models import NoticeVersion, Purpose
from cmp.services import notices, sites
from cmp.services.demo import DEMO_CONTACT, seed_demo
from cmp.services.receipts import ReceiptTokens
from tests.api.test_receipt_schema import problems, validator  # noqa: F401 - the Kantara schema's validator
from tests.helpers import ORIGIN, bearer, counts, events, post_consent
from tests.test_migrations import empty_database, migrations_app  # noqa: F401 - a database for each backend

LOOKUP = "/api/v1/consents/lookup"
CONSENTS = "/api/v1/sites/shop/consents"
TRANSFER_RECIPIENT = {"name": "Shop Technology (Shenzhen) Co., Ltd.", "contact": "privacy@shop.example.cn"}
PARTNER_RECIPIENT = {"name": "Parcel Partners Ltd.", "contact": "+44 20 7946 0000"}
# What a separate consent must carry in the default locale, besides its name.
PIPL_TEXTS = {
    "description": "Storing your account data on servers in China.",
    "means": "Transferred over an encrypted connection and stored in Shenzhen.",
    "rights": "Write to the recipient's contact to access, correct or delete your data.",
}


def transfer(site, **changes) -> Purpose:
    """Add `cross_border_transfer` as a separate consent, with `changes` to what add_purpose is given."""
    options = {
        "texts": {
            "en": {"name": "International transfer", **PIPL_TEXTS},
            "de": {"name": "Internationale Übermittlung", "rights": "Schreiben Sie an den Kontakt des Empfängers."},
        },
        "pii_categories": ["Contact details", "Support requests"],
        "recipients": [TRANSFER_RECIPIENT],
        "separate_consent": True,
        **changes,
    }
    return sites.add_purpose(site, "cross_border_transfer", **options)


@pytest.fixture
def shop(app):
    """The shop's seeded purposes, partner sharing and a transfer to China, both separate, notice v1 published."""
    site = sites.create_site("shop", "Shop", origins=[ORIGIN], policy_url="https://shop.example/privacy")
    sites.add_purpose(
        site,
        "partner_sharing",
        texts={"en": {"name": "Sharing with partners", **PIPL_TEXTS}},
        gpc=True,
        default_opt_out="granted",
        pii_categories=["Contact details"],
        recipients=["Parcel Partners Ltd. <+44 20 7946 0000>"],
        separate_consent=True,
    )
    transfer(site)
    notices.publish_notice(site)
    db.session.commit()
    return site


def ask(client, subject: str, purpose: str) -> dict:
    response = client.get(
        LOOKUP, query_string={"site": "shop", "subject": subject, "purpose": purpose}, headers=bearer("consent:read")
    )
    assert response.status_code == 200, response.json
    return response.json


def allowed(client, subject: str, purposes) -> dict[str, bool]:
    return {purpose: ask(client, subject, purpose)["allowed"] for purpose in purposes}


WEB = ("necessary", "preferences", "analytics", "partner_sharing", "cross_border_transfer")


# Configuration


@pytest.mark.parametrize(
    "changes, says",
    [
        ({"recipients": [{"name": "Shop Technology (Shenzhen) Co., Ltd."}]}, "recipient with a contact"),
        ({"recipients": ["Shop Technology (Shenzhen) Co., Ltd."]}, "recipient with a contact"),
        ({"recipients": []}, "recipient with a contact"),
        ({"pii_categories": []}, "categories of personal data"),
        ({"texts": {"en": {"name": "Transfer", **PIPL_TEXTS, "means": ""}}}, "means in the default locale"),
        ({"texts": {"en": {"name": "Transfer", "description": "Abroad.", "means": "Sent."}}}, "rights"),
        ({"texts": {"en": {"name": "Transfer", "means": "Sent.", "rights": "Write."}}}, "description"),
        ({"default_opt_in": "granted"}, "denied until given"),
        ({"refusable": False, "default_opt_in": "granted", "default_opt_out": "granted"}, "can be refused"),
        ({"recipients": [{"name": "Shop", "contact": "a\nb"}]}, "recipient's contact is 1 to 200 printable"),
        ({"recipients": [{"name": "Shop", "email": "privacy@shop.example"}]}, "a name and a contact"),
    ],
    ids=[
        "recipient-without-contact",
        "recipient-as-a-bare-name",
        "no-recipient",
        "no-categories",
        "no-means",
        "no-rights",
        "no-description",
        "granted-by-default-where-consent-is-required",
        "cannot-be-refused",
        "contact-with-a-line-break",
        "unknown-recipient-field",
    ],
)
def test_a_separate_consent_without_what_pipl_requires_is_refused(app, changes, says):
    site = sites.create_site("shop", "Shop", origins=[ORIGIN])

    with pytest.raises(sites.SiteError, match=says):
        transfer(site, **changes)

    assert site.purpose("cross_border_transfer") is None


def test_recipients_are_a_name_and_a_contact_written_as_an_email_address_is(app):
    site = sites.create_site("shop", "Shop", origins=[ORIGIN])

    purpose = transfer(
        site,
        recipients=[
            " Shop Technology (Shenzhen) Co., Ltd. <privacy@shop.example.cn> ",
            {"name": "Parcel Partners Ltd.", "contact": "+44 20 7946 0000"},
            "Auditors LLP",
        ],
    )

    assert purpose.recipients == [
        TRANSFER_RECIPIENT,
        PARTNER_RECIPIENT,
        {"name": "Auditors LLP", "contact": None},
    ]
    assert purpose.separate_consent is True


def test_email_tracking_is_built_in_as_a_separate_consent_and_the_notice_says_which_are(app):
    site = sites.create_site("shop", "Shop", origins=[ORIGIN])
    transfer(site)

    content = notices.publish_notice(site).content

    separate = {p["key"]: p["separate_consent"] for p in content["purposes"]}
    assert separate == {
        "necessary": False,
        "preferences": False,
        "analytics": False,
        "marketing_email": False,
        "email_tracking": True,
        "cross_border_transfer": True,
    }
    [published] = [p for p in content["purposes"] if p["key"] == "cross_border_transfer"]
    assert published["recipients"] == [TRANSFER_RECIPIENT]
    assert published["texts"]["en"]["means"] == PIPL_TEXTS["means"]


# The banner configuration


def test_the_banner_config_shows_what_a_separate_consent_needs_and_only_for_those(client, shop):
    body = client.get("/api/v1/sites/shop/banner-config?locale=en", headers={"Origin": ORIGIN}).json

    purposes = {p["key"]: p for p in body["purposes"]}
    assert {k: p["separate_consent"] for k, p in purposes.items()} == dict.fromkeys(WEB[:3], False) | dict.fromkeys(
        WEB[3:], True
    )
    assert purposes["cross_border_transfer"] | {"defaults": None, "consent_mode": None} == {
        "key": "cross_border_transfer",
        "name": "International transfer",
        "description": PIPL_TEXTS["description"],
        "refusable": True,
        "gpc": False,
        "consent_mode": None,
        "defaults": None,
        "separate_consent": True,
        "recipients": [TRANSFER_RECIPIENT],
        "categories": "Contact details, Support requests",
        "means": PIPL_TEXTS["means"],
        "rights": PIPL_TEXTS["rights"],
    }
    assert purposes["partner_sharing"]["recipients"] == [PARTNER_RECIPIENT]
    for key in WEB[:3]:
        assert not {"recipients", "categories", "means", "rights"} & set(purposes[key])


def test_a_separate_consent_text_missing_in_a_locale_is_shown_in_the_default_one(client, shop):
    body = client.get("/api/v1/sites/shop/banner-config?locale=de", headers={"Origin": ORIGIN}).json

    [shown] = [p for p in body["purposes"] if p["key"] == "cross_border_transfer"]
    assert shown["name"] == "Internationale Übermittlung"
    assert shown["rights"] == "Schreiben Sie an den Kontakt des Empfängers."
    assert shown["means"] == PIPL_TEXTS["means"]  # not translated: shown in English rather than not at all
    assert shown["description"] == ""  # the ordinary texts keep their own rule


def test_the_demo_asks_separately_for_partner_sharing_and_the_transfer_in_every_language(client, app):
    seed_demo()
    db.session.commit()

    for locale in ("en", "zh-CN", "de", "fr"):
        body = client.get(f"/api/v1/sites/demo/banner-config?locale={locale}").json
        separate = {p["key"]: p for p in body["purposes"] if p["separate_consent"]}
        assert set(separate) == {"partner_sharing", "cross_border_transfer"}, locale
        for purpose in separate.values():
            assert [r["contact"] for r in purpose["recipients"]] == [DEMO_CONTACT]
            assert all(purpose[text] for text in ("description", "categories", "means", "rights")), locale
        assert body["texts"]["agree"] and body["texts"]["decline"]
    assert sites.get_site("demo").purpose("email_tracking").separate_consent is True


# The rule, through the API (the notice version says which purposes are separate)


def test_accept_all_grants_everything_but_the_separate_consents(client, shop):
    consent = post_consent(client, action="accept_all")

    assert consent.status_code == 201, consent.json
    assert not {"partner_sharing", "cross_border_transfer"} & {
        k for k, v in consent.json["decisions"].items() if v == "granted"
    }
    visitor = f"visitor:{consent.json['visitor_id']}"
    assert allowed(client, visitor, WEB) == {
        "necessary": True,
        "preferences": True,
        "analytics": True,
        "partner_sharing": False,
        "cross_border_transfer": False,
    }
    assert ask(client, visitor, "cross_border_transfer")["reason"] in ("no_record", "denied")


def test_a_separate_consent_is_granted_by_its_own_save_and_grants_nothing_else(client, shop):
    visitor = post_consent(client, action="accept_all").json["visitor_id"]

    transfer_granted = post_consent(
        client, action="save", decisions={"cross_border_transfer": "granted"}, visitor_id=visitor
    )

    assert transfer_granted.status_code == 201, transfer_granted.json
    assert transfer_granted.json["decisions"] == {"necessary": "granted", "cross_border_transfer": "granted"}
    assert allowed(client, f"visitor:{visitor}", WEB) == {
        "necessary": True,
        "preferences": True,
        "analytics": True,
        "partner_sharing": False,
        "cross_border_transfer": True,
    }


@pytest.mark.parametrize(
    "decisions",
    [
        {"cross_border_transfer": "granted", "analytics": "granted"},
        {"cross_border_transfer": "granted", "partner_sharing": "granted"},
    ],
    ids=["with-another-grant", "two-separate-consents"],
)
def test_a_separate_consent_bundled_with_another_decision_is_refused_and_changes_nothing(client, shop, decisions):
    before = counts()

    response = post_consent(client, action="save", decisions=decisions)

    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "separate_consent_required"
    assert counts() == before


def test_a_server_accept_all_never_grants_email_tracking_or_the_separate_consents(client, shop):
    writer = bearer("consent:write")
    response = client.post(CONSENTS, json={"subject": "user:7", "action": "accept_all"}, headers=writer)
    assert response.status_code == 201, response.json

    assert allowed(client, "user:7", ("analytics", "email_tracking", "partner_sharing", "cross_border_transfer")) == {
        "analytics": True,
        "email_tracking": False,
        "partner_sharing": False,
        "cross_border_transfer": False,
    }
    alone = client.post(
        CONSENTS, json={"subject": "user:7", "decisions": {"email_tracking": "granted"}}, headers=writer
    )
    assert alone.status_code == 201, alone.json
    assert ask(client, "user:7", "email_tracking")["allowed"] is True


def test_reject_all_withdraws_a_separate_consent_with_the_rest(client, shop):
    visitor = post_consent(client, action="accept_all").json["visitor_id"]
    post_consent(client, action="save", decisions={"partner_sharing": "granted"}, visitor_id=visitor)

    withdrawn = post_consent(client, action="withdraw", visitor_id=visitor)

    assert withdrawn.status_code == 201, withdrawn.json
    assert allowed(client, f"visitor:{visitor}", WEB[1:]) == dict.fromkeys(WEB[1:], False)


# Receipts


def receipt_of(app, client, event_id: str) -> dict:
    tokens: ReceiptTokens = app.extensions["cmp.receipt_tokens"]
    token = tokens.sign("shop", event_id)
    response = client.get(f"/api/v1/sites/shop/receipts/{event_id}", query_string={"token": token})
    assert response.status_code == 200, response.json
    return response.json


def test_a_receipt_marks_separate_consents_and_names_their_recipients(app, client, shop, validator):  # noqa: F811
    visitor = post_consent(client, action="reject_all").json["visitor_id"]
    granted = post_consent(client, action="save", decisions={"cross_border_transfer": "granted"}, visitor_id=visitor)
    refused = events()[0]

    receipt = receipt_of(app, client, granted.json["event_id"])

    assert problems(validator, receipt) == []
    entries = {p["purposeCategory"][0]: p for p in receipt["services"][0]["purposes"]}
    assert entries["cross_border_transfer"]["decision"] == "granted"
    assert entries["cross_border_transfer"]["separateConsent"] is True
    assert entries["cross_border_transfer"]["thirdPartyDisclosure"] is True
    assert entries["cross_border_transfer"]["thirdPartyName"] == (
        "Shop Technology (Shenzhen) Co., Ltd. (privacy@shop.example.cn)"
    )
    assert entries["necessary"]["separateConsent"] is False
    everything_refused = receipt_of(app, client, refused.id)
    assert problems(validator, everything_refused) == []
    entries = {p["purposeCategory"][0]: p for p in everything_refused["services"][0]["purposes"]}
    assert entries["partner_sharing"]["separateConsent"] is True and entries["analytics"]["separateConsent"] is False
    assert entries["partner_sharing"]["thirdPartyName"] == "Parcel Partners Ltd. (+44 20 7946 0000)"


def test_a_receipt_under_a_notice_that_named_recipients_as_plain_text_still_names_them(app, client, shop):
    # As notices published before recipients had contacts carry them; a published notice never changes.
    content = json.loads(json.dumps(notices.current_notice(shop).content))
    for purpose in content["purposes"]:
        purpose["recipients"] = [r["name"] for r in purpose["recipients"]]
        purpose.pop("separate_consent")
    db.session.add(
        NoticeVersion(site_id=shop.id, version=2, content=content, content_hash=notices.content_hash(content))
    )
    db.session.commit()
    event = post_consent(client, action="reject_all", notice_version=2).json["event_id"]

    entries = {p["purposeCategory"][0]: p for p in receipt_of(app, client, event)["services"][0]["purposes"]}

    assert entries["cross_border_transfer"]["thirdPartyName"] == TRANSFER_RECIPIENT["name"]
    assert entries["cross_border_transfer"]["separateConsent"] is False  # that notice asked for nothing separately


# The command line


def test_purpose_add_separate_consent_from_the_command_line(runner, app):
    sites.create_site("shop", "Shop", origins=[ORIGIN])
    db.session.commit()
    command = (
        "purpose add shop cross_border_transfer --separate-consent --name 'en=International transfer' "
        "--description 'en=Storing your data in China.' --means 'en=Encrypted, stored in Shenzhen.' "
        "--rights 'en=Write to the recipient.' --categories 'de=Kontaktdaten' --pii-category 'Contact details' "
        "--recipient 'Shop Technology (Shenzhen) Co., Ltd. <privacy@shop.example.cn>'"
    )

    result = runner.invoke(args=shlex.split(command))

    assert result.exit_code == 0, result.output
    db.session.expire_all()
    purpose = sites.get_site("shop").purpose("cross_border_transfer")
    assert purpose.separate_consent is True
    assert purpose.recipients == [TRANSFER_RECIPIENT]
    assert purpose.texts["en"]["means"] == "Encrypted, stored in Shenzhen."
    assert purpose.texts["de"] == {"categories": "Kontaktdaten"}
    # Denied everywhere until given, as a double opt-in is.
    assert (purpose.default_opt_in, purpose.default_opt_out, purpose.default_notice_only) == ("denied",) * 3
    shown = runner.invoke(args=["site", "show", "shop"])
    assert "cross_border_transfer" in shown.output and "separate consent" in shown.output


def test_purpose_add_refuses_a_separate_consent_without_a_recipient_contact_and_adds_nothing(runner, app):
    sites.create_site("shop", "Shop", origins=[ORIGIN])
    db.session.commit()
    command = (
        "purpose add shop cross_border_transfer --separate-consent --name 'en=International transfer' "
        "--description 'en=Abroad.' --means 'en=Encrypted.' --rights 'en=Write to us.' "
        "--pii-category 'Contact details' --recipient 'Shop Technology (Shenzhen) Co., Ltd.'"
    )

    result = runner.invoke(args=shlex.split(command))

    assert result.exit_code != 0
    assert "recipient with a contact" in result.output
    db.session.expire_all()
    assert sites.get_site("shop").purpose("cross_border_transfer") is None


# The data conversion in migration 0014


def test_migration_0014_gives_recipients_a_contact_and_stepping_down_keeps_their_names(empty_database):  # noqa: F811
    with migrations_app(empty_database):
        upgrade()
        site = sites.create_site("shop", "Shop", seed_purposes=False)
        sites.add_purpose(
            site,
            "partner_sharing",
            texts={"en": {"name": "Partners"}},
            recipients=[PARTNER_RECIPIENT, "Auditors LLP"],
        )
        db.session.commit()
        read = sa.text("SELECT recipients FROM purposes")

        downgrade(revision="0013")
        stored = db.session.execute(read).scalar_one()
        db.session.rollback()
        # SQLite hands JSON back as text, PostgreSQL's JSONB as a list.
        assert (json.loads(stored) if isinstance(stored, str) else stored) == ["Parcel Partners Ltd.", "Auditors LLP"]
        upgrade()

        db.session.expire_all()
        assert db.session.scalars(sa.select(Purpose)).one().recipients == [
            {"name": "Parcel Partners Ltd.", "contact": None},
            {"name": "Auditors LLP", "contact": None},
        ]
