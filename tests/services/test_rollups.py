"""The sequencer's rollups give the dashboard exactly the figures a scan of the log gives, on SQLite and PostgreSQL.

The oracle below is how the dashboard counted before rollups: one scan of the site's events per measure. It is
kept here only, as the definition the rollups must match on the same data: integrated in several batches,
after an erasure, and after a retention purge.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from cmp.extensions import db
from cmp.models import ConsentEvent, ConsentState, DecisionRollup, PurposeRollup
from cmp.services import chain, notices, rights, rollups, sites, stats, tlog
from cmp.services.consent import ConsentRequest, Lifetimes, record_consent
from cmp.services.identifiers import Identifier, new_event_id
from cmp.services.rollups import utc_day
from cmp.services.stats import ActionMix, Period, PurposeRate
from cmp.vocabulary import Action, IdentifierKind, Source
from tests.conftest import running_app

HMAC_KEY = "test-hmac-key-fedcba9876543210"
FIRST_DAY = date(2026, 3, 28)
DAYS = 8
PERIODS = [
    Period(FIRST_DAY, FIRST_DAY + timedelta(days=DAYS - 1)),  # everything
    Period(date(2026, 3, 31), date(2026, 3, 31)),  # one day, the month's last
    Period(date(2026, 3, 30), date(2026, 4, 2)),  # across the month's end
    Period(date(2026, 5, 1), date(2026, 5, 31)),  # nothing
]
COUNTRIES = ("DE", "US", "JP", "FR", None)
MODES = ("opt_in", "opt_out", "notice_only")
ACTIONS = tuple(Action)
SOURCES = (Source.BANNER, Source.BANNER, Source.BANNER, Source.API, Source.EMAIL_LINK)
PURPOSES = ("preferences", "analytics", "partner_sharing", "dropped_since")


# --- the oracle: the dashboard's figures counted from the log itself ------------------------------------------------


def _scanned(site, period):
    return [
        ConsentEvent.site_id == site.id,
        ConsentEvent.received_at >= period.start,
        ConsentEvent.received_at < period.end,
        ConsentEvent.source == Source.BANNER.value,
        ConsentEvent.action.in_([action.value for action in rollups.DECISION_ACTIONS]),
    ]


def _scan_mix(site, period, group) -> dict:
    mixes: dict = {}
    for key, action, count in db.session.execute(
        sa.select(group, ConsentEvent.action, sa.func.count())
        .where(*_scanned(site, period))
        .group_by(group, ConsentEvent.action)
    ):
        mixes.setdefault(key, {})[action] = count
    return mixes


def scan_summary(site, period: Period) -> stats.Summary:
    purposes = []
    for purpose in stats.banner_purposes(site):
        decision = ConsentEvent.decisions[purpose].as_string()
        granted, denied = db.session.execute(
            sa.select(
                sa.func.count(sa.case((decision == "granted", 1))), sa.func.count(sa.case((decision == "denied", 1)))
            ).where(*_scanned(site, period))
        ).one()
        purposes.append(PurposeRate(purpose, granted, denied))
    days = _scan_mix(site, period, utc_day(ConsentEvent.received_at))
    countries = _scan_mix(site, period, ConsentEvent.country)
    modes = _scan_mix(site, period, ConsentEvent.mode)
    return stats.Summary(
        period,
        purposes,
        [ActionMix(str(day)[:10], counts) for day, counts in sorted(days.items(), key=lambda item: str(item[0]))],
        sorted(
            (ActionMix(country or "unknown", counts) for country, counts in countries.items()),
            key=lambda mix: (-mix.total, mix.group),
        ),
        [ActionMix(mode, counts) for mode, counts in sorted(modes.items())],
    )


# --- the data --------------------------------------------------------------------------------------------------------


def make_site(key: str = "shop"):
    """A site whose notices showed `dropped_since`, then dropped it, and added a sale/sharing purpose."""
    site = sites.create_site(key, key.title())
    sites.add_purpose(site, "dropped_since", texts={"en": {"name": "Old"}})
    notices.publish_notice(site)
    sites.add_purpose(site, "partner_sharing", texts={"en": {"name": "Partners"}}, default_opt_out="granted", gpc=True)
    notices.publish_notice(site)
    db.session.commit()
    return site


def queue_events(site, count: int, seed: int) -> str:
    """`count` events of every shape, banner decisions or not, over `DAYS` UTC days; returns their subject's id."""
    rng = random.Random(seed)
    first = record_consent(
        ConsentRequest(site, Identifier(IdentifierKind.VISITOR, f"{site.key}-v"), Action.ACCEPT_ALL, Source.BANNER),
        hmac_key=HMAC_KEY,
        lifetimes=Lifetimes(),
    )
    start = datetime.combine(FIRST_DAY, datetime.min.time(), UTC)
    for _ in range(count):
        # Some at the very edges of a UTC day, where a zone-dependent day would slip.
        offset = rng.choice([timedelta(seconds=rng.randrange(86400)), timedelta(0), timedelta(seconds=86399)])
        event = ConsentEvent(
            id=new_event_id(),
            subject_id=first.subject_id,
            action=rng.choice(ACTIONS).value,
            source=rng.choice(SOURCES).value,
            decisions={p: rng.choice(("granted", "denied")) for p in PURPOSES if rng.random() < 0.5},
            notice_version=2,
            mode=rng.choice(MODES),
            country=rng.choice(COUNTRIES),
            gpc=rng.random() < 0.2,
            received_at=start + timedelta(days=rng.randrange(DAYS)) + offset,
            evidence_digest=chain.evidence_digest(None, None, None, None),
        )
        chain.seal(event, site)
    db.session.commit()
    return first.subject_id


