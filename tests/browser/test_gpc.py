"""Global Privacy Control after an earlier grant: the signal outranks the grant of sale/sharing where it is law.

CCPA regulations (11 CCR §7025(c)(3)) count the signal as an opt-out of sale and sharing even when it conflicts
with a setting the consumer chose before. So in `opt_out` mode a visitor who accepted all and comes back with GPC
on has the partner sharing stopped at once and a `gpc` event recorded, which lookups then answer. In `opt_in`
regions the signal changes nothing the visitor granted: GPC is CCPA's opt-out signal, and there nothing runs without
a grant anyway (SPEC "Modes": GPC denies sale/sharing in `opt_out` mode).
"""

from __future__ import annotations

import pytest

from cmp.extensions import db
from cmp.services import notices, sites
from tests.browser.pages import data_layer, stored_consent, wait_ready
from tests.helpers import bearer

SHARING_TYPES = ("ad_storage", "ad_user_data", "ad_personalization")
PARTNER_COOKIE = "_partner_id"


def is_decision(response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/api/v1/sites/shop/consents")


def ran(page) -> dict:
    return page.evaluate("() => ({analytics: window.analyticsRuns, partner: window.partnerRuns})")


def granted(page, purpose: str) -> bool:
    return page.evaluate("purpose => window.cmp.get(purpose)", purpose)


def last_consent_update(page) -> dict:
    return [entry[2] for entry in data_layer(page) if entry[:2] == ["consent", "update"]][-1]


@pytest.fixture
def partner_cookie(service, pages):
    """The partner's cookie in the inventory, so that stopping the purpose must delete it."""
    site = service.site()
    sites.add_cookie(
        site,
        PARTNER_COOKIE,
        purpose="partner_sharing",
        provider="Partner",
        storage="persistent",
        lifetime_seconds=86400,
    )
    notices.publish_notice(site)
    db.session.commit()
    return {"name": PARTNER_COOKIE, "value": "p-42", "url": pages.origin}


def accept_all_without_gpc(new_context, visit, partner_cookie):
    """A first visit without GPC: Accept all, the partner's script runs and (as a partner would) sets its cookie."""
    context = new_context()
    page = visit(context.new_page())
    with page.expect_response(is_decision):
        page.locator(".cmp-banner").get_by_role("button", name="Accept all").click()
    page.locator(".cmp-banner").wait_for(state="detached")
    assert ran(page) == {"analytics": 1, "partner": 1}
    context.add_cookies([partner_cookie])
    return context.storage_state()


def lookup(service, subject: str, purpose: str) -> dict:
    headers = bearer("consent:read")
    response = service.app.test_client().get(
        "/api/v1/consents/lookup",
        query_string={"site": "shop", "subject": subject, "purpose": purpose},
        headers=headers,
    )
    assert response.status_code == 200, response.json
    return response.json


@pytest.mark.country("US")
def test_gpc_after_accept_all_records_gpc_and_stops_partner_sharing_at_once(
    new_context, visit, service, partner_cookie
):
    earlier = accept_all_without_gpc(new_context, visit, partner_cookie)
    (accepted,) = service.events()

    context = new_context(gpc=True, storage_state=earlier)
    page = context.new_page()
    with page.expect_response(is_decision) as decision:
        visit(page)
    assert decision.value.status == 201

    accepted_, gpc = service.events()
    assert accepted_ == accepted and accepted["action"] == "accept_all"
    assert (gpc["action"], gpc["gpc"], gpc["mode"], gpc["country"]) == ("gpc", True, "opt_out", "US")
    assert gpc["decisions"] == {"partner_sharing": "denied", "necessary": "granted"}
    assert gpc["subject_id"] == accepted["subject_id"]
    # The partner's tag never ran on this page; analytics, granted and not sale/sharing, still does.
    assert ran(page) == {"analytics": 1, "partner": None}
    assert not granted(page, "partner_sharing") and granted(page, "analytics")
    assert page.locator(".cmp-banner").count() == 0
    update = last_consent_update(page)
    assert {t: update[t] for t in SHARING_TYPES} == dict.fromkeys(SHARING_TYPES, "denied")
    assert update["analytics_storage"] == "granted"
    assert PARTNER_COOKIE not in {c["name"] for c in context.cookies()}
    stored = stored_consent(context)
    assert stored["d"]["partner_sharing"] is False and stored["d"]["analytics"] is True
    assert stored["r"] == gpc["id"]

    visitor = "visitor:" + stored["v"]
    assert lookup(service, visitor, "partner_sharing")["reason"] == "gpc"
    assert lookup(service, visitor, "partner_sharing")["allowed"] is False
    assert lookup(service, visitor, "analytics")["allowed"] is True

    # The refusal is kept: the next visit with GPC records nothing new and still runs no partner tag.
    again = visit(context.new_page())
    assert ran(again) == {"analytics": 1, "partner": None}
    assert [e["action"] for e in service.events()] == ["accept_all", "gpc"]


@pytest.mark.country("US")
def test_gpc_after_a_grant_stops_sharing_even_when_it_cannot_be_recorded(new_context, visit, service, partner_cookie):
    earlier = accept_all_without_gpc(new_context, visit, partner_cookie)

    context = new_context(gpc=True, storage_state=earlier)
    page = context.new_page()
    page.route(f"{service.base}/api/**/consents", lambda route: route.abort("connectionrefused"))
    with page.expect_event("requestfailed", lambda request: request.url.endswith("/consents")):
        visit(page)
    page.wait_for_function("() => dataLayer.filter(e => e[0] == 'consent' && e[1] == 'update').length == 2")

    assert ran(page) == {"analytics": 1, "partner": None}
    assert not granted(page, "partner_sharing")
    assert {last_consent_update(page)[t] for t in SHARING_TYPES} == {"denied"}
    assert PARTNER_COOKIE not in {c["name"] for c in context.cookies()}
    assert [e["action"] for e in service.events()] == ["accept_all"]
    # Nothing was recorded, so the cookie still holds the grant and the next visit records the refusal.
    assert stored_consent(context)["d"]["partner_sharing"] is True

    page.unroute(f"{service.base}/api/**/consents")
    with page.expect_response(is_decision):
        page.reload()
        wait_ready(page)
    assert [e["action"] for e in service.events()] == ["accept_all", "gpc"]
    # The banner keeps the answer once it has read it, a moment after the response arrived.
    page.wait_for_function("() => decodeURIComponent(document.cookie).includes('\"partner_sharing\":false')")
    assert stored_consent(context)["d"]["partner_sharing"] is False


@pytest.mark.country("DE")
def test_gpc_in_opt_in_mode_leaves_an_earlier_grant_and_records_nothing(new_context, visit, service, partner_cookie):
    earlier = accept_all_without_gpc(new_context, visit, partner_cookie)

    page = visit(new_context(gpc=True, storage_state=earlier).new_page())

    assert ran(page) == {"analytics": 1, "partner": 1}
    assert granted(page, "partner_sharing")
    assert PARTNER_COOKIE in {c["name"] for c in page.context.cookies()}
    assert [(e["action"], e["mode"]) for e in service.events()] == [("accept_all", "opt_in")]
