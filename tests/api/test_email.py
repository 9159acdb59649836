"""Marketing email: double opt-in, RFC 8058 one-click unsubscribe, and the headers a sender adds."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import timedelta

import itsdangerous
import listunsub
import pytest
import sqlalchemy as sa

from cmp import ConfigError
from cmp.config import load_settings
from cmp.errors import Malformed
from cmp.extensions import db
from cmp.models import ConsentEvent, UnsubscribeLink
from cmp.services import chain, notices, sites
from cmp.services.email import EmailTokens, Link, LinkKind
from tests.conftest import LOG_KEY, running_app
from tests.helpers import CHROME, ORIGIN, bearer, counts, events

PUBLIC = "https://cmp.example"
ADDRESS = "Ada.Lovelace@Example.org"
SUBSCRIPTIONS = "/api/v1/email/subscriptions"
HEADERS = "/api/v1/email/headers"
TRACKING_LINKS = "/api/v1/email/tracking-links"
DAY = 24 * 3600


@pytest.fixture
def app(database_url):
    with running_app(database_url, CMP_PUBLIC_URL=PUBLIC) as app:
        yield app


def subscribe(client, sender, address=ADDRESS, **body):
    return client.post(SUBSCRIPTIONS, json={"site": "shop", "email": address, **body}, headers=sender)


def pending(client, sender, address=ADDRESS, **body) -> str:
    """Subscribe and return the confirmation URL."""
    response = subscribe(client, sender, address, **body)
    assert response.status_code == 201, response.json
    return response.json["confirmation_url"]


def confirm(client, url, **kwargs):
    """Press the confirmation page's button: a POST of its form to the link's URL."""
    return client.post(url, data={"confirm": "subscribe"}, **kwargs)


def confirmed(client, sender, address=ADDRESS, **body) -> str:
    """Subscribe and confirm; return the confirmation URL."""
    url = pending(client, sender, address, **body)
    assert confirm(client, url).status_code == 200
    return url


def unsubscribe_url(client, sender, address=ADDRESS, **query) -> str:
    response = client.get(HEADERS, query_string={"site": "shop", "email": address, **query}, headers=sender)
    assert response.status_code == 200, response.json
    return response.json["unsubscribe_url"]


def ask(client, reader, address=ADDRESS, purpose="marketing_email") -> dict:
    response = client.get(
        "/api/v1/consents/lookup",
        query_string={"site": "shop", "subject": f"email:{address}", "purpose": purpose},
        headers=reader,
    )
    assert response.status_code == 200, response.json
    return response.json


def one_click(client, url, form="multipart"):
    """POST as a mail client does under RFC 8058: the URI's token and the one-click body, nothing else."""
    request = listunsub.one_click_request(url, form=form)
    return client.post(request.url, data=request.body, headers=request.headers)


def text(response) -> str:
    return response.get_data(as_text=True)


def payload(url: str) -> dict:
    """What a token in a URL says, read without its key (tokens are signed, not encrypted)."""
    token = url.rsplit("/", 1)[1].removesuffix(".gif")
    _, value = itsdangerous.URLSafeTimedSerializer("any key").loads_unsafe(token)
    return value


def tampered(url: str) -> str:
    """The URL with the first character of its token's signature changed (every bit of it counts)."""
    head, signature = url.rsplit(".", 1)
    return f"{head}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"


# --- the whole double opt-in flow ------------------------------------------------------------------------------


