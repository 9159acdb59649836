"""Mail scanners fetch every link of a message: none of those fetches may confirm a subscription, and a message sent
without tracking consent carries nothing that tracks. `email_tracking` is granted by its own decision alone."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from urllib.parse import urljoin

import pytest
import sqlalchemy as sa

from cmp.extensions import db
from cmp.models import ConsentEvent, EmailActivity
from tests.api.test_email import ADDRESS, PUBLIC, ask, confirm, confirmed, pending, signed_ago, subscribe, text
from tests.conftest import running_app
from tests.helpers import CHROME, bearer, counts, events

TRACKING_LINKS = "/api/v1/email/tracking-links"
SALE = "https://shop.example/sale"
# What link scanners announce themselves as, besides plain browsers.
SCANNERS = (
    "Mozilla/5.0 (compatible; Microsoft Office Protocol Discovery)",
    "Mozilla/5.0 (compatible; BingPreview/1.0b)",
    "Mozilla/5.0 (compatible; Barracuda Sentinel)",
    CHROME,
)


@pytest.fixture
def app(database_url):
    with running_app(database_url, CMP_PUBLIC_URL=PUBLIC) as app:
        yield app


class _Links(HTMLParser):
    """Every URL an HTML document points to: links, images, scripts, frames and form actions."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("href", "src", "action") and value]