def integrate_all(site, batch: int) -> None:
    while tlog.integrate(site, batch=batch) is not None:
        pass


def assert_rollups_match_the_scan(site) -> None:
    for period in PERIODS:
        assert stats.summarise(site, period) == scan_summary(site, period), period


def rollup_rows() -> set[tuple]:
    rows = set()
    for model in (DecisionRollup, PurposeRollup):
        rows |= {tuple(row) for row in db.session.execute(sa.select(model.__table__))}
    return rows


def purge_prefix(site, last_seq: int) -> None:
    """What a retention purge does to the log's first events, taking them from the rollups as it should."""
    events = ConsentEvent.__table__
    doomed = (events.c.site_id == site.id) & (events.c.seq <= last_seq)
    rollups.retract(site.id, 1, last_seq)
    db.session.execute(sa.delete(ConsentState).where(ConsentState.event_id.in_(sa.select(events.c.id).where(doomed))))
    db.session.execute(sa.delete(events).where(doomed))
    db.session.commit()


def check_everything(seed: int) -> None:
    shop, blog = make_site("shop"), make_site("blog")
    subject = queue_events(shop, 400, seed)
    queue_events(blog, 50, seed + 1)
    # Nothing counts before the sequencer places it.
    assert stats.summarise(shop, PERIODS[0]).decisions == 0
    integrate_all(shop, batch=37)
    integrate_all(blog, batch=4096)
    assert stats.summarise(shop, PERIODS[0]).decisions > 50
    assert_rollups_match_the_scan(shop)
    assert_rollups_match_the_scan(blog)

    counted = rollup_rows()
    rights.erase(shop, subject)
    tlog.integrate(shop)  # erasure appends no banner decision
    assert rollup_rows() == counted
    assert_rollups_match_the_scan(shop)

    purge_prefix(shop, 150)
    assert_rollups_match_the_scan(shop)
    assert_rollups_match_the_scan(blog)
    assert not db.session.scalar(sa.select(sa.func.count()).where(DecisionRollup.events <= 0))


def test_rollups_match_the_scan_of_the_log(app):
    check_everything(seed=15)


@pytest.mark.postgres
def test_rollups_match_the_scan_of_the_log_on_postgresql(postgres_url):
    with running_app(postgres_url):
        # The session's zone must not move a day: the rollups are UTC days whatever the connection says.
        db.session.execute(sa.text("SET TIME ZONE 'Pacific/Kiritimati'"))
        check_everything(seed=16)


# --- the counting itself ---------------------------------------------------------------------------------------------


def test_a_batch_that_fails_to_integrate_counts_nothing(app, monkeypatch):
    """The rollups move in the integration's transaction: a sequencer killed before its commit leaves them as they
    were, and the next integration counts each event once."""
    shop = make_site()
    queue_events(shop, 30, seed=3)
    before = rollup_rows()

    def fail(*args, **kwargs):
        raise RuntimeError("killed while signing")

    monkeypatch.setattr(tlog, "_sign", fail)
    with pytest.raises(RuntimeError):
        tlog.integrate(shop)
    assert rollup_rows() == before
    monkeypatch.undo()
    integrate_all(shop, batch=4096)
    assert_rollups_match_the_scan(shop)