def test_double_opt_in_then_one_click_unsubscribe(client, site, sender, reader):
    response = subscribe(client, sender, locale="en", ip="203.0.113.9", user_agent=CHROME)
    assert response.status_code == 201, response.json
    body = response.json
    assert body["status"] == "pending" and body["site"] == "shop"
    assert body["confirmation_url"].startswith(f"{PUBLIC}/email/confirm/")
    assert response.headers["Cache-Control"] == "no-store"

    subscribed = ask(client, reader)
    assert subscribed["allowed"] is False and subscribed["reason"] == "denied"
    assert subscribed["event_id"] == body["event_id"]

    page = client.get(body["confirmation_url"], headers={"User-Agent": CHROME})
    assert page.status_code == 200
    assert '<html lang="en">' in text(page) and ">Confirm subscription</button>" in text(page)
    assert ask(client, reader) == subscribed  # opening the link confirms nothing
    done = confirm(client, body["confirmation_url"], headers={"User-Agent": CHROME})
    assert done.status_code == 200
    assert '<html lang="en">' in text(done) and "Subscription confirmed" in text(done)
    granted = ask(client, reader)
    assert granted["allowed"] is True and granted["reason"] == "granted"

    unsubscribed = one_click(client, unsubscribe_url(client, sender))
    assert unsubscribed.status_code == 200
    assert "You are unsubscribed" in text(unsubscribed)
    withdrawn = ask(client, reader)
    assert withdrawn["allowed"] is False and withdrawn["reason"] == "withdrawn"

    subscribe_event, confirm_event, unsubscribe_event = events()
    assert [(e.action, e.source, e.decisions) for e in events()] == [
        ("subscribe", "api", {"marketing_email": "denied"}),
        ("confirm", "email_link", {"marketing_email": "granted"}),
        ("unsubscribe", "one_click", {"marketing_email": "denied"}),
    ]
    assert {e.subject_id for e in events()} == {body["subject_id"]}
    assert subscribe_event.id == body["event_id"] and subscribe_event.ip_prefix == "203.0.113.0"
    assert confirm_event.locale == "en" and confirm_event.notice_version == subscribe_event.notice_version
    assert confirm_event.user_agent["browser"] == "Chrome"  # the button press is the evidence of the opt-in
    assert withdrawn["event_id"] == unsubscribe_event.id
    assert chain.verify_site(site).ok


def test_no_plaintext_email_anywhere_after_the_flow(client, site, sender, reader):
    confirmation = confirmed(client, sender)
    writer = bearer("consent:write")
    client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": f"email:{ADDRESS}", "decisions": {"email_tracking": "granted"}},
        headers=writer,
    )
    links = client.post(
        TRACKING_LINKS,
        json={"site": "shop", "email": ADDRESS, "message_id": "<m1@mail.shop.example>", "destinations": [ORIGIN]},
        headers=sender,
    ).json
    client.get(links["open_pixel_url"])
    client.get(links["links"][0]["url"])
    unsubscribe = unsubscribe_url(client, sender)
    one_click(client, unsubscribe)

    for url in (confirmation, unsubscribe, links["open_pixel_url"], links["links"][0]["url"]):
        assert "lovelace" not in json.dumps(payload(url)).lower()
    assert len(events()) == 4
    for table in db.metadata.sorted_tables:
        rows = db.session.execute(sa.select(table)).all()
        assert "lovelace" not in " ".join(str(row) for row in rows).lower(), table.name


# --- confirmation links ------------------------------------------------------------------------------------------


def test_a_confirmation_button_pressed_twice_changes_nothing_the_second_time(client, site, sender, reader):
    confirmation = confirmed(client, sender)
    before = counts()
    again = confirm(client, confirmation)
    assert again.status_code == 200
    assert "Already confirmed" in text(again)
    page = client.get(confirmation)
    assert "Already confirmed" in text(page) and "<button" not in text(page)
    assert counts() == before
    assert ask(client, reader)["allowed"] is True


@pytest.mark.parametrize(
    "change",
    [
        tampered,
        lambda url: url.replace("/confirm/", "/confirm/x"),
        lambda url: url.rsplit("/", 1)[0] + "/not-a-token",
        lambda url: url.rsplit(".", 2)[0],  # the signature cut off
    ],
    ids=["signature", "payload", "garbage", "unsigned"],
)
def test_a_tampered_confirmation_link_is_400_and_changes_nothing(client, site, sender, reader, change):
    confirmation = pending(client, sender)
    before = counts()
    french = {"Accept-Language": "fr-FR,fr;q=0.9"}
    url = change(confirmation)
    for response in (client.get(url, headers=french), confirm(client, url, headers=french)):
        assert response.status_code == 400
        assert response.mimetype == "text/html"
        assert '<html lang="fr">' in text(response) and "Ce lien n&#39;est pas valide" in text(response)
    assert counts() == before
    assert ask(client, reader)["reason"] == "denied"


def signed_ago(monkeypatch, seconds: int):
    """Sign tokens as if `seconds` ago (itsdangerous reads the time here)."""
    monkeypatch.setattr(itsdangerous.TimestampSigner, "get_timestamp", lambda self: int(time.time()) - seconds)


