"""Fixtures for the browser tests: Debian's Chromium driven by Playwright, and the service running for real.

The service listens on 127.0.0.1 and the article that embeds the banner on localhost, so the banner talks
to the service across origins as it does on a real site. Each test gets a freshly seeded site and a new
browser context; the database is emptied afterwards. Without Chromium or Playwright the tests are
skipped, and fail when CI=true.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import make_server

from cmp.catalog import BUILTIN_LOCALES
from cmp.extensions import db
from cmp.models import ConsentEvent, ConsentState, SubjectIdentifier
from cmp.services import notices, sites
from cmp.services.identifiers import Identifier
from cmp.vocabulary import IdentifierKind
from tests.browser.chromium import CHROMIUM, launch
from tests.browser.pages import PageServer, wait_ready
from tests.conftest import running_app, skip_or_fail
from tests.geoip import write_geoip_database

SITE = "shop"
TIMEOUT_MS = 10_000


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "country(code): the country the service's GeoIP database gives the browser's address"
    )


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        skip_or_fail(f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        skip_or_fail(f"browser tests need Playwright for Python (pip install -e '.[test]'): {exc}")
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def pages():
    server = PageServer().start()
    yield server
    server.stop()


@dataclass
class Service:
    """The running service, and what it recorded, read through the models."""

    app: Flask
    base: str

    def site(self):
        return sites.get_site(SITE)

    def events(self) -> list[dict]:
        rows = db.session.scalars(select(ConsentEvent).order_by(ConsentEvent.seq))
        events = [
            {
                "id": e.id,
                "subject_id": e.subject_id,
                "action": e.action,
                "source": e.source,
                "decisions": dict(e.decisions),
                "notice_version": e.notice_version,
                "locale": e.locale,
                "mode": e.mode,
                "country": e.country,
                "gpc": e.gpc,
                "page_url": e.page_url,
            }
            for e in rows
        ]
        db.session.rollback()
        return events

    def state(self, subject_id: str) -> dict[str, tuple[str, str]]:
        rows = db.session.scalars(select(ConsentState).where(ConsentState.subject_id == subject_id))
        state = {row.purpose: (row.decision, row.action) for row in rows}
        db.session.rollback()
        return state

    def visitor_id(self, signed: str) -> str | None:
        """The visitor id inside a signed one, or None when this service did not sign it."""
        return self.app.extensions["cmp.visitor_ids"].unsign(SITE, signed)

    def subject_of(self, visitor_id: str) -> str | None:
        digest = Identifier(IdentifierKind.VISITOR, visitor_id).digest(self.app.config["CMP_HMAC_KEY"], SITE)
        subject_id = db.session.scalar(select(SubjectIdentifier.subject_id).where(SubjectIdentifier.digest == digest))
        db.session.rollback()
        return subject_id


def seed_site(origin: str) -> None:
    """The shop: the policy's purposes, a partner-sharing purpose GPC refuses, and the analytics cookies."""
    site = sites.create_site(
        SITE, "Shop", origins=[origin], locales=[*BUILTIN_LOCALES, "ar"], policy_url=f"{origin}/privacy"
    )
    sites.add_purpose(
        site,
        "partner_sharing",
        texts={
            "en": {"name": "Sharing with partners", "description": "Sharing your data with authorised partners."},
            "de": {"name": "Weitergabe an Partner", "description": "Weitergabe Ihrer Daten an autorisierte Partner."},
        },
        default_opt_out="granted",
        gpc=True,
        consent_mode=["ad_storage", "ad_user_data", "ad_personalization"],
    )
    sites.add_cookie(
        site, "_pv_uid", purpose="analytics", provider="Shop", storage="persistent", lifetime_seconds=395 * 86400
    )
    sites.add_cookie(site, "_pv_session", purpose="analytics", provider="Shop", storage="session")
    notices.publish_notice(site)
    db.session.commit()


@pytest.fixture
def service(request, database_url, pages, tmp_path):
    """The service on 127.0.0.1:<free port>; `@pytest.mark.country("US")` places the browser in that country."""
    overrides = {}
    marker = request.node.get_closest_marker("country")
    if marker:
        geoip = write_geoip_database(tmp_path / "country.mmdb", networks={"127.0.0.1/32": marker.args[0]})
        overrides["CMP_GEOIP_DATABASE"] = str(geoip)
    with running_app(database_url, **overrides) as app:
        seed_site(pages.origin)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        running = Service(app, f"http://127.0.0.1:{server.port}")
        pages.reset(running.base)
        try:
            yield running
        finally:
            server.shutdown()
            server.server_close()
            thread.join()


@pytest.fixture
def new_context(browser, service):
    """Opens browser contexts (closed before the service stops); `gpc=True` sends Global Privacy Control."""
    contexts = []

    def open_context(gpc: bool = False, **options):
        if gpc:
            options["extra_http_headers"] = {**options.get("extra_http_headers", {}), "Sec-GPC": "1"}
        context = browser.new_context(**options)
        if gpc:
            context.add_init_script("Object.defineProperty(navigator, 'globalPrivacyControl', {get: () => true})")
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context):
    return new_context().new_page()


@pytest.fixture
def visit(pages):
    """Open the article and wait until the banner has started (or given up on the service)."""

    def go(page, lang: str = "en"):
        page.goto(pages.url(lang))
        return wait_ready(page)

    return go
