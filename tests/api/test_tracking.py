"""Email opens and clicks, recorded only where `email_tracking` is granted; links redirect only where signed."""

from __future__ import annotations

from datetime import timedelta

import itsdangerous
import pytest
import sqlalchemy as sa

from cmp.api.pages import TRANSPARENT_GIF as PIXEL
from cmp.extensions import db
from cmp.models import ConsentState, EmailActivity
from cmp.models.types import utcnow
from cmp.services import chain, notices
from cmp.services.email import Link, LinkKind
from tests.conftest import running_app
from tests.helpers import counts, events

PUBLIC = "https://cmp.example"
ADDRESS = "grace.hopper@example.org"
MESSAGE = "<spring-sale.42@mail.shop.example>"
DESTINATION = "https://shop.example/sale?utm_campaign=spring#top"


@pytest.fixture
def app(database_url):
    with running_app(database_url, CMP_PUBLIC_URL=PUBLIC) as app:
        yield app


def decide(client, writer, decision: str, address=ADDRESS):
    """The sign-up form's separate tracking choice, recorded by the sender's server."""
    response = client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": f"email:{address}", "decisions": {"email_tracking": decision}},
        headers=writer,
    )
    assert response.status_code == 201, response.json


def subscribed(client, sender, address=ADDRESS) -> str:
    """A recipient with a pending subscription and no tracking decision; their subject id."""
    response = client.post("/api/v1/email/subscriptions", json={"site": "shop", "email": address}, headers=sender)
    assert response.status_code == 201, response.json
    return response.json["subject_id"]


def links(client, sender, address=ADDRESS, destinations=(DESTINATION,), **body) -> dict:
    response = client.post(
        "/api/v1/email/tracking-links",
        json={"site": "shop", "email": address, "message_id": MESSAGE, "destinations": list(destinations), **body},
        headers=sender,
    )
    assert response.status_code == 200, response.json
    return response.json


def activity() -> list[EmailActivity]:
    return list(db.session.scalars(sa.select(EmailActivity).order_by(EmailActivity.id)))


def tampered(url: str) -> str:
    head, signature = url.rsplit(".", 1) if not url.endswith(".gif") else url[:-4].rsplit(".", 1)
    suffix = ".gif" if url.endswith(".gif") else ""
    return f"{head}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}{suffix}"


def assert_pixel(response):
    assert response.status_code == 200
    assert response.mimetype == "image/gif" and response.data == PIXEL
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers


def signed(app, kind: LinkKind, subject_id: str) -> str:
    """A link signed with the service's key for the subject, as one mailed while tracking was allowed would be.

    The service mints none while tracking is not allowed; the gate must hold for those already mailed all the same.
    """
    tokens = app.extensions["cmp.email_tokens"]
    if kind == LinkKind.OPEN:
        return f"{PUBLIC}/t/o/{tokens.sign(Link(kind, 'shop', subject_id, message_id=MESSAGE))}.gif"
    return f"{PUBLIC}/t/c/{tokens.sign(Link(kind, 'shop', subject_id, message_id=MESSAGE, destination=DESTINATION))}"


# --- minting links ----------------------------------------------------------------------------------------------


def test_the_sender_gets_signed_pixel_and_link_urls(client, site, sender, writer):
    decide(client, writer, "granted")
    body = links(client, sender, destinations=[DESTINATION, "https://shop.example/help"])
    assert body["site"] == "shop" and body["message_id"] == MESSAGE
    assert body["tracking"] == {"allowed": True, "reason": "granted"}
    assert body["open_pixel_url"].startswith(f"{PUBLIC}/t/o/") and body["open_pixel_url"].endswith(".gif")
    assert [link["destination"] for link in body["links"]] == [DESTINATION, "https://shop.example/help"]
    assert all(link["url"].startswith(f"{PUBLIC}/t/c/") for link in body["links"])
    for url in [body["open_pixel_url"], *(link["url"] for link in body["links"])]:
        token = url.rsplit("/", 1)[1].removesuffix(".gif")
        _, said = itsdangerous.URLSafeTimedSerializer("any").loads_unsafe(token)
        assert "grace" not in str(said) and said["purpose"] == "email_tracking"


