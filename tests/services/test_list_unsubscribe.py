"""The List-Unsubscribe header survives a sender that sets it on an email message and sends it as Python does.

A sender does the obvious: `msg["List-Unsubscribe"] = value` on an `EmailMessage` with `policy.SMTP` (what
`smtplib.send_message` uses). The message is serialised to bytes, parsed back as a receiving mail system would,
and the header checked as a list with `listunsub`: still one https URI, one-click, not RFC 2047 encoded words.
"""

from __future__ import annotations

import email
import re
from email import policy
from email.message import EmailMessage

import listunsub
import pytest
import sqlalchemy as sa

from cmp.extensions import db
from cmp.models import UnsubscribeLink
from cmp.services import notices, sites
from cmp.services.email import MAX_HEADER_LINE, MAX_PUBLIC_URL_LENGTH
from tests.conftest import running_app
from tests.helpers import ORIGIN, bearer

# The longest public URL the service accepts (docs/configuration.md, CMP_PUBLIC_URL).
PUBLIC = "https://consent.example-company.com"
ADDRESS = "ada@example.org"
DKIM = "v=1; a=rsa-sha256; d=shop.example; s=s1; h=from:to:subject:list-unsubscribe:list-unsubscribe-post"


@pytest.fixture
def app(database_url):
    with running_app(database_url, CMP_PUBLIC_URL=PUBLIC) as app:
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def sender(app):
    notices.publish_notice(sites.create_site("shop", "Shop", origins=[ORIGIN]))
    db.session.commit()
    key = bearer("email:write")
    # A confirmed subscriber, who is mailed.
    subscribed = app.test_client().post(
        "/api/v1/email/subscriptions", json={"site": "shop", "email": ADDRESS, "locale": "de"}, headers=key
    )
    assert subscribed.status_code == 201, subscribed.json
    confirmed = app.test_client().post(
        subscribed.json["confirmation_url"].removeprefix(PUBLIC), data={"confirm": "subscribe"}
    )
    assert confirmed.status_code == 200
    return key


def headers_for(client, sender) -> dict[str, str]:
    response = client.get("/api/v1/email/headers", query_string={"site": "shop", "email": ADDRESS}, headers=sender)
    assert response.status_code == 200, response.json
    return response.json["headers"]


def sent_and_received(headers: dict[str, str]) -> bytes:
    """The message as smtplib would put it on the wire."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = "news@shop.example"
    message["To"] = ADDRESS
    message["Subject"] = "Unsere Angebote"
    for name, value in headers.items():
        message[name] = value
    message.set_content("Hallo Ada")
    return message.as_bytes()


def test_the_longest_public_url_is_the_limit():
    assert len(PUBLIC) == MAX_PUBLIC_URL_LENGTH
    assert len(f"List-Unsubscribe: <{PUBLIC}/u/{'x' * 20}>") == MAX_HEADER_LINE


def test_list_unsubscribe_survives_a_python_sender_as_a_valid_one_click_list(client, sender):
    headers = headers_for(client, sender)

    wire = sent_and_received(headers)
    received = email.message_from_bytes(wire, policy=policy.default)

    # On the wire: one unfolded line, no encoded words.
    [line] = [line for line in wire.split(b"\r\n") if line.lower().startswith(b"list-unsubscribe:")]
    assert line == f"List-Unsubscribe: {headers['List-Unsubscribe']}".encode()
    assert len(line) <= MAX_HEADER_LINE and b"=?" not in line
    # As the receiving side reads it, raw (a mail client does not decode RFC 2047 in this header).
    raw = dict(received.raw_items())
    value = re.sub(r"\r\n[ \t]", " ", raw["List-Unsubscribe"]).strip()
    post = raw["List-Unsubscribe-Post"].strip()
    parsed = listunsub.parse_header(value, strict=True)
    [url] = parsed.https
    assert url.startswith(f"{PUBLIC}/u/")
    assert listunsub.audit(value, post, dkim_signatures=[DKIM]) == []
    action = listunsub.choose(parsed, post, dkim_verified=True)
    assert action.kind == "one-click" and action.uri == url

    # And the mail client's one-click POST to it unsubscribes.
    request = listunsub.one_click_request(url)
    response = client.post(request.url.removeprefix(PUBLIC), data=request.body, headers=request.headers)
    assert response.status_code == 200 and "Sie sind abgemeldet" in response.get_data(as_text=True)
    lookup = client.get(
        "/api/v1/consents/lookup",
        query_string={"site": "shop", "subject": f"email:{ADDRESS}", "purpose": "marketing_email"},
        headers=bearer("consent:read"),
    )
    assert lookup.json["reason"] == "withdrawn"


def test_a_signed_token_would_not_have_survived(client, sender):
    """Why links are short: a URL with a signed token (about 150 characters) comes out as encoded words."""
    long_url = f"{PUBLIC}/email/unsubscribe/{'x' * 150}"
    wire = sent_and_received({"List-Unsubscribe": f"<{long_url}>"})
    assert b"List-Unsubscribe: =?utf-8?q?" in wire


def test_erasing_the_recipient_deletes_their_unsubscribe_link(client, sender):
    url = headers_for(client, sender)["List-Unsubscribe"].strip("<>")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UnsubscribeLink)) == 1

    erased = client.post(f"/api/v1/subjects/email:{ADDRESS}/erase", json={"site": "shop"}, headers=bearer("dsr"))

    assert erased.status_code == 200, erased.json
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UnsubscribeLink)) == 0
    assert client.get(url.removeprefix(PUBLIC)).status_code == 404