def test_an_expired_confirmation_link_is_400_in_the_subscribers_language(client, site, sender, reader, monkeypatch):
    signed_ago(monkeypatch, 7 * DAY + 60)
    stale = pending(client, sender, locale="fr")
    signed_ago(monkeypatch, 7 * DAY - 60)
    fresh = pending(client, sender, "grace@example.org")
    monkeypatch.undo()
    before = counts()

    for response in (client.get(stale), confirm(client, stale)):
        assert response.status_code == 400
        assert '<html lang="fr">' in text(response) and "Ce lien a expiré" in text(response)
    assert counts() == before
    assert ask(client, reader)["reason"] == "denied"
    assert confirm(client, fresh).status_code == 200  # within the default 7 days
    assert ask(client, reader, "grace@example.org")["allowed"] is True


def test_the_confirmation_lifetime_is_configurable(database_url, monkeypatch):
    with running_app(database_url, CMP_PUBLIC_URL=PUBLIC, CMP_CONFIRMATION_MAX_AGE_HOURS=1) as app:
        sites.create_site("shop", "Shop")
        notices.publish_notice(sites.get_site("shop"))
        client = app.test_client()
        sender = bearer("email:write")
        signed_ago(monkeypatch, 2 * 3600)
        confirmation = pending(client, sender)
        monkeypatch.undo()
        assert client.get(confirmation).status_code == 400
        assert confirm(client, confirmation).status_code == 400


def test_a_superseded_confirmation_link_changes_nothing(client, site, sender, reader):
    first = pending(client, sender)
    second = pending(client, sender)
    before = counts()
    for response in (client.get(first), confirm(client, first)):
        assert response.status_code == 409
        assert "This link is no longer valid" in text(response)
    assert counts() == before
    assert ask(client, reader)["reason"] == "denied"
    assert confirm(client, second).status_code == 200
    assert ask(client, reader)["allowed"] is True


def test_unsubscribing_cancels_a_pending_confirmation_link(client, site, sender, reader):
    confirmation = pending(client, sender)
    assert one_click(client, unsubscribe_url(client, sender)).status_code == 200
    before = counts()
    assert client.get(confirmation).status_code == 409
    assert confirm(client, confirmation).status_code == 409
    assert counts() == before
    assert ask(client, reader)["reason"] == "withdrawn"


def test_subscribing_a_confirmed_address_again_keeps_the_subscription(client, site, sender, reader):
    confirmed(client, sender)
    before = counts()
    again = subscribe(client, sender, "ADA.LOVELACE@example.org")
    assert again.status_code == 200
    assert again.json["status"] == "confirmed" and again.json["confirmation_url"] is None
    assert again.json["event_id"] == ask(client, reader)["event_id"]
    assert counts() == before
    assert ask(client, reader)["allowed"] is True


def test_a_token_of_one_kind_is_not_accepted_as_another(client, site, sender, reader):
    confirmation = pending(client, sender)
    unsubscribe = unsubscribe_url(client, sender)
    before = counts()
    confirm_token, unsubscribe_token = confirmation.rsplit("/", 1)[1], unsubscribe.rsplit("/", 1)[1]
    assert client.get(f"/email/confirm/{unsubscribe_token}").status_code == 400
    assert confirm(client, f"/email/confirm/{unsubscribe_token}").status_code == 400
    assert one_click(client, f"{PUBLIC}/email/unsubscribe/{confirm_token}").status_code == 400
    assert client.get(f"/t/c/{unsubscribe_token}").status_code == 400
    assert counts() == before


# --- unsubscribe ------------------------------------------------------------------------------------------------


def test_the_unsubscribe_page_speaks_german_and_its_button_unsubscribes(client, site, sender, reader):
    confirmed(client, sender, locale="de")
    url = unsubscribe_url(client, sender)
    before = counts()
    page = client.get(url, headers={"Accept-Language": "en"})
    assert page.status_code == 200
    html = text(page)
    assert '<html lang="de">' in html and "Keine Marketing-E-Mails mehr von Shop erhalten?" in html
    assert html.count("<button") == 1 and ">Abmelden</button>" in html and "<script" not in html
    assert "Set-Cookie" not in page.headers
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert counts() == before  # opening the page (as link scanners do) changes nothing
    assert ask(client, reader)["allowed"] is True

    done = client.post(url, data={"confirm": "unsubscribe"})
    assert done.status_code == 200 and "Sie sind abgemeldet" in text(done)
    assert events()[-1].action == "unsubscribe" and events()[-1].source == "email_link"
    assert events()[-1].locale == "de"
    assert ask(client, reader)["reason"] == "withdrawn"
    again = client.get(url)
    assert "Bereits abgemeldet" in text(again) and "<button" not in text(again)