def test_without_tracking_consent_the_sender_gets_no_pixel_and_plain_links(client, site, sender, writer):
    subscribed(client, sender)
    for reason in ("no_record", "denied"):
        if reason == "denied":
            decide(client, writer, "denied")
        body = links(client, sender, destinations=[DESTINATION, "https://shop.example/help"])
        assert body["tracking"] == {"allowed": False, "reason": reason}
        assert body["open_pixel_url"] is None  # nothing to mail
        assert body["links"] == [
            {"destination": DESTINATION, "url": DESTINATION},
            {"destination": "https://shop.example/help", "url": "https://shop.example/help"},
        ]
    decide(client, writer, "granted")
    assert links(client, sender)["open_pixel_url"].startswith(f"{PUBLIC}/t/o/")


def test_links_for_an_unknown_recipient_are_404(client, site, sender):
    response = client.post(
        "/api/v1/email/tracking-links",
        json={"site": "shop", "email": "nobody@example.org", "message_id": MESSAGE},
        headers=sender,
    )
    assert response.status_code == 404 and response.json["error"]["code"] == "unknown_recipient"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"message_id": f"<{ADDRESS}.1@mail.example>"}, "address_in_link"),
        ({"destinations": [f"https://shop.example/welcome?email={ADDRESS}"]}, "address_in_link"),
        ({"destinations": ["https://shop.example/welcome?email=Grace.Hopper%40example.org"]}, "address_in_link"),
        ({"destinations": ["javascript:alert(1)"]}, "invalid"),
        ({"destinations": ["//evil.example/"]}, "invalid"),
        ({"message_id": "has spaces"}, "invalid"),
        ({"message_id": ""}, "invalid"),
    ],
)
def test_links_that_would_carry_the_address_or_a_bad_destination_are_refused(client, site, sender, writer, body, code):
    decide(client, writer, "granted")
    response = client.post(
        "/api/v1/email/tracking-links",
        json={"site": "shop", "email": ADDRESS, "message_id": MESSAGE, **body},
        headers=sender,
    )
    assert response.status_code == 422 and response.json["error"]["code"] == code


# --- the open pixel ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decision", "recorded"), [("granted", 1), ("denied", 0), (None, 0)], ids=["granted", "denied", "no-record"]
)
def test_the_pixel_is_always_the_gif_and_counts_an_open_only_where_granted(
    app, client, site, sender, writer, decision, recorded
):
    subject_id = subscribed(client, sender)
    if decision:
        decide(client, writer, decision)
    before = counts()
    response = client.get(signed(app, LinkKind.OPEN, subject_id))
    assert_pixel(response)
    opens = activity()
    assert len(opens) == recorded
    if recorded:
        [opened] = opens
        assert opened.kind == "open" and opened.message_id == MESSAGE and opened.destination_host is None
        assert opened.site_id == site.id and opened.subject_id == events()[-1].subject_id
    assert counts() == before  # an open is not a consent event


@pytest.mark.parametrize(
    "change",
    [
        tampered,
        lambda url: f"{PUBLIC}/t/o/garbage.gif",
        lambda url: f"{PUBLIC}/t/o/{'x' * 3000}.gif",
        lambda url: url.replace("/t/o/", "/t/o/eyJ"),
    ],
    ids=["signature", "garbage", "long", "payload"],
)
def test_the_pixel_answers_the_same_gif_whatever_the_token(client, site, sender, writer, change):
    decide(client, writer, "granted")
    url = links(client, sender)["open_pixel_url"]
    assert_pixel(client.get(change(url)))
    assert activity() == []


def test_a_click_token_is_not_an_open(client, site, sender, writer):
    decide(client, writer, "granted")
    click = links(client, sender)["links"][0]["url"]
    assert_pixel(client.get(click.replace("/t/c/", "/t/o/") + ".gif"))
    assert activity() == []


# --- tracked links ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("decision", "recorded"), [("granted", 1), ("denied", 0), (None, 0)])
def test_a_click_redirects_to_its_signed_destination_and_counts_only_where_granted(
    app, client, site, sender, writer, decision, recorded
):
    subject_id = subscribed(client, sender)
    if decision:
        decide(client, writer, decision)
    response = client.get(signed(app, LinkKind.CLICK, subject_id))
    assert response.status_code == 302
    assert response.headers["Location"] == DESTINATION
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    clicks = activity()
    assert len(clicks) == recorded
    if recorded:
        assert clicks[0].kind == "click" and clicks[0].message_id == MESSAGE
        assert clicks[0].destination_host == "shop.example"  # never the path or query


FORGED = itsdangerous.URLSafeTimedSerializer("guessed", salt="cmp.email.click").dumps(
    {"site": "shop", "subject": "x", "purpose": "email_tracking", "message": "m", "url": "https://evil.example"}
)


