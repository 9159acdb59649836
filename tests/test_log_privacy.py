"""Logs name no person: every flow, logged at DEBUG, leaves no email, user id, link token or API key in them."""

from __future__ import annotations

import http.client
import logging
import re
import threading
from contextlib import contextmanager

import listunsub
import pytest
import sqlalchemy as sa
from pythonjsonlogger.json import JsonFormatter
from sqlalchemy.exc import IntegrityError
from werkzeug.serving import make_server

from cmp.extensions import db
from cmp.models import Site
from cmp.services import keys, sites
from tests.conftest import running_app
from tests.dashboard.pages import sign_in
from tests.helpers import ORIGIN, post_consent

PUBLIC = "https://cmp.example"
ADDRESS = "Ada.Lovelace@Example.org"
USER_ID = "ada-1815"
EMAIL = re.compile(r"[^\s\"'<>/]+@[^\s\"'<>/]+\.[a-z]{2,}", re.IGNORECASE)
# Every logger a request can reach: ours (Flask's app logger is "cmp" too), Flask's, the WSGI server's, the root.
LOGGERS = ("cmp", "flask", "werkzeug", "")


class Capture(logging.Handler):
    """Each record as the JSON line production writes, extra fields and traceback included."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def app(database_url):
    with running_app(database_url, CMP_PUBLIC_URL=PUBLIC, CMP_LOG_LEVEL="DEBUG") as app:
        yield app


@contextmanager
def captured_logs():
    """Every log record written inside, as production writes it, at DEBUG."""
    capture = Capture()
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(capture)
        logger.setLevel(logging.DEBUG)
    try:
        yield capture.lines
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(capture)
            logger.setLevel(level)


@pytest.fixture
def log_lines(app):
    with captured_logs() as lines:
        yield lines


def new_key(*scopes: str) -> tuple[str, dict[str, str]]:
    token = keys.create_key("log test", list(scopes)).token
    db.session.commit()
    return token, {"Authorization": f"Bearer {token}"}


def token_of(url: str) -> str:
    return url.split("?")[0].rsplit("/", 1)[1].removesuffix(".gif")


def run_every_flow(client) -> list[str]:
    """Send one request of each kind a person, a server or an auditor makes; returns the secrets they carried."""
    writer_token, writer = new_key("consent:write")
    reader_token, reader = new_key("consent:read")
    sender_token, sender = new_key("email:write")
    dsr_token, dsr = new_key("dsr")
    auditor_token, auditor = new_key("audit:read")
    secrets = [writer_token, reader_token, sender_token, dsr_token, auditor_token]

    banner = post_consent(client, action="accept_all", page_url=f"{ORIGIN}/help?email={ADDRESS}")
    assert banner.status_code == 201
    visitor = banner.json["visitor_id"]
    secrets += [visitor, token_of(banner.json["receipt_url"]), banner.json["receipt_url"].split("token=")[1]]
    assert client.get(banner.json["receipt_url"], headers={"Origin": ORIGIN}).status_code == 200

    for subject in (f"email:{ADDRESS}", f"user:{USER_ID}"):
        for purpose in ("analytics", "email_tracking"):  # email tracking is granted by a decision of its own
            body = {"subject": subject, "decisions": {purpose: "granted"}}
            assert client.post("/api/v1/sites/shop/consents", json=body, headers=writer).status_code == 201
        query = {"site": "shop", "subject": subject, "purpose": "analytics"}
        assert client.get("/api/v1/consents/lookup", query_string=query, headers=reader).status_code == 200
    subjects = [f"email:{ADDRESS}", f"user:{USER_ID}", f"visitor:{visitor}"]
    many = {"site": "shop", "subjects": subjects, "purposes": ["analytics"]}
    assert client.post("/api/v1/consents/lookup", json=many, headers=reader).status_code == 200

    subscribed = client.post("/api/v1/email/subscriptions", json={"site": "shop", "email": ADDRESS}, headers=sender)
    assert subscribed.status_code == 201
    confirmation = subscribed.json["confirmation_url"]
    assert client.get(confirmation).status_code == 200
    assert client.post(confirmation, data={"confirm": "subscribe"}).status_code == 200
    headers = client.get("/api/v1/email/headers", query_string={"site": "shop", "email": ADDRESS}, headers=sender)
    unsubscribe = headers.json["unsubscribe_url"]
    links = client.post(
        "/api/v1/email/tracking-links",
        json={"site": "shop", "email": ADDRESS, "message_id": "<m1@mail.shop.example>", "destinations": [ORIGIN]},
        headers=sender,
    ).json
    assert client.get(links["open_pixel_url"]).status_code == 200
    assert client.get(links["links"][0]["url"]).status_code == 302
    assert client.get(unsubscribe).status_code == 200
    one_click = listunsub.one_click_request(unsubscribe)
    assert client.post(one_click.url, data=one_click.body, headers=one_click.headers).status_code == 200
    secrets += [token_of(url) for url in (confirmation, unsubscribe, links["open_pixel_url"], links["links"][0]["url"])]

    one_subject = {"site": "shop", "subject": f"user:{USER_ID}"}
    assert client.get("/api/v1/audit/events", query_string=one_subject, headers=auditor).status_code == 200
    assert sign_in(client, auditor_token).status_code == 303
    assert client.get("/audit").status_code == 200
    assert client.get("/audit/export", query_string={"site": "shop"}).status_code == 200
    secrets.append(client.get_cookie("cmp_audit", path="/audit").value)

    for subject in (f"email:{ADDRESS}", f"user:{USER_ID}"):
        path = f"/api/v1/subjects/{subject}"
        assert client.get(f"{path}/consents", query_string={"site": "shop"}, headers=dsr).status_code == 200
        assert client.post(f"{path}/withdraw", json={"site": "shop"}, headers=dsr).status_code == 200
        for right, extra in (("restrict", {}), ("unrestrict", {}), ("age", {"age": 12, "country": "DE"})):
            body = {"site": "shop", **extra}
            assert client.post(f"{path}/{right}", json=body, headers=dsr).status_code == 200
        assert client.post(f"{path}/erase", json={"site": "shop"}, headers=dsr).status_code == 200
        # Refusals name the subject in the path as well.
        assert client.post(f"{path}/erase", json={"site": "shop"}, headers=dsr).status_code == 404

    # Paths no route matches, and route parameters that are not what they should be, can carry anything.
    assert client.get(f"/{ADDRESS}/user:{USER_ID}").status_code == 404
    assert client.get(f"/api/v1/sites/{ADDRESS}/banner-config").status_code == 404
    assert client.get(f"/audit/charts/{USER_ID}.svg").status_code == 404
    assert client.get(f"/email/confirm/{reader_token}").status_code == 400
    wrong = {"Authorization": f"Bearer {writer_token}x"}
    assert client.get("/api/v1/consents/lookup", query_string=query, headers=wrong).status_code == 401
    return secrets


def test_no_log_line_names_a_person_or_holds_a_secret(client, site, log_lines):
    secrets = run_every_flow(client)

    assert log_lines, "the request log is on at DEBUG"
    text = "\n".join(log_lines)
    assert EMAIL.findall(text) == []
    assert USER_ID not in text and "lovelace" not in text.lower()
    for secret in secrets:
        for part in {secret, *secret.split("_")[2:], *secret.split(".")}:
            if len(part) >= 16:
                assert part not in text


def test_the_request_log_keeps_the_route_and_the_site(client, site, log_lines):
    client.get(f"/api/v1/subjects/email:{ADDRESS}/consents", query_string={"site": "shop"})
    assert post_consent(client, action="reject_all").status_code == 201
    client.get(f"/nowhere/{ADDRESS}")

    paths = [line for line in log_lines if '"message": "request"' in line]
    assert '"path": "/api/v1/subjects/<subject>/consents"' in paths[0]
    assert '"path": "/api/v1/sites/shop/consents"' in paths[1]
    assert '"status": 404' in paths[2] and '"path": null' in paths[2]


def test_a_database_error_never_carries_the_values_of_its_statement(app):
    """An error's text reaches logs and error trackers: the values it was given (an email here) stay out of it."""
    sites.create_site("shop", "Shop", origins=[ORIGIN])
    db.session.commit()
    duplicate = {"key": "shop", "name": "ada@example.org", "locales": ["en"], "default_locale": "en"}
    with pytest.raises(IntegrityError) as caught:
        db.session.execute(sa.insert(Site).values(**duplicate))
    db.session.rollback()
    assert "ada@example.org" not in str(caught.value)
    assert "hidden due to hide_parameters" in str(caught.value)


def test_the_development_server_logs_no_request_line_of_its_own(app, log_lines):
    """`cmp run` serves through werkzeug, whose access line would carry the path as sent: an email, here."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=20)
        connection.request("GET", f"/api/v1/subjects/email:{ADDRESS}/consents?site=shop")
        response = connection.getresponse()
        response.read()
        connection.close()
    finally:
        server.shutdown()
        thread.join()
    assert response.status == 401
    logged = "\n".join(log_lines)
    assert '"request"' in logged  # cmp's own line, with the route only
    assert ADDRESS.lower() not in logged.lower() and "Lovelace" not in logged
