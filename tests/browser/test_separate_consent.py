"""Separate consent in the browser (PIPL Art. 23, 38, 39): Accept all grants neither, each is then asked for in its
own dialog showing the recipient and its contact, the means, the data and the rights, and "I agree" records a grant
of that one purpose alone, which lookups keep apart from the others."""

from __future__ import annotations

import pytest

from cmp.extensions import db
from cmp.services import notices, sites
from tests.browser.pages import stored_consent
from tests.browser.test_accessibility import assert_no_violations, axe  # noqa: F401 - axe-core on the page
from tests.helpers import bearer

SEPARATE = ("cross_border_transfer", "courier_sharing")
TRANSFER = {
    "name": "International transfer",
    "description": "Storing your account data on servers in China.",
    "means": "Transferred over an encrypted connection and stored in Shenzhen.",
    "rights": "Write to the recipient's contact to access, correct or delete your data.",
}
COURIER = {
    "name": "Sharing with our courier",
    "description": "Giving your address to the courier who delivers replacement parts.",
    "means": "Sent with each delivery order; the courier deletes it after delivery.",
    "rights": "Ask the courier at its contact to access or delete your address.",
    "categories": "Postal address and phone number",
}


@pytest.fixture
def separate_consents(service):
    """The shop asks separately for a transfer to China and for sharing with a courier (notice v2, material)."""
    site = service.site()
    sites.add_purpose(
        site,
        "cross_border_transfer",
        texts={"en": TRANSFER},
        separate_consent=True,
        pii_categories=["Contact details", "Support requests"],
        recipients=["Shop Technology (Shenzhen) Co., Ltd. <privacy@shop.example.cn>"],
    )
    sites.add_purpose(
        site,
        "courier_sharing",
        texts={"en": COURIER, "de": {"name": "Weitergabe an unseren Kurier"}},
        separate_consent=True,
        pii_categories=["Postal address", "Phone number"],
        recipients=[{"name": "Parcel Partners Ltd.", "contact": "+44 20 7946 0000"}],
    )
    notices.publish_notice(site, material=True)
    db.session.commit()


def dialog(page):
    return page.locator(".cmp-modal")


def lookup(service, page, purposes) -> dict[str, bool]:
    """What the site's servers are told, per purpose, for the visitor this browser is."""
    visitor = stored_consent(page.context)["v"]  # signed by the service, as the site's servers are given it
    client, headers = service.app.test_client(), bearer("consent:read")
    answers = {}
    for purpose in purposes:
        response = client.get(
            "/api/v1/consents/lookup",
            query_string={"site": "shop", "subject": f"visitor:{visitor}", "purpose": purpose},
            headers=headers,
        )
        assert response.status_code == 200, response.json
        answers[purpose] = response.json["allowed"]
    return answers


def test_accept_all_grants_no_separate_consent_then_asks_for_each_with_what_the_law_requires(
    page, visit, service, separate_consents
):
    visit(page)
    page.locator(".cmp-banner").get_by_role("button", name="Accept all").click()

    # The first separate consent, in a dialog of its own, with everything PIPL Art. 23 and 39 name.
    transfer = dialog(page)
    transfer.get_by_role("heading", name="International transfer").wait_for()
    (accepted,) = service.events()
    assert accepted["action"] == "accept_all"
    assert accepted["decisions"]["analytics"] == "granted"
    assert not {k for k, v in accepted["decisions"].items() if v == "granted"} & set(SEPARATE)
    assert not page.evaluate("() => window.cmp.get('cross_border_transfer') || window.cmp.get('courier_sharing')")
    shown = transfer.inner_text()
    for text in (
        "separate consent",
        TRANSFER["description"],
        "Shop Technology (Shenzhen) Co., Ltd. (privacy@shop.example.cn)",
        TRANSFER["means"],
        "Contact details, Support requests",
        TRANSFER["rights"],
    ):
        assert text in shown, text
    for label in ("Recipient and contact", "How it is processed", "Personal data concerned", "How to exercise"):
        assert label in shown, label

    # "No" records the refusal of that one purpose, then the next is asked for.
    transfer.get_by_role("button", name="No").click()
    courier = dialog(page)
    courier.get_by_role("heading", name="Sharing with our courier").wait_for()
    assert "Parcel Partners Ltd. (+44 20 7946 0000)" in courier.inner_text()
    assert COURIER["categories"] in courier.inner_text()  # the site's own words for the data, where it gave them
    courier.get_by_role("button", name="I agree").click()
    dialog(page).wait_for(state="detached")

    accepted, refused, agreed = service.events()
    assert (refused["action"], refused["decisions"]) == (
        "save",
        {"necessary": "granted", "cross_border_transfer": "denied"},
    )
    assert (agreed["action"], agreed["decisions"]) == ("save", {"necessary": "granted", "courier_sharing": "granted"})
    assert page.evaluate("() => window.cmp.get('courier_sharing') && !window.cmp.get('cross_border_transfer')")
    assert lookup(service, page, ("analytics", "partner_sharing", *SEPARATE)) == {
        "analytics": True,
        "partner_sharing": True,
        "cross_border_transfer": False,
        "courier_sharing": True,
    }


