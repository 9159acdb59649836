"""The consent receipt from the banner: a link in the second layer once a decision is recorded."""

from __future__ import annotations

from tests.browser.pages import stored_consent


def test_after_accepting_the_settings_link_to_the_receipt_of_that_decision(page, visit, service):
    visit(page)
    page.locator(".cmp-banner").get_by_role("button", name="Accept all").click()
    page.locator(".cmp-banner").wait_for(state="detached")

    page.get_by_role("button", name="Cookie settings").click()
    link = page.locator(".cmp-modal").get_by_role("link", name="Your consent receipt")
    link.wait_for()
    url = link.get_attribute("href")
    (event,) = service.events()
    assert url.startswith(f"{service.base}/api/v1/sites/shop/receipts/{event['id']}?token=")
    assert stored_consent(page.context)["u"] == url

    # Fetched as the banner would, across origins: CORS answers the site's own page.
    receipt = page.evaluate("url => fetch(url, {mode: 'cors', credentials: 'omit'}).then(r => r.json())", url)
    assert receipt["consentReceiptID"] == event["id"]
    assert receipt["piiPrincipalId"] == event["subject_id"]
    assert receipt["action"] == "accept_all" and receipt["givenBy"] is None
    assert receipt["evidence"]["pageUrl"] == event["page_url"]


def test_no_receipt_link_before_a_decision(page, visit, service):
    visit(page)
    page.locator(".cmp-banner").get_by_role("button", name="Customise").click()
    page.locator(".cmp-modal").wait_for()
    assert page.locator(".cmp-modal a", has_text="receipt").count() == 0


def test_the_receipt_link_is_in_the_visitors_language(page, visit, service):
    visit(page, lang="de")
    page.locator(".cmp-banner").get_by_role("button", name="Alle akzeptieren").click()
    page.locator(".cmp-banner").wait_for(state="detached")
    page.get_by_role("button", name="Cookie-Einstellungen").click()
    assert page.locator(".cmp-modal").get_by_role("link", name="Ihr Einwilligungsbeleg").is_visible()
