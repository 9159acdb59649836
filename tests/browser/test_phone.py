"""The banner on a phone (390x844): each layer fits the screen in every bundled language, one layer at a time.

What a visitor would see: no part of the banner runs off the screen or out of its dialog, even with every
cookie table open and a cookie name longer than a line; the second layer hides the page and the first layer;
the "Cookie settings" button shows only while no layer is open.
"""

from __future__ import annotations

import pytest

from cmp.catalog import BANNER_TEXTS, BUILTIN_LOCALES
from cmp.extensions import db
from cmp.services import notices, sites

PHONE = {"width": 390, "height": 844}
# Every bundled language, and a right-to-left page (its words fall back to English).
LANGUAGES = [*BUILTIN_LOCALES, "ar"]
# One unbreakable word wider than the screen, as some analytics tools name their cookies.
LONG_NAME = "_hjSessionUser_3187654_" + "4f1c9b2e8a7d6c5b" * 4

# The viewport's and the dialog's widths, and the horizontal extent of every element of the dialog that renders.
LAYOUT = """selector => {
    const dialog = document.querySelector(selector);
    const frame = dialog.getBoundingClientRect();
    const boxes = [...dialog.querySelectorAll('*')].filter(el => el.getClientRects().length).map(el => {
        const box = el.getBoundingClientRect();
        return {el: el.tagName + ' ' + el.textContent.slice(0, 30), left: box.left, right: box.right};
    });
    const page = document.documentElement;
    return {viewport: page.clientWidth, page: page.scrollWidth, window: innerWidth,
            dialog: {left: frame.left, right: frame.right, client: dialog.clientWidth, scroll: dialog.scrollWidth},
            boxes};
}"""

# What is on top at points spread over the whole screen, corners included, and the dialog's background alpha.
ON_TOP = """selector => {
    const dialog = document.querySelector(selector);
    const xs = [0, innerWidth / 4, innerWidth / 2, innerWidth * 3 / 4, innerWidth - 1];
    const ys = [0, innerHeight / 4, innerHeight / 2, innerHeight * 3 / 4, innerHeight - 1];
    const outside = [];
    for (const x of xs) for (const y of ys) {
        const el = document.elementFromPoint(x, y);
        if (!dialog.contains(el)) outside.push({x, y, el: el && el.tagName + '.' + el.className});
    }
    const [, , , alpha = '1'] = getComputedStyle(dialog).backgroundColor.match(/[\\d.]+/g);
    return {outside, alpha: Number(alpha)};
}"""

SIZE = "el => { const box = el.getBoundingClientRect(); return [Math.round(box.width), Math.round(box.height)]; }"


@pytest.fixture
def phone(new_context, service):
    """A phone's browser; the site's inventory also lists a cookie with a very long name and a partner's cookie."""
    site = service.site()
    sites.add_cookie(
        site,
        LONG_NAME,
        purpose="analytics",
        provider="Hotjar Ltd (Contentsquare)",
        storage="persistent",
        lifetime_seconds=365 * 86400,
    )
    sites.add_cookie(site, "_partner_ref", purpose="partner_sharing", provider="Partner", storage="session")
    notices.publish_notice(site)
    db.session.commit()
    return new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=3).new_page()


def words(lang: str) -> dict[str, str]:
    return BANNER_TEXTS.get(lang, BANNER_TEXTS["en"])


def assert_fits(page, selector: str):
    """No element of the layer lies outside the screen or its dialog, and neither scrolls sideways."""
    layout = page.evaluate(LAYOUT, selector)
    dialog = layout["dialog"]
    assert layout["window"] == layout["viewport"] == PHONE["width"], layout["window"]
    assert layout["page"] <= layout["viewport"]
    assert dialog["scroll"] <= dialog["client"], dialog
    assert 0 <= dialog["left"] and dialog["right"] <= layout["viewport"], dialog
    outside = [box for box in layout["boxes"] if box["left"] < dialog["left"] or box["right"] > dialog["right"]]
    assert outside == []


def assert_covers_the_page(page, selector: str):
    """Wherever the visitor looks, the dialog is on top, and its background lets nothing through."""
    on_top = page.evaluate(ON_TOP, selector)
    assert on_top["outside"] == []
    assert on_top["alpha"] == 1


@pytest.mark.parametrize("lang", LANGUAGES)
def test_first_layer_fits_and_hides_cookie_settings(phone, visit, lang):
    page = visit(phone, lang)
    page.locator(".cmp-banner").wait_for()

    assert_fits(page, ".cmp-banner")
    assert page.locator(".cmp-settings").is_hidden()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_second_layer_with_every_cookie_table_open_fits_and_covers_the_page(phone, visit, lang):
    page = visit(phone, lang)
    page.locator(".cmp-banner").get_by_role("button", name=words(lang)["customise"]).click()
    dialog = page.locator(".cmp-modal")
    for summary in dialog.locator("summary").all():
        summary.click()
    assert dialog.locator("details[open] table").count() == 2
    dialog.get_by_text(LONG_NAME).wait_for()

    assert_fits(page, ".cmp-modal")
    assert page.locator(".cmp-banner").is_hidden()
    assert page.locator(".cmp-settings").is_hidden()
    assert_covers_the_page(page, ".cmp-modal")
    choices = dialog.locator(".cmp-actions > button")
    assert choices.all_text_contents() == [words(lang)[key] for key in ("save", "accept_all", "reject_all")]
    assert len({tuple(choices.nth(i).evaluate(SIZE)) for i in range(3)}) == 1

    dialog.evaluate("el => el.scrollTo(0, el.scrollHeight)")
    assert_fits(page, ".cmp-modal")
    assert_covers_the_page(page, ".cmp-modal")


def test_closing_the_second_layer_without_a_choice_brings_the_first_back(phone, visit, service):
    page = visit(phone)
    banner = page.locator(".cmp-banner")
    banner.get_by_role("button", name="Customise").click()
    assert banner.is_hidden()

    page.locator(".cmp-modal").get_by_role("button", name="Close").click()

    page.locator(".cmp-modal").wait_for(state="detached")
    assert banner.is_visible()
    assert page.locator(".cmp-settings").is_hidden()
    assert page.evaluate("() => document.activeElement.textContent") == "Customise"
    assert service.events() == []


def test_cookie_settings_shows_only_while_no_layer_is_open(phone, visit):
    page = visit(phone)
    settings = page.get_by_role("button", name="Cookie settings")
    page.locator(".cmp-banner").get_by_role("button", name="Reject all").click()
    page.locator(".cmp-banner").wait_for(state="detached")
    assert settings.is_visible()

    settings.click()
    page.locator(".cmp-modal").wait_for()
    assert settings.is_hidden()
    assert_covers_the_page(page, ".cmp-modal")
    page.keyboard.press("Escape")

    page.locator(".cmp-modal").wait_for(state="detached")
    assert settings.is_visible()
    assert page.evaluate("() => document.activeElement.textContent") == "Cookie settings"