def test_the_page_style_is_allowed_by_its_hash_alone(client, site, sender):
    pending(client, sender)
    page = client.get(unsubscribe_url(client, sender))
    html = text(page)
    style = html.split("<style>", 1)[1].split("</style>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize("form", ["multipart", "urlencoded"])
def test_one_click_needs_the_token_alone_and_is_honoured_once(app, client, site, sender, reader, form):
    confirmed(client, sender)
    url = unsubscribe_url(client, sender)
    mail_client = app.test_client(use_cookies=False)  # no cookies, no login, no key
    response = one_click(mail_client, url, form=form)
    assert response.status_code == 200
    assert ask(client, reader)["reason"] == "withdrawn"  # the very next lookup
    before = counts()
    retried = one_click(mail_client, url, form=form)  # mail clients retry
    assert retried.status_code == 200 and "Already unsubscribed" in text(retried)
    assert counts() == before


def test_unsubscribing_someone_never_confirmed_records_the_refusal(client, site, sender, reader):
    pending(client, sender)
    one_click(client, unsubscribe_url(client, sender))
    assert ask(client, reader)["reason"] == "withdrawn"
    assert [e.action for e in events()] == ["subscribe", "unsubscribe"]


def legacy_unsubscribe_url(app, subject_id: str, locale: str = "en") -> str:
    """An unsubscribe link as mailed before short links: a signed token on the long route."""
    token = app.extensions["cmp.email_tokens"].sign(Link(LinkKind.UNSUBSCRIBE, "shop", subject_id, locale=locale))
    return f"{PUBLIC}/email/unsubscribe/{token}"


def test_a_signed_unsubscribe_link_mailed_before_short_links_works(app, client, site, sender, reader, monkeypatch):
    subject_id = subscribe(client, sender).json["subject_id"]
    confirmed(client, sender)
    signed_ago(monkeypatch, 3 * 365 * DAY)  # it never expires
    old = legacy_unsubscribe_url(app, subject_id, locale="de")
    monkeypatch.undo()
    assert "Keine Marketing-E-Mails mehr" in text(client.get(old))
    assert one_click(client, old).status_code == 200
    assert ask(client, reader)["reason"] == "withdrawn"

    token = old.rsplit("/", 1)[1]
    rotated = EmailTokens("a new secret", [app.config["CMP_SECRET_KEY"]], confirmation_max_age=timedelta(days=7))
    assert rotated.read(LinkKind.UNSUBSCRIBE, token).subject_id == subject_id
    with pytest.raises(Malformed):
        EmailTokens("a new secret", confirmation_max_age=timedelta(days=7)).read(LinkKind.UNSUBSCRIBE, token)


def test_a_recipient_keeps_one_short_unsubscribe_link_per_locale(client, site, sender):
    pending(client, sender, locale="de")
    url = unsubscribe_url(client, sender)
    assert url.startswith(f"{PUBLIC}/u/") and len(url.rsplit("/", 1)[1]) == 20
    assert unsubscribe_url(client, sender) == url  # every message carries the same link
    assert unsubscribe_url(client, sender, locale="fr") != url
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UnsubscribeLink)) == 2
    # Stored as digests only: the table alone unsubscribes no one.
    stored = set(db.session.scalars(sa.select(UnsubscribeLink.digest)))
    assert hashlib.sha256(url.rsplit("/", 1)[1].encode()).hexdigest() in stored
    assert not any(url.rsplit("/", 1)[1] in digest for digest in stored)


@pytest.mark.parametrize(
    "body",
    [{}, {"List-Unsubscribe": "Yes"}, {"confirm": "maybe"}],
    ids=["empty", "wrong-value", "wrong-button"],
)
def test_a_post_without_the_one_click_body_is_400_and_changes_nothing(client, site, sender, reader, body):
    confirmed(client, sender)
    url = unsubscribe_url(client, sender)
    before = counts()
    response = client.post(url, data=body)
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert counts() == before
    assert ask(client, reader)["allowed"] is True


