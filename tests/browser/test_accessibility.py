"""Accessibility of the banner: axe-core on both layers, and the keyboard path through them."""

from __future__ import annotations

import pytest

from tests.conftest import skip_or_fail

FOCUS_RING = """el => {
    const s = getComputedStyle(el);
    return {style: s.outlineStyle, width: parseFloat(s.outlineWidth), colour: s.outlineColor};
}"""


@pytest.fixture(scope="module")
def axe():
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError as exc:
        skip_or_fail(f"accessibility tests need axe-playwright-python (pip install -e '.[test]'): {exc}")
    return Axe()


def assert_no_violations(axe, page):
    results = axe.run(page)
    assert results.violations_count == 0, results.generate_report()


def focused(page) -> dict:
    return page.evaluate("() => ({text: document.activeElement.textContent, cls: document.activeElement.className})")


def test_first_layer_has_no_axe_violations(page, visit, axe):
    visit(page)
    page.locator(".cmp-banner").wait_for()

    assert_no_violations(axe, page)


def test_second_layer_has_no_axe_violations(page, visit, axe):
    visit(page)
    page.locator(".cmp-banner").get_by_role("button", name="Customise").click()
    page.locator(".cmp-modal").wait_for()
    for summary in page.locator(".cmp-modal summary").all():
        summary.click()

    assert_no_violations(axe, page)


def test_second_layer_with_the_receipt_link_has_no_axe_violations(page, visit, axe):
    visit(page)
    page.locator(".cmp-banner").get_by_role("button", name="Accept all").click()
    page.locator(".cmp-banner").wait_for(state="detached")
    page.get_by_role("button", name="Cookie settings").click()
    page.locator(".cmp-modal").get_by_role("link", name="Your consent receipt").wait_for()

    assert_no_violations(axe, page)


def test_tab_reaches_the_three_choices_with_a_visible_focus_ring(page, visit):
    visit(page)
    assert focused(page)["cls"] == "cmp-banner"

    reached = []
    for _ in range(4):
        page.keyboard.press("Tab")
        reached.append(focused(page)["text"])
        ring = page.locator(":focus").evaluate(FOCUS_RING)
        assert ring["style"] != "none" and ring["width"] >= 2, (reached[-1], ring)

    assert reached == ["Privacy policy", "Accept all", "Reject all", "Customise"]


def test_escape_closes_the_second_layer_without_saving_and_returns_focus(page, visit, service):
    visit(page)
    customise = page.locator(".cmp-banner").get_by_role("button", name="Customise")
    customise.focus()
    page.keyboard.press("Enter")
    dialog = page.locator(".cmp-modal")
    dialog.wait_for()
    assert focused(page)["cls"] == "cmp-modal"
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "cmp-p-preferences"
    page.keyboard.press("Space")
    assert dialog.get_by_role("switch", name="Preferences").is_checked()

    page.keyboard.press("Escape")

    dialog.wait_for(state="detached")
    assert focused(page)["text"] == "Customise"
    assert page.locator(".cmp-banner").is_visible()
    assert not page.evaluate("() => window.cmp.get('preferences')")
    assert page.context.cookies() == []
    assert service.events() == []


def test_tab_stays_inside_the_second_layer(page, visit):
    visit(page)
    page.locator(".cmp-banner").get_by_role("button", name="Customise").click()
    dialog = page.locator(".cmp-modal")
    dialog.get_by_role("button", name="Close").focus()

    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "cmp-p-preferences"
    page.keyboard.press("Shift+Tab")
    assert focused(page)["cls"] == "cmp-close"
