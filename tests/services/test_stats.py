"""Consent statistics: the counts the dashboard shows are exactly what was recorded, on SQLite and PostgreSQL.

The figures come from the rollups the sequencer keeps: events recorded here, not by a request, are counted once
integrated (`tlog.integrate_pending`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from cmp.extensions import db
from cmp.services import notices, sites, stats, tlog
from cmp.services.consent import ConsentRequest, Lifetimes, record_consent
from cmp.services.evidence import Evidence
from cmp.services.identifiers import Identifier
from cmp.services.stats import Period
from cmp.vocabulary import Action, IdentifierKind, Source
from tests.conftest import running_app

HMAC_KEY = "test-hmac-key-fedcba9876543210"
MARCH = Period(date(2026, 3, 1), date(2026, 3, 3))


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in March 2026, UTC."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    """Sets the receive time of the next recorded event."""
    now = {"value": datetime(2026, 3, 1, tzinfo=UTC)}
    monkeypatch.setattr("cmp.services.consent.utcnow", lambda: now["value"])

    def set_to(value: datetime):
        now["value"] = value

    return set_to


def with_sharing(site):
    """The site with a sale/sharing purpose and Japan under notice_only; its notice v2 shows both."""
    sites.add_purpose(site, "partner_sharing", texts={"en": {"name": "Partners"}}, default_opt_out="granted", gpc=True)
    sites.update_site(site, jurisdiction={"JP": "notice_only"})
    notices.publish_notice(site)
    db.session.commit()
    return site


@pytest.fixture
def shop(site):
    return with_sharing(site)


def record(
    site,
    action: Action,
    country: str | None,
    decisions=None,
    *,
    source: Source = Source.BANNER,
    gpc: bool = False,
    visitor: str = "v",
):
    identifier = Identifier(IdentifierKind.USER if source == Source.API else IdentifierKind.VISITOR, visitor)
    request = ConsentRequest(
        site=site,
        identifier=identifier,
        action=action,
        source=source,
        decisions=decisions or {},
        notice_version=2,
        evidence=Evidence(country=country, gpc=gpc),
    )
    return record_consent(request, hmac_key=HMAC_KEY, lifetimes=Lifetimes())


def record_march(shop, clock):
    """Six banner decisions over three UTC days, and events the measures must leave out."""

    def log(when, *args, **kwargs):
        clock(when)
        return record(shop, *args, **kwargs)

    # Inside the period: the banner decisions.
    log(at(1, 10), Action.ACCEPT_ALL, "DE", visitor="a")  # opt_in
    log(at(1, 23, 30), Action.REJECT_ALL, "US", visitor="b")  # opt_out; the last half-hour of 1 March in UTC
    log(at(2, 0, 10), Action.GPC, "US", gpc=True, visitor="c")  # names partner_sharing only
    log(at(2, 12), Action.SAVE, None, {"analytics": "granted", "preferences": "denied"}, visitor="d")
    log(at(2, 13), Action.SAVE, "JP", {"preferences": "granted"}, visitor="e")  # notice_only
    log(at(3, 9), Action.WITHDRAW, "DE", visitor="a")
    # Not banner decisions: defaults applied without a choice, and a server's record.
    log(at(3, 10), Action.DEFAULT, "DE", visitor="f")
    log(at(3, 11), Action.ACCEPT_ALL, "DE", source=Source.API, visitor="42")
    # Outside the period: one second before it, and its first instant after.
    log(datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC), Action.ACCEPT_ALL, "DE", visitor="g")
    log(datetime(2026, 3, 4, tzinfo=UTC), Action.ACCEPT_ALL, "DE", visitor="h")
    # Another site's decision, inside the period.
    blog = sites.create_site("blog", "Blog")
    notices.publish_notice(blog)
    db.session.commit()
    clock(at(2, 12))
    record_consent(
        ConsentRequest(blog, Identifier(IdentifierKind.VISITOR, "x"), Action.ACCEPT_ALL, Source.BANNER),
        hmac_key=HMAC_KEY,
        lifetimes=Lifetimes(),
    )
    db.session.commit()
    tlog.integrate_pending()


@pytest.fixture
def recorded(shop, clock):
    record_march(shop, clock)
    return shop


def test_purposes_are_the_refusable_banner_purposes_the_notices_showed(shop):
    assert stats.banner_purposes(shop) == ["preferences", "analytics", "partner_sharing"]


def test_purpose_rates_count_the_decisions_naming_each_purpose(recorded):
    rates = {rate.purpose: (rate.granted, rate.denied) for rate in stats.purpose_rates(recorded, MARCH)}
    assert rates == {
        "preferences": (2, 3),  # accept_all, save e / reject_all, save d, withdraw
        "analytics": (2, 2),  # accept_all, save d / reject_all, withdraw
        "partner_sharing": (1, 3),  # accept_all / reject_all, gpc, withdraw
    }


def test_purpose_shares_add_up_to_the_whole(recorded):
    preferences = stats.purpose_rates(recorded, MARCH)[0]
    assert preferences.decided == 5
    assert preferences.granted_share == pytest.approx(40.0)
    assert preferences.denied_share == pytest.approx(60.0)


def mixes(found) -> dict[str, dict[str, int]]:
    return {mix.group: mix.counts for mix in found}


def test_by_day_buckets_utc_days(recorded):
    assert mixes(stats.by_day(recorded, MARCH)) == {
        "2026-03-01": {"accept_all": 1, "reject_all": 1},
        "2026-03-02": {"gpc": 1, "save": 2},
        "2026-03-03": {"withdraw": 1},
    }
    assert [mix.group for mix in stats.by_day(recorded, MARCH)] == ["2026-03-01", "2026-03-02", "2026-03-03"]


@pytest.mark.postgres
def test_by_day_ignores_the_database_sessions_time_zone(postgres_url, clock):
    """PostgreSQL reads timestamptz in the session's zone: 23:30 UTC is already 2 March in Kiritimati (UTC+14)."""
    with running_app(postgres_url):
        site = sites.create_site("shop", "Shop")
        notices.publish_notice(site)
        shop = with_sharing(site)
        record_march(shop, clock)
        db.session.execute(sa.text("SET TIME ZONE 'Pacific/Kiritimati'"))

        assert mixes(stats.by_day(shop, MARCH))["2026-03-01"] == {"accept_all": 1, "reject_all": 1}
        db.session.rollback()


