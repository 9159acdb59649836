"""The database goes away mid-service and comes back: clear 503s meanwhile, nothing acknowledged is lost.

Runs on a PostgreSQL server of its own (tests/pgcluster.py), stopped and started again inside the test.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from cmp.extensions import db
from cmp.models import ConsentEvent
from cmp.services import chain, keys, notices, sites
from tests.conftest import make_app, migrate_to_head, skip_or_fail
from tests.dashboard.pages import sign_in
from tests.helpers import ORIGIN, post_consent
from tests.pgcluster import PrivateCluster, find_bindir

pytestmark = pytest.mark.postgres

ADDRESS = "ada@example.org"
# Routes that never touch the database, and answer the same whether it is up or not.
WITHOUT_DATABASE = {
    "/healthz",
    "/.well-known/gpc.json",
    "/api/v1/openapi.json",
    "/audit/login",  # the sign-in form (its POST is exercised below)
    "/audit/dashboard.css",
    "/audit/logout",
}


@pytest.fixture(scope="module")
def cluster():
    bindir = find_bindir()
    if bindir is None:
        skip_or_fail("fault tests need PostgreSQL's server programs (initdb, pg_ctl): apt-get install postgresql")
    folder = Path(tempfile.mkdtemp(prefix="cmp-faults-"))
    server = PrivateCluster(bindir, folder)
    try:
        server.initdb()
        server.start()
    except (RuntimeError, OSError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        skip_or_fail(f"could not start a private PostgreSQL server: {exc}")
    try:
        yield server
    finally:
        if server.running():
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def app(cluster):
    url = cluster.create_database("cmp_faults")
    migrate_to_head(url)
    app = make_app(url)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()
    if not cluster.running():
        cluster.start()
    engine = sa.create_engine(cluster.url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text('DROP DATABASE IF EXISTS "cmp_faults" WITH (FORCE)'))
    engine.dispose()


def _prepare(client):
    """A site, a key with every scope, a subscriber with email links, a signed-in auditor, and five acknowledged
    consents (the last with its receipt)."""
    site = sites.create_site("shop", "Shop", origins=[ORIGIN])
    notices.publish_notice(site)
    token = keys.create_key("ops", ["admin"]).token
    db.session.commit()
    auth = {"Authorization": f"Bearer {token}"}
    subscribed = client.post("/api/v1/email/subscriptions", json={"site": "shop", "email": ADDRESS}, headers=auth)
    assert subscribed.status_code in (200, 201), subscribed.json
    unsubscribe = client.get("/api/v1/email/headers", query_string={"site": "shop", "email": ADDRESS}, headers=auth)
    # Tracking links are minted only where email tracking is allowed.
    tracked = {"subject": f"email:{ADDRESS}", "decisions": {"email_tracking": "granted"}}
    assert client.post("/api/v1/sites/shop/consents", json=tracked, headers=auth).status_code == 201
    tracking = client.post(
        "/api/v1/email/tracking-links",
        json={"site": "shop", "email": ADDRESS, "message_id": "m-1", "destinations": ["https://shop.example/sale"]},
        headers=auth,
    )
    signed_in = sign_in(client, token)
    assert signed_in.status_code == 303, signed_in.text
    acknowledged = []
    for action in ("accept_all", "reject_all", "accept_all", "withdraw", "accept_all"):
        response = post_consent(client, action=action)
        assert response.status_code == 201
        acknowledged.append(response.json["event_id"])
    receipt = urlsplit(response.json["receipt_url"])
    links = {
        "confirm": urlsplit(subscribed.json["confirmation_url"]).path,
        "unsubscribe": urlsplit(unsubscribe.json["unsubscribe_url"]).path,
        # The long route, which links mailed before short ones use, takes either kind of token.
        "old_unsubscribe": "/email/unsubscribe/" + unsubscribe.json["unsubscribe_url"].rsplit("/", 1)[1],
        "open": urlsplit(tracking.json["open_pixel_url"]).path,
        "click": urlsplit(tracking.json["links"][0]["url"]).path,
        "receipt": f"{receipt.path}?{receipt.query}",
    }
    return auth, links, acknowledged


def _requests(auth, links):
    """One request to every route that needs the database: (rule, method, path, arguments)."""
    return [
        ("/readyz", "GET", "/readyz", {}),
        ("/api/v1/sites/<site_key>/banner-config", "GET", "/api/v1/sites/shop/banner-config", {}),
        ("/api/v1/sites/<site_key>/consents", "POST", "/api/v1/sites/shop/consents", {"banner": True}),
        (
            "/api/v1/sites/<site_key>/links",
            "POST",
            "/api/v1/sites/shop/links",
            {"json": {"subjects": ["user:1", f"email:{ADDRESS}"]}, "headers": auth},
        ),
        (
            "/api/v1/consents/lookup",
            "GET",
            "/api/v1/consents/lookup",
            {"query_string": {"site": "shop", "subject": "user:1", "purpose": "analytics"}, "headers": auth},
        ),
        (
            "/api/v1/consents/lookup",
            "POST",
            "/api/v1/consents/lookup",
            {"json": {"site": "shop", "subjects": ["user:1"], "purposes": ["analytics"]}, "headers": auth},
        ),
        (
            "/api/v1/email/subscriptions",
            "POST",
            "/api/v1/email/subscriptions",
            {"json": {"site": "shop", "email": "bob@example.org"}, "headers": auth},
        ),
        (
            "/api/v1/email/headers",
            "GET",
            "/api/v1/email/headers",
            {"query_string": {"site": "shop", "email": ADDRESS}, "headers": auth},
        ),
        (
            "/api/v1/email/tracking-links",
            "POST",
            "/api/v1/email/tracking-links",
            {"json": {"site": "shop", "email": ADDRESS, "message_id": "m-2"}, "headers": auth},
        ),
        ("/email/confirm/<token>", "GET", links["confirm"], {}),
        ("/email/confirm/<token>", "POST", links["confirm"], {"data": {"confirm": "subscribe"}}),
        ("/u/<token>", "GET", links["unsubscribe"], {}),
        ("/u/<token>", "POST", links["unsubscribe"], {"data": {"List-Unsubscribe": "One-Click"}}),
        ("/email/unsubscribe/<token>", "GET", links["old_unsubscribe"], {}),
        ("/email/unsubscribe/<token>", "POST", links["old_unsubscribe"], {"data": {"List-Unsubscribe": "One-Click"}}),
        ("/t/o/<token>.gif", "GET", links["open"], {}),
        ("/t/c/<token>", "GET", links["click"], {}),
        (
            "/api/v1/subjects/<path:subject>/consents",
            "GET",
            "/api/v1/subjects/user:1/consents",
            {"query_string": {"site": "shop"}, "headers": auth},
        ),
        (
            "/api/v1/subjects/<path:subject>/withdraw",
            "POST",
            "/api/v1/subjects/user:1/withdraw",
            {"json": {"site": "shop"}, "headers": auth},
        ),
        (
            "/api/v1/subjects/<path:subject>/erase",
            "POST",
            "/api/v1/subjects/user:1/erase",
            {"json": {"site": "shop"}, "headers": auth},
        ),
        *[
            (
                f"/api/v1/subjects/<path:subject>/{right}",
                "POST",
                f"/api/v1/subjects/user:1/{right}",
                {"json": body, "headers": auth},
            )
            for right, body in (
                ("restrict", {"site": "shop"}),
                ("unrestrict", {"site": "shop"}),
                ("correct", {"site": "shop", "identifier": "user:2"}),
                ("age", {"site": "shop", "age": 12}),
            )
        ],
        ("/api/v1/sites/<site_key>/receipts/<event_id>", "GET", links["receipt"], {}),
        ("/api/v1/audit/events", "GET", "/api/v1/audit/events", {"query_string": {"site": "shop"}, "headers": auth}),
        ("/api/v1/audit/notices", "GET", "/api/v1/audit/notices", {"query_string": {"site": "shop"}, "headers": auth}),
        ("/api/v1/audit/verify", "GET", "/api/v1/audit/verify", {"query_string": {"site": "shop"}, "headers": auth}),
        ("/audit", "GET", "/audit?site=shop", {}),
        ("/audit/charts/<name>.svg", "GET", "/audit/charts/purposes.svg?site=shop", {}),
        ("/audit/verify", "GET", "/audit/verify?site=shop", {}),
        ("/audit/export", "GET", "/audit/export?site=shop&format=jsonl", {}),
        ("/audit/login", "POST", "/audit/login", {"sign_in": True}),
        ("/api/v1/sites/<site_key>/log/checkpoint", "GET", "/api/v1/sites/shop/log/checkpoint", {}),
        ("/api/v1/sites/<site_key>/log/checkpoints/<int:size>", "GET", "/api/v1/sites/shop/log/checkpoints/1", {}),
        ("/api/v1/sites/<site_key>/log/tile/<path:path>", "GET", "/api/v1/sites/shop/log/tile/0/000.p/1", {}),
        (
            "/api/v1/sites/<site_key>/log/proofs/inclusion",
            "GET",
            "/api/v1/sites/shop/log/proofs/inclusion",
            {"query_string": {"index": 0}},
        ),
        (
            "/api/v1/sites/<site_key>/log/proofs/consistency",
            "GET",
            "/api/v1/sites/shop/log/proofs/consistency",
            {"query_string": {"old": 1, "new": 1}},
        ),
        (
            "/api/v1/sites/<site_key>/log/cosignatures",
            "POST",
            "/api/v1/sites/shop/log/cosignatures",
            {"json": {"size": 1, "cosignature": "\u2014 witness.example AAAA"}},
        ),
    ]


def _send(client, method, path, arguments):
    arguments = dict(arguments)
    if arguments.pop("banner", False):
        return post_consent(client, action="accept_all")
    if arguments.pop("sign_in", False):
        return sign_in(client, "cmp_0123456789abcdef_anything")
    return client.open(path, method=method, **arguments)


def test_every_route_that_needs_the_database_is_exercised(app):
    """New routes join the outage test below: this fails until they are listed."""
    covered = {
        rule
        for rule, *_ in _requests(
            {}, dict.fromkeys(("confirm", "unsubscribe", "old_unsubscribe", "open", "click", "receipt"), "/")
        )
    }
    needs_database = {
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        and not rule.rule.startswith(("/banner/", "/demo"))
        and rule.rule not in WITHOUT_DATABASE
    }
    assert needs_database - covered == set()


def test_an_outage_answers_503_and_service_resumes_with_nothing_lost(app, cluster):
    client = app.test_client()
    auth, links, acknowledged = _prepare(client)
    before = db.session.scalar(sa.select(sa.func.count()).select_from(ConsentEvent))
    db.session.remove()

    cluster.stop()
    for rule, method, path, arguments in _requests(auth, links):
        response = _send(client, method, path, arguments)
        where = f"{method} {rule}"
        if rule == "/t/o/<token>.gif":
            # An email client always gets its pixel; nothing is recorded.
            assert response.status_code == 200 and response.mimetype == "image/gif", where
        elif rule == "/t/c/<token>":
            # The destination is signed into the link: the reader still gets there, unrecorded.
            assert response.status_code == 302, where
            assert response.headers["Location"] == "https://shop.example/sale", where
        elif rule.startswith(("/email/", "/u/", "/t/", "/audit")):
            # Pages for people and auditors: a page saying to try again, not a stack trace.
            assert response.status_code == 503 and response.mimetype == "text/html", where
        else:
            assert response.status_code == 503, where
            error = response.json["error"]
            assert error["code"] in ("unavailable", "not_ready"), where
            assert set(error) == {"code", "message", "details"}, where
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/openapi.json").status_code == 200

    cluster.start()
    # The pool drops its dead connections by itself; no restart of the app.
    for _ in range(20):
        if client.get("/readyz").status_code == 200:
            break
    assert client.get("/readyz").status_code == 200
    after = post_consent(client, action="reject_all")
    assert after.status_code == 201

    stored = db.session.scalars(sa.select(ConsentEvent.id).order_by(ConsentEvent.seq)).all()
    # Everything acknowledged before the outage is there, nothing from during it, and the new one after it.
    assert len(stored) == before + 1
    assert stored[-6:] == [*acknowledged, after.json["event_id"]]
    result = chain.verify_site(sites.get_site("shop"))
    assert result.ok, result
