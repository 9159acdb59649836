"""The banner in a real browser, on a page of another origin: what runs, what is stored, what is recorded.

Every check observes the page (scripts run, pixels requested, cookies in the browser, the dataLayer) or
the consent log the service wrote, never the banner's internals.
"""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest

from cmp.extensions import db
from cmp.services import notices, sites
from tests.browser.pages import cookie_names, data_layer, stored_consent, wait_ready

ANALYTICS_COOKIES = {"_pv_uid", "_pv_session"}
DEFAULT = {
    "ad_storage": "denied",
    "ad_user_data": "denied",
    "ad_personalization": "denied",
    "analytics_storage": "denied",
    "functionality_storage": "denied",
    "personalization_storage": "denied",
    "security_storage": "granted",
}


def banner(page):
    return page.locator(".cmp-banner")


def preferences(page):
    return page.locator(".cmp-modal")


def page_globals(page) -> dict:
    return page.evaluate(
        """() => ({analytics: window.analyticsRuns, partner: window.partnerRuns,
                  pixel: document.querySelector('img[data-cmp-purpose]').getAttribute('src'),
                  video: document.querySelector('iframe[data-cmp-purpose]').getAttribute('src')})"""
    )


def granted(page, purpose: str) -> bool:
    return page.evaluate("purpose => window.cmp.get(purpose)", purpose)


def assert_nothing_blocked_ran(page, pages):
    assert page_globals(page) == {"analytics": None, "partner": None, "pixel": None, "video": None}
    assert not cookie_names(page.context) & ANALYTICS_COOKIES
    assert pages.count("/pv.gif") == 0
    assert pages.count("/video") == 0


def test_nothing_blocked_runs_and_no_cookie_is_set_before_a_choice(page, visit, pages, service):
    visit(page)

    banner(page).wait_for()
    assert_nothing_blocked_ran(page, pages)
    assert page.context.cookies() == []
    assert page.locator(".cmp-placeholder").is_visible()
    assert page.locator("iframe[data-cmp-purpose]").is_hidden()
    assert granted(page, "necessary") and not granted(page, "analytics") and not granted(page, "preferences")
    assert service.events() == []


def test_reject_all_runs_nothing_and_records_a_refusal(page, visit, pages, service):
    visit(page)
    banner(page).get_by_role("button", name="Reject all").click()
    banner(page).wait_for(state="detached")

    assert_nothing_blocked_ran(page, pages)
    assert cookie_names(page.context) == {"cmp_consent"}
    (event,) = service.events()
    assert event["action"] == "reject_all" and event["source"] == "banner"
    assert event["decisions"] == {
        "necessary": "granted",
        "preferences": "denied",
        "analytics": "denied",
        "partner_sharing": "denied",
    }
    assert (event["mode"], event["locale"], event["gpc"], event["notice_version"]) == ("opt_in", "en", False, 1)
    assert event["page_url"] == f"{pages.origin}/article"
    visitor_id = service.visitor_id(stored_consent(page.context)["v"])
    assert service.subject_of(visitor_id) == event["subject_id"]
    assert service.state(event["subject_id"])["analytics"] == ("denied", "reject_all")


def test_a_refusal_is_not_asked_again_and_the_page_stays_usable(page, visit, pages, service):
    visit(page)
    banner(page).get_by_role("button", name="Reject all").click()
    banner(page).wait_for(state="detached")

    visit(page)

    assert banner(page).count() == 0
    assert_nothing_blocked_ran(page, pages)
    page.get_by_role("button", name="Show the steps").click()
    assert page.locator("#output").text_content() == "Steps shown."
    assert len(service.events()) == 1


def test_customise_then_granting_analytics_runs_the_script_and_loads_the_pixels(page, visit, pages, service):
    visit(page)
    banner(page).get_by_role("button", name="Customise").click()
    dialog = preferences(page)
    switches = {key: dialog.locator(f"input[data-p={key}]") for key in ("necessary", "analytics", "preferences")}
    assert switches["necessary"].is_checked() and switches["necessary"].is_disabled()
    assert not switches["analytics"].is_checked() and not switches["preferences"].is_checked()

    dialog.get_by_role("switch", name="Analytics").check()
    with (
        page.expect_request(f"{pages.origin}/pv.gif?tag=img"),
        page.expect_request(f"{pages.origin}/pv.gif?tag=script"),
    ):
        dialog.get_by_role("button", name="Save choices").click()

    globals_ = page_globals(page)
    assert globals_["analytics"] == 1 and globals_["partner"] is None and globals_["video"] is None
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert set(cookies) == {"cmp_consent", *ANALYTICS_COOKIES}
    assert cookies["_pv_uid"]["expires"] > time.time() + 300 * 86400
    assert cookies["_pv_session"]["expires"] == -1
    assert granted(page, "analytics") and not granted(page, "preferences")
    (event,) = service.events()
    assert event["action"] == "save"
    assert event["decisions"] == {
        "necessary": "granted",
        "preferences": "denied",
        "analytics": "granted",
        "partner_sharing": "denied",
    }