def urls_in_html(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.urls


def mail(*urls: str, pixel: str | None = None) -> bytes:
    """A message as a sender would put it on the wire: each URL in the text part and as a link in the HTML part."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = "news@shop.example"
    message["To"] = ADDRESS
    message["Subject"] = "Shop"
    message.set_content("\n".join(urls))
    html = "".join(f'<p><a href="{url}">{url}</a></p>' for url in urls)
    if pixel:
        html += f'<img src="{pixel}" width="1" height="1" alt="">'
    message.add_alternative(f"<html><body>{html}</body></html>", subtype="html")
    return message.as_bytes()


def urls_in_mail(raw: bytes) -> set[str]:
    """What a scanner finds in a message: every URL of every part, in the text and in the HTML."""
    found = set()
    for part in message_from_bytes(raw, policy=policy.default).walk():
        if part.get_content_maintype() != "text":
            continue
        content = part.get_content()
        found.update(re.findall(r"https?://[^\s\"'<>]+", content))
        if part.get_content_subtype() == "html":
            found.update(urls_in_html(content))
    return found


def scan(app, raw: bytes) -> list[int]:
    """Fetch every link of the message that leads to this service, as scanners do, with each scanner's user agent:
    HEAD, then GET, then whatever a redirect or the fetched page points to here; no cookies, and never a form
    submitted. The statuses answered."""
    statuses = []
    to_fetch = sorted(url for url in urls_in_mail(raw) if url.startswith(PUBLIC))
    assert to_fetch, "the message holds no link to this service"
    seen = set()
    while to_fetch:
        url = to_fetch.pop()
        if url in seen:
            continue
        seen.add(url)
        for agent in SCANNERS:
            scanner = app.test_client(use_cookies=False)
            headers = {"User-Agent": agent}
            statuses.append(scanner.head(url, headers=headers).status_code)
            page = scanner.get(url, headers=headers)
            statuses.append(page.status_code)
            pointed_to = [page.location] if page.location else []
            if page.mimetype == "text/html":
                pointed_to += urls_in_html(text(page))
            to_fetch += [urljoin(url, link) for link in pointed_to if urljoin(url, link).startswith(PUBLIC)]
    return statuses


def tracking_links(client, sender, destinations=(SALE,)) -> dict:
    response = client.post(
        TRACKING_LINKS,
        json={"site": "shop", "email": ADDRESS, "message_id": "<m.1@mail.shop.example>", "destinations": destinations},
        headers=sender,
    )
    assert response.status_code == 200, response.json
    return response.json


def record(client, writer, **body):
    return client.post("/api/v1/sites/shop/consents", json={"subject": f"email:{ADDRESS}", **body}, headers=writer)


def activity() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(EmailActivity))


# --- confirmation: the page asks, the button confirms ----------------------------------------------------------


def test_opening_the_confirmation_link_shows_one_button_and_changes_nothing(client, site, sender, reader):
    url = pending(client, sender, locale="de")
    subscribed = ask(client, reader)
    before = counts()

    page = client.get(url, headers={"Accept-Language": "fr"})
    assert page.status_code == 200
    html = text(page)
    assert '<html lang="de">' in html and "Anmeldung bestätigen" in html  # the subscriber's language, not the browser's
    assert html.count("<button") == 1 and html.count("<form") == 1 and '<form method="post">' in html
    assert "<script" not in html and urls_in_html(html) == []  # posts to the link itself; loads nothing
    policy_header = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy_header and "form-action 'self'" in policy_header
    assert page.headers["Cache-Control"] == "no-store" and "Set-Cookie" not in page.headers

    head = client.head(url)
    assert head.status_code == 200 and head.data == b""

    assert counts() == before
    assert ask(client, reader) == subscribed
    assert subscribed["allowed"] is False and subscribed["reason"] == "denied"


def test_the_button_confirms_once_and_a_second_press_records_nothing(client, site, sender, reader):
    url = pending(client, sender, locale="fr")
    done = confirm(client, url, headers={"User-Agent": CHROME})
    assert done.status_code == 200 and "Inscription confirmée" in text(done)
    assert "<button" not in text(done)
    granted = ask(client, reader)
    assert granted["allowed"] is True and granted["reason"] == "granted"
    confirm_event = events()[-1]
    assert (confirm_event.action, confirm_event.source) == ("confirm", "email_link")
    assert confirm_event.user_agent["browser"] == "Chrome"  # the press is the evidence of the opt-in
    before = counts()

    again = confirm(client, url)  # a double click
    assert again.status_code == 200 and "Inscription déjà confirmée" in text(again)
    assert counts() == before
    assert ask(client, reader) == granted


def test_a_scanner_fetching_every_link_of_the_confirmation_mail_confirms_nothing(app, client, site, sender, reader):
    url = pending(client, sender)
    before = counts()

    statuses = scan(app, mail(url))

    assert set(statuses) == {200}
    assert counts() == before
    assert [e.action for e in events()] == ["subscribe"]
    assert ask(client, reader)["reason"] == "denied"
    # The person, pressing the button afterwards, is the one who confirms.
    assert confirm(client, url).status_code == 200
    assert ask(client, reader)["allowed"] is True


@pytest.mark.parametrize(
    "body",
    [{}, {"List-Unsubscribe": "One-Click"}, {"confirm": "unsubscribe"}, {"confirm": "yes"}],
    ids=["empty", "one-click", "other-button", "wrong-value"],
)
def test_a_post_that_is_not_the_button_confirms_nothing(client, site, sender, reader, body):
    url = pending(client, sender)
    before = counts()
    response = client.post(url, data=body)
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "Nothing has changed" in text(response)
    assert counts() == before
    assert ask(client, reader)["reason"] == "denied"


def test_an_expired_link_is_the_same_error_page_however_it_is_asked_for(client, site, sender, reader, monkeypatch):
    signed_ago(monkeypatch, 8 * 24 * 3600)
    url = pending(client, sender)
    monkeypatch.undo()
    before = counts()
    for response in (client.get(url), client.head(url), confirm(client, url)):
        assert response.status_code == 400
    assert "This link has expired" in text(client.get(url)) and "This link has expired" in text(confirm(client, url))
    assert counts() == before
    assert ask(client, reader)["reason"] == "denied"


# --- tracking: nothing to mail without consent -----------------------------------------------------------------


def test_without_tracking_consent_the_message_holds_no_pixel_and_no_tracked_link(app, client, site, sender, reader):
    confirmed(client, sender)  # marketing email allowed, tracking never asked
    body = tracking_links(client, sender, destinations=[SALE, "https://shop.example/help"])
    assert body["tracking"] == {"allowed": False, "reason": "no_record"}
    assert body["open_pixel_url"] is None
    assert [link["url"] for link in body["links"]] == [SALE, "https://shop.example/help"]

    message = mail(*(link["url"] for link in body["links"]), pixel=body["open_pixel_url"])
    assert not any(url.startswith(PUBLIC) for url in urls_in_mail(message))  # nothing leads back here
    assert activity() == 0


def test_a_restricted_recipient_gets_no_pixel_even_with_tracking_granted(app, client, site, sender, writer, reader):
    assert record(client, writer, decisions={"email_tracking": "granted"}).status_code == 201
    earlier = tracking_links(client, sender)
    assert earlier["open_pixel_url"].startswith(f"{PUBLIC}/t/o/")
    desk = bearer("dsr")
    restricted = client.post(f"/api/v1/subjects/email:{ADDRESS}/restrict", json={"site": "shop"}, headers=desk)
    assert restricted.status_code == 200, restricted.json

    now = tracking_links(client, sender)
    assert now["tracking"]["allowed"] is False and now["tracking"]["reason"] == "restricted"
    assert now["open_pixel_url"] is None and now["links"][0]["url"] == SALE
    # A message mailed before the restriction: its pixel and link still answer, and record nothing.
    assert set(scan(app, mail(earlier["links"][0]["url"], pixel=earlier["open_pixel_url"]))) == {200, 302}
    assert activity() == 0

    lifted = client.post(f"/api/v1/subjects/email:{ADDRESS}/unrestrict", json={"site": "shop"}, headers=desk)
    assert lifted.status_code == 200, lifted.json
    assert tracking_links(client, sender)["open_pixel_url"].startswith(f"{PUBLIC}/t/o/")


def test_a_child_gets_no_pixel_until_a_guardian_grants_tracking(client, site, sender, writer):
    desk = bearer("dsr")
    assert record(client, writer, decisions={"email_tracking": "granted"}).status_code == 201
    aged = client.post(f"/api/v1/subjects/email:{ADDRESS}/age", json={"site": "shop", "age": 12}, headers=desk)
    assert aged.status_code == 200, aged.json

    own = tracking_links(client, sender)
    assert own["tracking"]["reason"] == "guardian_required" and own["open_pixel_url"] is None
    granted = record(client, writer, decisions={"email_tracking": "granted"}, given_by="guardian")
    assert granted.status_code == 201, granted.json
    assert tracking_links(client, sender)["open_pixel_url"].startswith(f"{PUBLIC}/t/o/")


# --- email_tracking: its own decision, nothing else ------------------------------------------------------------


def test_a_server_side_accept_all_does_not_grant_email_tracking(client, site, sender, writer, reader):
    accepted = record(client, writer, action="accept_all")
    assert accepted.status_code == 201, accepted.json
    assert "email_tracking" not in accepted.json["decisions"]
    assert accepted.json["decisions"]["analytics"] == "granted"  # it did accept the rest
    assert ask(client, reader, purpose="analytics")["allowed"] is True
    tracking = ask(client, reader, purpose="email_tracking")
    assert tracking["allowed"] is False and tracking["reason"] == "no_record"
    assert tracking_links(client, sender)["open_pixel_url"] is None


def test_email_tracking_is_granted_by_a_decision_of_its_own_alone(client, site, sender, writer, reader):
    before = counts()
    bundled = record(client, writer, decisions={"email_tracking": "granted", "analytics": "granted"})
    assert bundled.status_code == 422 and bundled.json["error"]["code"] == "separate_consent_required"
    assert counts() == before

    alone = record(client, writer, decisions={"email_tracking": "granted"})
    assert alone.status_code == 201, alone.json
    assert alone.json["decisions"] == {"email_tracking": "granted"}
    assert ask(client, reader, purpose="email_tracking")["allowed"] is True
    assert tracking_links(client, sender)["open_pixel_url"].startswith(f"{PUBLIC}/t/o/")


def test_subscribing_and_confirming_never_grant_email_tracking(client, site, sender, reader):
    before = counts()
    smuggled = subscribe(client, sender, decisions={"email_tracking": "granted"})
    assert smuggled.status_code == 422 and smuggled.json["error"]["code"] == "invalid"
    assert counts() == before

    confirmed(client, sender)
    assert ask(client, reader)["allowed"] is True
    assert ask(client, reader, purpose="email_tracking")["reason"] == "no_record"
    decided = db.session.scalars(sa.select(ConsentEvent.decisions).order_by(ConsentEvent.seq)).all()
    assert decided == [{"marketing_email": "denied"}, {"marketing_email": "granted"}]
