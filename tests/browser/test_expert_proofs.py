"""What a regulator's expert proves by hand, done in Chromium: withdrawal is as easy as giving, and lifetimes hold.

Clicks are counted by the page itself (every trusted click on a button or link, kept in sessionStorage so that a
reload does not lose it), while the test does what a visitor would. Lifetimes are checked with Playwright's clock
moving the browser's time (and, where the service must record a decision later on, the service's clock with it):
a refusal is asked again after 6 months, a grant after 12, and no choice is kept past 13 months (CNIL 2020-092).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from cmp.extensions import db
from cmp.models import ConsentEvent
from cmp.services import consent
from tests.browser.pages import cookie_names, wait_ready

COUNT_CLICKS = """addEventListener('click', e => {
  if (!e.isTrusted || !e.target.closest('button, a')) return;
  sessionStorage.setItem('clicks', +sessionStorage.getItem('clicks') + 1);
}, true);"""
THIRTEEN_MONTHS = timedelta(days=395)


def is_decision(response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/api/v1/sites/shop/consents")


def clicks(page) -> int:
    """Clicks on buttons and links the page has seen in this tab."""
    return int(page.evaluate("() => +sessionStorage.getItem('clicks')"))


def press(page, *buttons: str, reloads: bool = False) -> int:
    """Press these buttons in turn, as a visitor would, the last one recording a decision; the clicks it took."""
    before = clicks(page)
    *first, last = buttons
    for name in first:
        page.get_by_role("button", name=name, exact=True).click()
    with page.expect_response(is_decision) as decision:
        if reloads:  # a withdrawal reloads the page when a script of the purpose had run
            with page.expect_navigation():
                page.get_by_role("button", name=last, exact=True).click()
            wait_ready(page)
        else:
            page.get_by_role("button", name=last, exact=True).click()
    assert decision.value.ok
    page.locator(".cmp-banner, .cmp-modal").first.wait_for(state="detached")
    return clicks(page) - before


def actions(service) -> list[str]:
    return [event["action"] for event in service.events()]


def banner_shown(page) -> bool:
    return page.locator(".cmp-banner").count() == 1


def analytics_ran(page) -> bool:
    return page.evaluate("() => window.analyticsRuns === 1")


@pytest.fixture
def counting(new_context, visit):
    """A new visitor's first page, counting clicks."""

    def open_page():
        context = new_context()
        context.add_init_script(COUNT_CLICKS)
        return visit(context.new_page())

    return open_page


def test_refusing_on_the_first_visit_takes_no_more_clicks_than_accepting(counting, service):
    accepting = press(counting(), "Accept all")
    assert actions(service) == ["accept_all"]
    refusing = press(counting(), "Reject all")
    assert actions(service) == ["accept_all", "reject_all"]

    assert refusing <= accepting == 1


@pytest.mark.parametrize("when", ["same page", "later visit"])
def test_withdrawing_takes_no_more_clicks_than_granting(counting, visit, service, when):
    """GDPR Art. 7(3): once the first layer is gone, granting and withdrawing start from the same place."""

    def after(first):
        return first if when == "same page" else visit(first.context.new_page())

    refused = counting()
    press(refused, "Reject all")
    page = after(refused)
    granting = press(page, "Cookie settings", "Accept all")
    assert actions(service) == ["reject_all", "accept_all"]
    assert analytics_ran(page)

    accepted = counting()
    press(accepted, "Accept all")
    page = after(accepted)
    withdrawing = press(page, "Cookie settings", "Reject all", reloads=True)
    assert actions(service)[2:] == ["accept_all", "withdraw"]
    assert not analytics_ran(page) and cookie_names(page.context) == {"cmp_consent"}

    assert withdrawing <= granting == 2


class Clocks:
    """The browser's clock (Playwright's) and the service's, moved together days ahead of the real time."""

    def __init__(self, context, monkeypatch):
        self.context = context
        self.days = 0
        context.clock.install(time=datetime.now(UTC))
        monkeypatch.setattr(consent, "utcnow", lambda: datetime.now(UTC) + timedelta(days=self.days))

    def move_to(self, days: float) -> None:
        self.days = days
        self.context.clock.set_system_time(datetime.now(UTC) + timedelta(days=days))


@pytest.fixture
def clocks(new_context, monkeypatch):
    return Clocks(new_context(), monkeypatch)


@pytest.mark.parametrize(
    ("choice", "setting", "days"),
    [("Reject all", "CMP_REFUSAL_LIFETIME_DAYS", 182), ("Accept all", "CMP_CONSENT_LIFETIME_DAYS", 365)],
    ids=["refusal after 6 months", "grant after 12 months"],
)
def test_a_choice_is_asked_again_when_its_lifetime_runs_out_and_not_before(
    clocks, visit, service, choice, setting, days
):
    assert service.app.config[setting] == days
    press(visit(clocks.context.new_page()), choice)

    clocks.move_to(days - 1)
    day_before = visit(clocks.context.new_page())
    assert not banner_shown(day_before)
    assert analytics_ran(day_before) == (choice == "Accept all")

    clocks.move_to(days + 1)
    day_after = visit(clocks.context.new_page())
    assert banner_shown(day_after)
    assert not analytics_ran(day_after)
    assert len(service.events()) == 1


def test_a_later_decision_on_one_purpose_does_not_stretch_an_earlier_grant(clocks, visit, service):
    """Allowing the video 300 days after granting analytics must not keep that analytics grant past its year."""
    first = visit(clocks.context.new_page())
    first.get_by_role("button", name="Customise").click()
    first.get_by_role("switch", name="Analytics").check()
    press(first, "Save choices")

    clocks.move_to(300)
    later = visit(clocks.context.new_page())
    assert analytics_ran(later) and not banner_shown(later)
    with later.expect_response(is_decision):
        later.get_by_role("button", name="Allow Preferences").click()
    later.locator("iframe[data-cmp-purpose]").wait_for(state="visible")

    clocks.move_to(366)
    year_on = visit(clocks.context.new_page())
    assert banner_shown(year_on)
    assert not analytics_ran(year_on)
    assert actions(service) == ["save", "save"]


@pytest.mark.parametrize("slow_days", [0, 100], ids=["browser clock right", "browser clock 100 days slow"])
def test_the_consent_cookie_never_outlives_13_months(new_context, visit, service, slow_days):
    """Chromium keeps the cookie by real time: even a browser whose clock is slow drops it within 13 months."""
    context = new_context()
    context.clock.install(time=datetime.now(UTC) - timedelta(days=slow_days))
    press(visit(context.new_page()), "Accept all")

    decided = db.session.scalar(select(ConsentEvent.received_at))
    db.session.rollback()
    (cookie,) = [c for c in context.cookies() if c["name"] == "cmp_consent"]
    expires = datetime.fromtimestamp(cookie["expires"], UTC)
    # Written within a minute of the decision, for at most 395 days.
    assert expires <= decided + THIRTEEN_MONTHS + timedelta(minutes=1)
    assert expires >= decided + timedelta(days=364)