def test_a_tampered_unsubscribe_link_changes_nothing(app, client, site, sender, reader):
    subject_id = subscribe(client, sender).json["subject_id"]
    confirmed(client, sender)
    short = unsubscribe_url(client, sender)
    token = short.rsplit("/", 1)[1]
    changed = short[: -len(token)] + ("B" if token[0] == "A" else "A") + token[1:]
    before = counts()
    # A short token that names no one is not found; a signed one that does not verify is not valid.
    for url, status in ((changed, 404), (short + "A", 400), (tampered(legacy_unsubscribe_url(app, subject_id)), 400)):
        assert client.get(url).status_code == status, url
        assert one_click(client, url).status_code == status, url
    assert counts() == before
    assert ask(client, reader)["allowed"] is True


def test_an_unsubscribe_link_is_bound_to_its_subject_and_site(app, client, site, sender, reader):
    notices.publish_notice(sites.create_site("blog", "Blog"))
    db.session.commit()
    subject_id = subscribe(client, sender).json["subject_id"]
    confirmed(client, sender)
    before = counts()
    # Signed by this service, but naming the subject under another site, or a subject that does not exist.
    tokens = app.extensions["cmp.email_tokens"]
    for link in (Link(LinkKind.UNSUBSCRIBE, "blog", subject_id), Link(LinkKind.UNSUBSCRIBE, "shop", "nobody")):
        response = one_click(client, f"{PUBLIC}/email/unsubscribe/{tokens.sign(link)}")
        assert response.status_code == 404 and "Not found" in text(response)
    # The site swapped in a token's payload by someone without the key.
    forged = itsdangerous.URLSafeTimedSerializer("guessed", salt="cmp.email.unsubscribe").dumps(
        {"site": "blog", "subject": subject_id, "purpose": "marketing_email"}
    )
    assert one_click(client, f"{PUBLIC}/email/unsubscribe/{forged}").status_code == 400
    assert counts() == before
    assert ask(client, reader)["allowed"] is True


# --- headers ----------------------------------------------------------------------------------------------------


def test_headers_are_valid_rfc_8058_one_click(client, site, sender):
    pending(client, sender)
    response = client.get(HEADERS, query_string={"site": "shop", "email": ADDRESS}, headers=sender)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.json
    fields = body["headers"]
    assert set(fields) == {"List-Unsubscribe", "List-Unsubscribe-Post"}
    assert fields["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    dkim = "v=1; a=rsa-sha256; d=shop.example; s=s1; h=from:to:subject:list-unsubscribe:list-unsubscribe-post"
    assert listunsub.audit(fields["List-Unsubscribe"], fields["List-Unsubscribe-Post"], dkim_signatures=[dkim]) == []
    parsed = listunsub.parse_header(fields["List-Unsubscribe"], strict=True)
    assert parsed.https == (body["unsubscribe_url"],)
    assert body["unsubscribe_url"].startswith(f"{PUBLIC}/u/")
    action = listunsub.choose(parsed, fields["List-Unsubscribe-Post"], dkim_verified=True)
    assert action.kind == "one-click" and action.uri == body["unsubscribe_url"]
    for name, value in fields.items():
        listunsub.header_line(name, value)  # fits a header line (998 octets) and injects nothing


def test_headers_use_the_subscribers_locale_unless_one_is_asked_for(client, site, sender):
    pending(client, sender, locale="zh-CN")
    assert '<html lang="zh-CN">' in text(client.get(unsubscribe_url(client, sender), headers={"Accept-Language": "en"}))
    assert '<html lang="fr">' in text(client.get(unsubscribe_url(client, sender, locale="fr")))


def test_headers_for_an_unknown_recipient_are_404(client, site, sender):
    response = client.get(HEADERS, query_string={"site": "shop", "email": "nobody@example.org"}, headers=sender)
    assert response.status_code == 404 and response.json["error"]["code"] == "unknown_recipient"


def test_without_a_public_url_links_use_the_requests_host(database_url):
    with running_app(database_url) as app:
        notices.publish_notice(sites.create_site("shop", "Shop"))
        sender = bearer("email:write")
        client = app.test_client()
        url = pending(client, sender)
        assert url.startswith("http://localhost/email/confirm/")
        assert client.get(url).status_code == 200
        assert confirm(client, url).status_code == 200


SECRETS = {"CMP_SECRET_KEY": "s" * 32, "CMP_HMAC_KEY": "h" * 32, "CMP_LOG_KEY": LOG_KEY}


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("https://cmp.example/", "production", "https://cmp.example"),
        ("https://example.com/consent", "production", "https://example.com/consent"),
        ("http://127.0.0.1:5000", "development", "http://127.0.0.1:5000"),
        ("", "development", None),
    ],
)
def test_public_url_setting(tmp_path, value, env, expected):
    settings = load_settings({"CMP_PUBLIC_URL": value, "CMP_ENV": env, **SECRETS}, str(tmp_path))
    assert settings["CMP_PUBLIC_URL"] == expected
    assert settings["CMP_CONFIRMATION_MAX_AGE_HOURS"] == 7 * 24


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CMP_PUBLIC_URL": "ftp://cmp.example"}, "CMP_PUBLIC_URL"),
        ({"CMP_PUBLIC_URL": "https://cmp.example/?x=1"}, "CMP_PUBLIC_URL"),
        ({"CMP_PUBLIC_URL": "http://cmp.example"}, "https in production"),
        ({"CMP_PUBLIC_URL": PUBLIC, "CMP_CONFIRMATION_MAX_AGE_HOURS": "0"}, "CMP_CONFIRMATION_MAX_AGE_HOURS"),
    ],
)
def test_bad_email_settings_stop_start_up(tmp_path, environ, message):
    with pytest.raises(ConfigError, match=message):
        load_settings({**SECRETS, **environ}, str(tmp_path))