def test_the_separate_consent_dialog_is_operable_by_keyboard_and_passes_axe(
    page,
    visit,
    service,
    separate_consents,
    axe,  # noqa: F811
):
    visit(page)
    page.locator(".cmp-banner").get_by_role("button", name="Accept all").focus()
    page.keyboard.press("Enter")
    dialog(page).get_by_role("heading", name="International transfer").wait_for()
    assert page.evaluate("() => document.activeElement.getAttribute('role')") == "dialog"
    assert_no_violations(axe, page)

    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "I agree"
    # Tab stays inside the dialog: back from its first control to its last (close), and on round to the first.
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("() => document.activeElement.getAttribute('aria-label')") == "Close"
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "I agree"
    page.keyboard.press("Enter")
    dialog(page).get_by_role("heading", name="Sharing with our courier").wait_for()
    # Escape closes without deciding: the courier is not asked for again, and nothing more is recorded.
    page.keyboard.press("Escape")
    dialog(page).wait_for(state="detached")

    accepted, agreed = service.events()
    assert agreed["decisions"] == {"necessary": "granted", "cross_border_transfer": "granted"}
    assert lookup(service, page, SEPARATE) == {"cross_border_transfer": True, "courier_sharing": False}
    assert page.evaluate("() => document.activeElement.className") == "cmp-settings"


def test_the_second_layer_asks_for_each_separate_consent_apart_from_save_choices(
    page,
    visit,
    service,
    separate_consents,
    axe,  # noqa: F811
):
    visit(page)
    page.locator(".cmp-banner").get_by_role("button", name="Customise").click()
    transfer = dialog(page).get_by_role("group", name="International transfer")
    assert "Shop Technology (Shenzhen) Co., Ltd. (privacy@shop.example.cn)" in transfer.inner_text()
    assert transfer.get_by_role("switch").count() == 0  # no switch that Save choices would bundle
    assert_no_violations(axe, page)

    # Save choices decides the switches only.
    dialog(page).get_by_role("switch", name="Analytics").check()
    dialog(page).get_by_role("button", name="Save choices").click()
    dialog(page).wait_for(state="detached")
    (saved,) = service.events()
    assert not set(SEPARATE) & set(saved["decisions"])

    # Its own "I agree", in the reopened second layer, grants that purpose alone; the layer shows it in force.
    page.get_by_role("button", name="Cookie settings").click()
    dialog(page).get_by_role("group", name="Sharing with our courier").get_by_role("button", name="I agree").click()
    dialog(page).wait_for(state="detached")
    saved, agreed = service.events()
    assert agreed["decisions"] == {"necessary": "granted", "courier_sharing": "granted"}
    page.get_by_role("button", name="Cookie settings").click()
    courier = dialog(page).get_by_role("group", name="Sharing with our courier")
    assert courier.get_by_role("button", name="I agree").get_attribute("aria-pressed") == "true"
    assert courier.get_by_role("button", name="No").get_attribute("aria-pressed") == "false"

    # Reject all there withdraws it with everything else.
    dialog(page).get_by_role("button", name="Reject all").click()
    dialog(page).wait_for(state="detached")
    withdrawn = service.events()[-1]
    assert withdrawn["action"] == "withdraw"
    assert lookup(service, page, ("analytics", *SEPARATE)) == dict.fromkeys(("analytics", *SEPARATE), False)


def test_the_dialog_speaks_the_visitors_language(page, visit, service, separate_consents):
    visit(page, "de")
    page.locator(".cmp-banner").get_by_role("button", name="Alle akzeptieren").click()

    transfer = dialog(page)
    transfer.get_by_role("heading", name="International transfer").wait_for()

    shown = transfer.inner_text()
    assert "gesonderte Einwilligung" in shown and "Empfänger und Kontakt" in shown
    assert transfer.get_by_role("button", name="Ich stimme zu").is_visible()
    assert transfer.get_by_role("button", name="Nein").is_visible()
    # A text the site gave only in its default language is shown in it rather than left out.
    assert TRANSFER["rights"] in shown