def grant_all(page, pages):
    with page.expect_request(f"{pages.origin}/pv.gif?tag=script"):
        banner(page).get_by_role("button", name="Accept all").click()
    page.wait_for_function("() => window.analyticsRuns === 1")
    assert ANALYTICS_COOKIES <= cookie_names(page.context)


def test_withdrawing_in_cookie_settings_stops_analytics_and_clears_its_cookies(page, visit, pages, service):
    visit(page)
    grant_all(page, pages)

    page.get_by_role("button", name="Cookie settings").click()
    dialog = preferences(page)
    assert dialog.get_by_role("switch", name="Analytics").is_checked()
    with page.expect_navigation():
        dialog.get_by_role("button", name="Reject all").click()
    wait_ready(page)

    assert page_globals(page)["analytics"] is None and page_globals(page)["pixel"] is None
    assert cookie_names(page.context) == {"cmp_consent"}
    assert not granted(page, "analytics")
    assert banner(page).count() == 0
    assert [e["action"] for e in service.events()] == ["accept_all", "withdraw"]
    withdrawal = service.events()[-1]
    assert {k: v for k, v in withdrawal["decisions"].items() if k != "necessary"} == {
        "preferences": "denied",
        "analytics": "denied",
        "partner_sharing": "denied",
    }


def test_withdraw_from_the_javascript_api_stops_analytics_and_clears_its_cookies(page, visit, pages, service):
    visit(page)
    grant_all(page, pages)

    with page.expect_navigation():
        page.evaluate("() => { window.cmp.withdraw(); }")
    wait_ready(page)

    assert page_globals(page)["analytics"] is None
    assert cookie_names(page.context) == {"cmp_consent"}
    assert [e["action"] for e in service.events()] == ["accept_all", "withdraw"]


def test_escape_outside_clicks_and_scrolling_grant_nothing(page, visit, pages, service):
    visit(page)
    banner(page).wait_for()

    page.get_by_role("button", name="Show the steps").click()
    page.mouse.click(5, 5)
    page.mouse.wheel(0, 1200)
    page.wait_for_function("() => window.scrollY > 0")
    assert banner(page).is_visible()
    assert page.locator("#output").text_content() == "Steps shown."
    banner(page).focus()
    page.keyboard.press("Escape")
    banner(page).wait_for(state="detached")

    assert_nothing_blocked_ran(page, pages)
    assert page.context.cookies() == []
    assert not granted(page, "analytics")
    assert data_layer(page) == [["consent", "default", {**DEFAULT, "wait_for_update": 500}]]
    assert service.events() == []
    visit(page)
    assert banner(page).is_visible()


def test_consent_mode_default_comes_first_then_one_update_per_decision(page, visit, service):
    visit(page)
    assert data_layer(page) == [["consent", "default", {**DEFAULT, "wait_for_update": 500}]]

    banner(page).get_by_role("button", name="Customise").click()
    preferences(page).get_by_role("switch", name="Analytics").check()
    preferences(page).get_by_role("button", name="Save choices").click()
    preferences(page).wait_for(state="detached")
    page.get_by_role("button", name="Cookie settings").click()
    preferences(page).get_by_role("switch", name="Preferences").check()
    preferences(page).get_by_role("button", name="Save choices").click()
    preferences(page).wait_for(state="detached")

    assert data_layer(page) == [
        ["consent", "default", {**DEFAULT, "wait_for_update": 500}],
        ["consent", "update", {**DEFAULT, "analytics_storage": "granted"}],
        [
            "consent",
            "update",
            {
                **DEFAULT,
                "analytics_storage": "granted",
                "functionality_storage": "granted",
                "personalization_storage": "granted",
            },
        ],
    ]
    assert len(service.events()) == 2


@pytest.mark.country("US")
def test_gpc_in_opt_out_mode_is_recorded_as_gpc_and_refuses_sharing(new_context, visit, service):
    page = new_context(gpc=True).new_page()
    visit(page)
    page.wait_for_function("() => document.cookie.includes('cmp_consent=')")

    assert banner(page).count() == 0
    assert page_globals(page)["partner"] is None and page_globals(page)["analytics"] == 1
    assert not granted(page, "partner_sharing")
    (event,) = service.events()
    assert (event["action"], event["gpc"], event["mode"], event["country"]) == ("gpc", True, "opt_out", "US")
    assert event["decisions"] == {"partner_sharing": "denied", "necessary": "granted"}
    assert service.state(event["subject_id"])["partner_sharing"] == ("denied", "gpc")
    updates = [entry[2] for entry in data_layer(page) if entry[1] == "update"]
    assert updates and all(update["ad_storage"] == "denied" for update in updates)


