"""The auditor dashboard in Chromium: sign in through the form, charts that load, tables, and no axe-core violations."""

from __future__ import annotations

import pytest

from cmp.extensions import db
from cmp.services import keys
from tests.browser.conftest import SITE
from tests.conftest import skip_or_fail
from tests.helpers import post_consent

IMAGES_LOADED = "() => [...document.images].length > 0 && [...document.images].every(image => image.complete)"
IMAGE_WIDTHS = "() => [...document.images].map(image => [image.getAttribute('src'), image.naturalWidth])"


@pytest.fixture(scope="module")
def axe():
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError as exc:
        skip_or_fail(f"accessibility tests need axe-playwright-python (pip install -e '.[test]'): {exc}")
    return Axe()


@pytest.fixture
def token(service, pages) -> str:
    """Some banner decisions to draw, and the key an auditor signs in with."""
    client = service.app.test_client()
    for action, decisions in (("accept_all", {}), ("reject_all", {}), ("save", {"analytics": "granted"})):
        response = post_consent(client, SITE, origin=pages.origin, action=action, decisions=decisions)
        assert response.status_code == 201, response.json
    token = keys.create_key("auditor", ["audit:read"]).token
    db.session.commit()
    return token


def sign_in(page, service, token: str):
    page.goto(f"{service.base}/audit")
    page.get_by_label("API key").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{service.base}/audit")
    page.wait_for_function(IMAGES_LOADED)


def assert_no_violations(axe, page):
    results = axe.run(page)
    assert results.violations_count == 0, results.generate_report()


def test_sign_in_shows_the_charts_and_their_tables(page, service, token):
    sign_in(page, service, token)

    assert page.get_by_role("heading", level=1).inner_text() == "Consent statistics: Shop"
    widths = page.evaluate(IMAGE_WIDTHS)
    assert [src.split("?")[0] for src, _ in widths] == [
        f"/audit/charts/{name}.svg" for name in ("purposes", "days", "countries", "modes")
    ]
    assert all(width > 0 for _, width in widths), widths
    for name in ("purposes", "days", "countries", "modes", "notices"):
        assert page.locator(f"#{name}-table").is_visible()
    assert page.locator("#modes-table tbody tr").first.locator("th").inner_text() == "opt_in"
    assert page.locator("#modes-table tbody tr").first.locator("td").first.inner_text() == "3"


def test_the_sign_in_page_and_the_dashboard_have_no_axe_violations(page, service, token, axe):
    page.goto(f"{service.base}/audit/login")
    assert_no_violations(axe, page)

    sign_in(page, service, token)
    assert_no_violations(axe, page)


def test_a_wrong_key_keeps_the_auditor_out(page, service, token):
    page.goto(f"{service.base}/audit")
    page.get_by_label("API key").fill(token + "x")
    page.get_by_role("button", name="Sign in").click()

    assert page.get_by_role("alert").inner_text().startswith("That key cannot open the auditor dashboard")
    assert page.url.startswith(f"{service.base}/audit/login")


def test_sign_out_returns_to_the_form(page, service, token):
    sign_in(page, service, token)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{service.base}/audit/login")

    page.goto(f"{service.base}/audit")
    assert page.url.startswith(f"{service.base}/audit/login")
