"""Consent statistics for auditors: rates of banner decisions by purpose, day, country and mode.

Every figure is a count of consent events grouped in SQL, so it costs one indexed range scan per
measure however many events there are, and no row about a person ever leaves the database (policy §1.3:
statistics are kept apart from personal data).

The measures, as the dashboard states them:

- A *banner decision* is an event recorded from the banner (source `banner`) whose action is one of
  `DECISION_ACTIONS`: the visitor accepted all, rejected all, saved a choice of their own, withdrew what
  they had granted, or their browser's Global Privacy Control signal refused sale and sharing. The
  `default` action (defaults applied without a choice) and events recorded by servers, email links and
  the system are not decisions made in the banner and are left out.
- A purpose's *consent rate* is the share of the banner decisions naming that purpose that grant it;
  its *refusal rate*, the share that deny it. A decision that does not name a purpose (a GPC refusal
  names only sale and sharing purposes) does not count for it.
- By day, country and mode: the share of banner decisions taken with each action.
- Days are UTC calendar days; a country is the ISO 3166-1 code recorded with the event, `unknown` when
  none could be determined.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Date, Row, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from cmp.extensions import db
from cmp.models import ConsentEvent, NoticeVersion, Site
from cmp.vocabulary import Action, Channel, Decision, Source

# In the order the dashboard shows them.
DECISION_ACTIONS = (Action.ACCEPT_ALL, Action.SAVE, Action.REJECT_ALL, Action.WITHDRAW, Action.GPC)
UNKNOWN_COUNTRY = "unknown"


class utc_day(FunctionElement):
    """The UTC calendar day of a timestamp column.

    SQLite stores naive UTC text, so its date() is already the UTC day; PostgreSQL stores timestamptz,
    whose cast to date would follow the session's time zone, so the value is first taken in UTC.
    """

    type = Date()
    inherit_cache = True


@compiles(utc_day)
def _utc_day_sqlite(element, compiler, **kw):
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element, compiler, **kw):
    return f"CAST(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC' AS DATE)"


@dataclass(frozen=True)
class Period:
    """UTC calendar days from `first` to `last`, both included."""

    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time.min, UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.last + timedelta(days=1), time.min, UTC)


@dataclass(frozen=True)
class PurposeRate:
    """How the banner decisions naming one purpose went."""

    purpose: str
    granted: int
    denied: int

    @property
    def decided(self) -> int:
        return self.granted + self.denied

    @property
    def granted_share(self) -> float:
        return _share(self.granted, self.decided)

    @property
    def denied_share(self) -> float:
        return _share(self.denied, self.decided)


@dataclass(frozen=True)
class ActionMix:
    """How many banner decisions in one group (a day, a country, a mode) were taken with each action."""

    group: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def count(self, action: str) -> int:
        return self.counts.get(action, 0)

    def share(self, action: str) -> float:
        return _share(self.count(action), self.total)


def _share(part: int, whole: int) -> float:
    """A percentage; 0 for an empty group rather than a division error."""
    return 100.0 * part / whole if whole else 0.0


def _decisions(site: Site, period: Period) -> list[ColumnElement[bool]]:
    """The WHERE clause of every measure: the site's banner decisions in the period.

    Site and time come first, as in the (site_id, received_at) index the scan uses.
    """
    return [
        ConsentEvent.site_id == site.id,
        ConsentEvent.received_at >= period.start,
        ConsentEvent.received_at < period.end,
        ConsentEvent.source == Source.BANNER.value,
        ConsentEvent.action.in_([action.value for action in DECISION_ACTIONS]),
    ]


def banner_purposes(site: Site) -> list[str]:
    """The refusable banner purposes of every notice version the site published, in the order first shown.

    Taken from the notices rather than the site's configuration, so a purpose dropped since still has its figures.
    """
    purposes: dict[str, None] = {}
    # Only each notice's purpose list is read, not its texts and cookie inventory.
    shown = NoticeVersion.content["purposes"]
    for listed in db.session.scalars(
        select(shown).where(NoticeVersion.site_id == site.id).order_by(NoticeVersion.version)
    ):
        for purpose in listed:
            if purpose["refusable"] and purpose["channel"] == Channel.WEB:
                purposes.setdefault(purpose["key"], None)
    return list(purposes)


def purpose_rates(site: Site, period: Period, purposes: Iterable[str] | None = None) -> list[PurposeRate]:
    """Granted and denied counts per purpose, in one scan: two conditional counts per purpose."""
    purposes = list(banner_purposes(site) if purposes is None else purposes)
    if not purposes:
        return []
    columns = []
    for purpose in purposes:
        decision = ConsentEvent.decisions[purpose].as_string()
        columns.append(func.count(case((decision == Decision.GRANTED.value, 1))))
        columns.append(func.count(case((decision == Decision.DENIED.value, 1))))
    row = db.session.execute(select(*columns).where(*_decisions(site, period))).one()
    return [PurposeRate(purpose, row[2 * i], row[2 * i + 1]) for i, purpose in enumerate(purposes)]


def _action_mix(site: Site, period: Period, group: ColumnElement) -> dict:
    rows = db.session.execute(
        select(group.label("grp"), ConsentEvent.action, func.count())
        .where(*_decisions(site, period))
        .group_by(group, ConsentEvent.action)
    )
    mixes: dict = {}
    for key, action, count in rows:
        mixes.setdefault(key, {})[action] = count
    return mixes


def by_day(site: Site, period: Period) -> list[ActionMix]:
    """The action mix per UTC day, oldest first; days without a banner decision are left out."""
    mixes = _action_mix(site, period, utc_day(ConsentEvent.received_at))
    return [ActionMix(_as_date(day).isoformat(), counts) for day, counts in sorted(mixes.items(), key=_day_key)]


def by_country(site: Site, period: Period) -> list[ActionMix]:
    """The action mix per country, most decisions first; `unknown` where no country was determined."""
    mixes = _action_mix(site, period, ConsentEvent.country)
    found = [ActionMix(country or UNKNOWN_COUNTRY, counts) for country, counts in mixes.items()]
    return sorted(found, key=lambda mix: (-mix.total, mix.group))


def by_mode(site: Site, period: Period) -> list[ActionMix]:
    """The action mix per jurisdiction mode, in mode order."""
    mixes = _action_mix(site, period, ConsentEvent.mode)
    return [ActionMix(mode, counts) for mode, counts in sorted(mixes.items())]


def _as_date(value) -> date:
    # psycopg returns a date; SQLite's date() text is parsed by the Date type, but be lenient with either.
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _day_key(item) -> date:
    return _as_date(item[0])


@dataclass(frozen=True)
class Summary:
    """Every measure of one site over one period."""

    period: Period
    purposes: list[PurposeRate]
    days: list[ActionMix]
    countries: list[ActionMix]
    modes: list[ActionMix]

    @property
    def decisions(self) -> int:
        return sum(mix.total for mix in self.modes)


def summarise(site: Site, period: Period) -> Summary:
    return Summary(
        period, purpose_rates(site, period), by_day(site, period), by_country(site, period), by_mode(site, period)
    )


def notice_history(site: Site) -> list[Row]:
    """The site's notice versions, newest first: number, publication time, hash, whether material, note."""
    return list(
        db.session.execute(
            select(
                NoticeVersion.version,
                NoticeVersion.published_at,
                NoticeVersion.content_hash,
                NoticeVersion.material,
                NoticeVersion.note,
            )
            .where(NoticeVersion.site_id == site.id)
            .order_by(NoticeVersion.version.desc())
        )
    )