@pytest.mark.country("US")
def test_opt_out_mode_without_gpc_shows_the_banner_with_sharing_on_until_refused(page, visit, service):
    visit(page)

    assert banner(page).is_visible()
    assert page_globals(page)["partner"] == 1 and granted(page, "partner_sharing")
    assert service.events() == []


UNAVAILABLE = json.dumps(
    {"error": {"code": "unavailable", "message": "the consent store is unavailable", "details": {}}}
)
OUTAGES = {
    # The service itself cannot be reached.
    "unreachable": lambda route: route.abort("connectionrefused"),
    # The service answers, but its database is down: 503 in the error shape, as every API route then does.
    "database down": lambda route: route.fulfill(
        status=503,
        body=UNAVAILABLE,
        headers={"Content-Type": "application/json", "Retry-After": "5", "Access-Control-Allow-Origin": "*"},
    ),
}


@pytest.mark.parametrize("outage", sorted(OUTAGES))
def test_service_down_leaves_only_necessary(page, visit, pages, service, outage):
    page.route(f"{service.base}/api/**", OUTAGES[outage])
    visit(page)

    assert banner(page).count() == 0
    assert granted(page, "necessary")
    assert not granted(page, "analytics") and not granted(page, "preferences")
    assert_nothing_blocked_ran(page, pages)
    assert page.context.cookies() == []
    assert data_layer(page) == [["consent", "default", {**DEFAULT, "wait_for_update": 500}]]
    assert service.events() == []


def test_a_grant_the_service_cannot_record_is_not_applied_but_a_refusal_is(page, visit, pages, service):
    visit(page)
    page.route(f"{service.base}/api/**/consents", lambda route: route.abort("connectionrefused"))

    banner(page).get_by_role("button", name="Accept all").click()
    banner(page).get_by_role("alert").filter(has_text="could not be saved").wait_for()
    assert_nothing_blocked_ran(page, pages)
    assert not granted(page, "analytics")

    banner(page).get_by_role("button", name="Reject all").click()
    banner(page).wait_for(state="detached")
    assert_nothing_blocked_ran(page, pages)
    assert stored_consent(page.context)["d"] == {"preferences": False, "analytics": False, "partner_sharing": False}
    assert service.events() == []


def test_a_forged_visitor_id_is_never_recorded_and_is_replaced_by_a_signed_one(new_context, visit, pages, service):
    context = new_context()
    forged = "AAAAAAAAAAAAAAAAAAAAAA"
    now = int(time.time() * 1000)
    cookie = {"v": forged, "d": {"analytics": False}, "n": 1, "t": now, "x": now + 86_400_000}
    context.add_cookies([{"name": "cmp_consent", "value": quote(json.dumps(cookie)), "url": pages.origin}])
    page = visit(context.new_page())

    page.get_by_role("button", name="Cookie settings").click()
    preferences(page).get_by_role("switch", name="Analytics").check()
    preferences(page).get_by_role("button", name="Save choices").click()
    page.wait_for_function("() => window.analyticsRuns === 1")

    (event,) = service.events()
    signed = stored_consent(context)["v"]
    assert signed != forged
    visitor_id = service.visitor_id(signed)
    assert visitor_id is not None and visitor_id != forged
    assert service.subject_of(visitor_id) == event["subject_id"]
    assert service.subject_of(forged) is None

    status, body = page.evaluate(
        """base => fetch(base + '/api/v1/sites/shop/consents', {method: 'POST',
              headers: {'Content-Type': 'application/json'},
              body: JSON.stringify({visitor_id: 'made-up', action: 'accept_all', notice_version: 1})})
            .then(r => r.json().then(j => [r.status, j]))""",
        service.base,
    )
    assert status == 422 and body["error"]["code"] == "invalid_visitor_id"
    assert service.visitor_id(body["error"]["details"]["visitor_id"]) is not None
    assert len(service.events()) == 1


def test_blocked_video_placeholder_offers_consent_in_place(page, visit, pages, service):
    visit(page)
    placeholder = page.locator(".cmp-placeholder")
    assert "blocked until you allow Preferences" in placeholder.text_content()

    with page.expect_request(f"{pages.origin}/video"):
        placeholder.get_by_role("button", name="Allow Preferences").click()

    page.locator("iframe[data-cmp-purpose]").wait_for(state="visible")
    assert placeholder.count() == 0
    assert page_globals(page)["analytics"] is None
    (event,) = service.events()
    assert event["action"] == "save"
    assert event["decisions"] == {"necessary": "granted", "preferences": "granted"}