# --- keys, scopes and bad input -------------------------------------------------------------------------------------


def _call(client, route: str, headers: dict):
    if route == HEADERS:
        return client.get(HEADERS, query_string={"site": "shop", "email": ADDRESS}, headers=headers)
    body = {"site": "shop", "email": ADDRESS, "message_id": "m-1"} if route == TRACKING_LINKS else None
    return client.post(route, json=body or {"site": "shop", "email": ADDRESS}, headers=headers)


@pytest.mark.parametrize("route", [SUBSCRIPTIONS, HEADERS, TRACKING_LINKS])
def test_every_email_route_needs_an_email_write_key_for_the_site(client, site, sender, route):
    pending(client, sender)
    sites.create_site("blog", "Blog")
    db.session.commit()
    before = counts()
    cases = [
        ({}, 401, "missing_api_key"),
        (bearer("consent:write"), 403, "insufficient_scope"),
        (bearer("email:write", bound_to=["blog"]), 403, "site_not_allowed"),
    ]
    for headers, status, code in cases:
        response = _call(client, route, headers)
        assert (response.status_code, response.json["error"]["code"]) == (status, code)
    assert counts() == before
    assert _call(client, route, bearer("email:write", bound_to=["shop"])).status_code in (200, 201)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": "not an address"}, 422, "invalid"),
        ({"email": None}, 422, "invalid"),
        ({"site": "nowhere"}, 404, "unknown_site"),
        ({"site": "Not A Site"}, 422, "invalid"),
        ({"notice_version": 9}, 422, "unknown_notice_version"),
        ({"locale": "<script>"}, 422, "invalid"),
        ({"surprise": True}, 422, "invalid"),
    ],
)
def test_invalid_subscriptions_are_refused_and_write_nothing(client, site, sender, body, status, code):
    before = counts()
    response = client.post(SUBSCRIPTIONS, json={"site": "shop", "email": ADDRESS, **body}, headers=sender)
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code
    assert counts() == before


def test_a_subscription_needs_a_json_body(client, site, sender):
    before = counts()
    response = client.post(SUBSCRIPTIONS, data="email=a@b.example", headers=sender)
    assert response.status_code == 415
    assert counts() == before


def test_a_site_without_marketing_email_cannot_take_subscriptions(client, site, sender):
    bare = sites.create_site("bare", "Bare", seed_purposes=False)
    sites.add_purpose(bare, "support", texts={"en": {"name": "Support"}})
    notices.publish_notice(bare)
    db.session.commit()
    before = counts()
    response = client.post(SUBSCRIPTIONS, json={"site": "bare", "email": ADDRESS}, headers=sender)
    assert response.status_code == 422 and response.json["error"]["code"] == "unknown_purpose"
    assert counts() == before
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ConsentEvent)) == 0