def test_by_country_names_unknown_and_puts_most_decisions_first(recorded):
    found = stats.by_country(recorded, MARCH)
    assert mixes(found) == {
        "DE": {"accept_all": 1, "withdraw": 1},
        "US": {"reject_all": 1, "gpc": 1},
        "JP": {"save": 1},
        "unknown": {"save": 1},
    }
    assert [mix.group for mix in found] == ["DE", "US", "JP", "unknown"]


def test_by_mode(recorded):
    found = stats.by_mode(recorded, MARCH)
    assert mixes(found) == {
        "notice_only": {"save": 1},
        "opt_in": {"accept_all": 1, "save": 1, "withdraw": 1},
        "opt_out": {"reject_all": 1, "gpc": 1},
    }
    opt_in = next(mix for mix in found if mix.group == "opt_in")
    assert (opt_in.total, opt_in.count("reject_all"), opt_in.share("save")) == (3, 0, pytest.approx(100 / 3))


def test_pending_events_count_once_integrated(recorded, clock):
    clock(at(2, 15))
    record(recorded, Action.REJECT_ALL, "FR", visitor="late")
    db.session.commit()
    assert stats.summarise(recorded, MARCH).decisions == 6

    tlog.integrate(recorded)
    assert stats.summarise(recorded, MARCH).decisions == 7
    assert mixes(stats.by_country(recorded, MARCH))["FR"] == {"reject_all": 1}


def test_summary_counts_each_banner_decision_once(recorded):
    summary = stats.summarise(recorded, MARCH)
    assert summary.decisions == 6
    assert sum(mix.total for mix in summary.days) == sum(mix.total for mix in summary.countries) == 6


def test_a_period_is_whole_utc_days():
    period = Period(date(2026, 3, 1), date(2026, 3, 3))
    assert period.days == 3
    assert period.start == datetime(2026, 3, 1, tzinfo=UTC)
    assert period.end == datetime(2026, 3, 4, tzinfo=UTC)


def test_an_empty_period_has_no_figures(recorded):
    april = Period(date(2026, 4, 1), date(2026, 4, 30))
    summary = stats.summarise(recorded, april)
    assert summary.decisions == 0 and summary.days == [] and summary.countries == [] and summary.modes == []
    assert [(rate.decided, rate.granted_share) for rate in summary.purposes] == [(0, 0.0)] * 3


def test_notice_history_is_newest_first(shop):
    sites.add_purpose(shop, "cross_border_transfer", texts={"en": {"name": "Transfers abroad"}})
    notices.publish_notice(shop, material=True, note="new partner")
    db.session.commit()
    history = [(row.version, row.material, row.note) for row in stats.notice_history(shop)]
    assert history == [(3, True, "new partner"), (2, False, None), (1, True, None)]