def test_elements_added_after_load_are_held_back_until_granted(page, visit, pages):
    add_late_elements = """() => {
        const script = document.createElement('script');
        script.type = 'text/plain';
        script.setAttribute('data-cmp-purpose', 'analytics');
        script.text = 'window.lateRuns = (window.lateRuns || 0) + 1;';
        const img = document.createElement('img');
        img.setAttribute('data-cmp-purpose', 'analytics');
        img.setAttribute('data-src', location.origin + '/pv.gif?tag=late');
        img.alt = '';
        const frame = document.createElement('iframe');
        frame.setAttribute('data-cmp-purpose', 'preferences');
        frame.setAttribute('data-src', location.origin + '/video?late');
        frame.title = 'Late video';
        document.querySelector('main').append(script, img, frame);
    }"""
    visit(page)
    page.evaluate(add_late_elements)
    page.locator("iframe[title='Late video']").wait_for(state="hidden")
    page.locator(".cmp-placeholder").nth(1).wait_for()
    assert page.evaluate("() => window.lateRuns") is None
    assert page.locator("img[data-src$='tag=late']").get_attribute("src") is None

    with page.expect_request(f"{pages.origin}/pv.gif?tag=late"):
        banner(page).get_by_role("button", name="Accept all").click()
    assert page.evaluate("() => window.lateRuns") == 1

    page.evaluate(
        """() => {
        const script = document.createElement('script');
        script.type = 'text/plain';
        script.setAttribute('data-cmp-purpose', 'analytics');
        script.text = 'window.lateRuns = (window.lateRuns || 0) + 1;';
        document.body.append(script);
    }"""
    )
    page.wait_for_function("() => window.lateRuns === 2")
    assert page.locator("iframe[title='Late video']").get_attribute("src") == f"{pages.origin}/video?late"


def test_a_material_notice_change_asks_again_and_a_minor_one_does_not(new_context, visit, pages, service):
    first = visit(new_context().new_page())
    grant_all(first, pages)
    (accepted,) = service.events()

    site = service.site()
    sites.add_cookie(site, "_pv_ref", purpose="analytics", provider="Shop", storage="session")
    notices.publish_notice(site)
    db.session.commit()
    minor = visit(new_context(storage_state=first.context.storage_state()).new_page())
    assert banner(minor).count() == 0
    assert page_globals(minor)["analytics"] == 1

    sites.add_cookie(service.site(), "_pv_src", purpose="analytics", provider="Shop", storage="session")
    notices.publish_notice(service.site(), material=True)
    db.session.commit()
    material = visit(new_context(storage_state=minor.context.storage_state()).new_page())
    assert banner(material).is_visible()
    assert page_globals(material)["analytics"] is None

    grant_all(material, pages)
    renewed = service.events()[-1]
    assert renewed["notice_version"] == 3 and renewed["action"] == "accept_all"
    assert renewed["subject_id"] == accepted["subject_id"]


def test_german_page_gets_the_german_banner(page, visit, service):
    visit(page, lang="de")

    root = page.locator(".cmp-root")
    assert (root.get_attribute("lang"), root.get_attribute("dir")) == ("de", "ltr")
    assert banner(page).get_by_role("button", name="Alle akzeptieren").is_visible()
    banner(page).get_by_role("button", name="Anpassen").click()
    assert preferences(page).get_by_role("switch", name="Statistik").is_visible()
    preferences(page).get_by_role("button", name="Alle ablehnen").click()
    preferences(page).wait_for(state="detached")
    assert service.events()[0]["locale"] == "de"


def test_right_to_left_page_gets_a_right_to_left_banner(page, visit):
    visit(page, lang="ar")

    root = page.locator(".cmp-root")
    assert root.get_attribute("dir") == "rtl"
    assert banner(page).evaluate("el => getComputedStyle(el).direction") == "rtl"
    banner(page).press("Escape")  # the settings button shows once no layer is open
    settings = page.get_by_role("button", name="Cookie settings").bounding_box()
    assert settings["x"] > page.viewport_size["width"] / 2


BUTTON_STYLE = """el => {
    const s = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    return {tag: el.tagName, font: s.fontSize + ' ' + s.fontWeight + ' ' + s.fontFamily, color: s.color,
            background: s.backgroundColor, border: s.borderTopWidth + ' ' + s.borderTopColor,
            width: Math.round(box.width), height: Math.round(box.height)};
}"""


@pytest.mark.parametrize("width", [1280, 390])
def test_accept_reject_and_customise_have_equal_prominence(new_context, visit, width):
    page = visit(new_context(viewport={"width": width, "height": 800}).new_page())

    buttons = banner(page).locator(".cmp-actions > *")
    labels = buttons.all_text_contents()
    assert labels == ["Accept all", "Reject all", "Customise"]
    styles = [buttons.nth(i).evaluate(BUTTON_STYLE) for i in range(3)]
    assert styles[0]["tag"] == "BUTTON"
    assert styles[0] == styles[1] == styles[2]