@pytest.mark.parametrize(
    ("change", "status"),
    [
        (tampered, 400),
        (lambda url: url.replace("/t/c/", "/t/c/eyJ"), 400),
        (lambda url: f"{PUBLIC}/t/c/{FORGED}", 400),
        (lambda url: f"{PUBLIC}/t/c/https:evil.example", 400),
        (lambda url: f"{PUBLIC}/t/c/https:%2F%2Fevil.example", 404),  # no such route
    ],
    ids=["signature", "payload", "other-key", "raw-url", "raw-url-with-slashes"],
)
def test_a_tampered_click_gets_no_redirect(client, site, sender, writer, change, status):
    decide(client, writer, "granted")
    url = links(client, sender)["links"][0]["url"]
    response = client.get(change(url), headers={"Accept-Language": "de"})
    assert response.status_code == status
    assert "Location" not in response.headers
    if status == 400:
        assert response.mimetype == "text/html" and "Dieser Link ist ungültig" in response.get_data(as_text=True)
    assert activity() == []


def test_a_signed_click_for_a_subject_or_site_gone_still_redirects_and_records_nothing(app, client, site):
    """The destination is signed, so the reader of an old email still gets there; there is no one to record."""
    tokens = app.extensions["cmp.email_tokens"]
    for link in (
        Link(LinkKind.CLICK, "shop", "nobody", message_id="m", destination=DESTINATION),
        Link(LinkKind.CLICK, "gone", "nobody", message_id="m", destination=DESTINATION),
    ):
        response = client.get(f"/t/c/{tokens.sign(link)}")
        assert response.status_code == 302
        assert response.headers["Location"] == DESTINATION
    assert db.session.scalar(sa.select(sa.func.count()).select_from(EmailActivity)) == 0


def test_an_open_token_is_not_a_click(client, site, sender, writer):
    decide(client, writer, "granted")
    pixel = links(client, sender)["open_pixel_url"]
    response = client.get(pixel.replace("/t/o/", "/t/c/").removesuffix(".gif"))
    assert response.status_code == 400 and "Location" not in response.headers


# --- the gate follows the current state -----------------------------------------------------------------------------


def test_tracking_stops_when_it_is_refused_after_the_email_was_sent(client, site, sender, writer):
    decide(client, writer, "granted")
    sent = links(client, sender)
    client.get(sent["open_pixel_url"])
    decide(client, writer, "denied")
    assert_pixel(client.get(sent["open_pixel_url"]))
    assert client.get(sent["links"][0]["url"]).headers["Location"] == DESTINATION
    assert [a.kind for a in activity()] == ["open"]


def test_an_expired_grant_records_nothing(client, site, sender, writer):
    decide(client, writer, "granted")
    sent = links(client, sender)
    db.session.execute(
        sa.update(ConsentState)
        .where(ConsentState.purpose == "email_tracking")
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    client.get(sent["open_pixel_url"])
    client.get(sent["links"][0]["url"])
    assert activity() == []


def test_a_material_notice_change_stops_tracking_until_asked_again(client, site, sender, writer):
    decide(client, writer, "granted")
    sent = links(client, sender)
    site.policy_url = "https://shop.example/privacy-2027"
    notices.publish_notice(site, material=True)
    db.session.commit()
    client.get(sent["open_pixel_url"])
    assert activity() == []
    decide(client, writer, "granted")
    client.get(sent["open_pixel_url"])
    assert len(activity()) == 1


def test_opens_and_clicks_leave_the_consent_log_and_its_chain_alone(client, site, sender, writer):
    decide(client, writer, "granted")
    sent = links(client, sender)
    before = [e.id for e in events()]
    for _ in range(3):
        client.get(sent["open_pixel_url"])
        client.get(sent["links"][0]["url"])
    assert len(activity()) == 6
    assert [e.id for e in events()] == before
    assert chain.verify_site(site).ok


def test_tracking_routes_never_log_their_tokens(client, site, sender, writer, caplog):
    decide(client, writer, "granted")
    sent = links(client, sender)
    with caplog.at_level("INFO", logger="cmp.request"):
        client.get(sent["open_pixel_url"])
        client.get(sent["links"][0]["url"])
    paths = [record.path for record in caplog.records if record.name == "cmp.request"]
    assert paths == ["/t/o/<token>.gif", "/t/c/<token>"]
