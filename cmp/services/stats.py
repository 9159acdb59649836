"""Consent statistics for auditors: rates of banner decisions by purpose, day, country and mode.

Every figure is a sum over the daily rollups the sequencer keeps as it integrates events (`cmp.services.rollups`),
never a scan of the log: a measure reads one row per day and group of its period however many events there are,
and no row about a person is read at all (policy §1.3: statistics are kept apart from personal data). The rollups
count the events the log holds: pending events once integrated, and no longer those a retention purge removed.

The measures, as the dashboard states them:

- A *banner decision* is an event recorded from the banner (source `banner`) whose action is one of
  `cmp.services.rollups.DECISION_ACTIONS`: the visitor accepted all, rejected all, saved a choice of their
  own, withdrew what they had granted, or their browser's Global Privacy Control signal refused sale and sharing. The
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

from sqlalchemy import Row, func, select
from sqlalchemy.sql.expression import ColumnElement

from cmp.errors import Invalid
from cmp.extensions import db
from cmp.models import (
    ChainHead,
    DecisionRollup,
    LogCheckpoint,
    LogVerification,
    NoticeVersion,
    PurposeRollup,
    Site,
)
from cmp.models.types import utcnow
from cmp.services import chain, merkle, notes, tlog
from cmp.vocabulary import Channel, Decision

UNKNOWN_COUNTRY = "unknown"


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


def _in_period(model, site: Site, period: Period) -> list[ColumnElement[bool]]:
    """The rollup rows of the site's days in the period: a range of the rollup's primary key."""
    return [model.site_id == site.id, model.day >= period.first, model.day <= period.last]


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
    """Granted and denied counts per purpose, summed over the period's days."""
    purposes = list(banner_purposes(site) if purposes is None else purposes)
    if not purposes:
        return []
    rows = db.session.execute(
        select(PurposeRollup.purpose, PurposeRollup.decision, func.sum(PurposeRollup.events))
        .where(*_in_period(PurposeRollup, site, period), PurposeRollup.purpose.in_(purposes))
        .group_by(PurposeRollup.purpose, PurposeRollup.decision)
    )
    counts = {(purpose, decision): int(total) for purpose, decision, total in rows}
    return [
        PurposeRate(purpose, counts.get((purpose, Decision.GRANTED), 0), counts.get((purpose, Decision.DENIED), 0))
        for purpose in purposes
    ]


def _action_mix(site: Site, period: Period, group: ColumnElement) -> dict:
    rows = db.session.execute(
        select(group, DecisionRollup.action, func.sum(DecisionRollup.events))
        .where(*_in_period(DecisionRollup, site, period))
        .group_by(group, DecisionRollup.action)
    )
    mixes: dict = {}
    for key, action, count in rows:
        if count:
            mixes.setdefault(key, {})[action] = int(count)
    return mixes


def by_day(site: Site, period: Period) -> list[ActionMix]:
    """The action mix per UTC day, oldest first; days without a banner decision are left out."""
    mixes = _action_mix(site, period, DecisionRollup.day)
    return [ActionMix(day.isoformat(), counts) for day, counts in sorted(mixes.items())]


def by_country(site: Site, period: Period) -> list[ActionMix]:
    """The action mix per country, most decisions first; `unknown` where no country was determined."""
    mixes = _action_mix(site, period, DecisionRollup.country)
    found = [ActionMix(country or UNKNOWN_COUNTRY, counts) for country, counts in mixes.items()]
    return sorted(found, key=lambda mix: (-mix.total, mix.group))


def by_mode(site: Site, period: Period) -> list[ActionMix]:
    """The action mix per jurisdiction mode, in mode order."""
    mixes = _action_mix(site, period, DecisionRollup.mode)
    return [ActionMix(mode, counts) for mode, counts in sorted(mixes.items())]


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


# --- the log's checks, as the dashboard's verify page shows them ----------------------------------------------


@dataclass(frozen=True)
class CheckpointCheck:
    """The latest signed checkpoint checked in O(log n): its signature, and that it extends the one before it."""

    ok: bool
    reason: str | None = None
    size: int | None = None
    root: str | None = None
    signed_at: datetime | None = None
    # The checkpoint it was proved consistent with; None when it is the site's first.
    previous_size: int | None = None


def check_latest_checkpoint(site: Site) -> CheckpointCheck:
    """Check the site's latest checkpoint without reading the log: a few tiles and two checkpoints.

    Its signature must verify under the log's key and state this site's origin, size and root; the log's head must
    hold that root; and a consistency proof read from the stored tree must show the previous checkpoint's tree is a
    prefix of it. A log rewritten since the previous checkpoint fails here; one rewritten before it takes the full
    verification (`cmp verify`) or a witness.
    """
    latest = tlog.latest_checkpoint(site.id)
    if latest is None:
        return CheckpointCheck(True, "the log has no signed checkpoint yet")
    found = {"size": latest.size, "root": latest.root, "signed_at": latest.created_at}
    problem = _signed_as_stored(site, latest)
    head = db.session.get(ChainHead, site.id)
    if problem is None and head is not None and head.seq == latest.size and head.hash != latest.root:
        problem = "the log's head does not hold the latest checkpoint's root"
    previous = db.session.scalars(
        select(LogCheckpoint)
        .where(LogCheckpoint.site_id == site.id, LogCheckpoint.size < latest.size)
        .order_by(LogCheckpoint.size.desc())
        .limit(1)
    ).first()
    if previous is None:
        return CheckpointCheck(problem is None, problem, **found)
    problem = problem or _signed_as_stored(site, previous) or _inconsistent(site, previous, latest)
    return CheckpointCheck(problem is None, problem, previous_size=previous.size, **found)


def _signed_as_stored(site: Site, checkpoint: LogCheckpoint) -> str | None:
    """Why the checkpoint's signed note is not the log key's signature of its stored size and root, or None."""
    key = tlog.log_key()
    try:
        signed = notes.Checkpoint.parse(notes.open_note(checkpoint.note, [key.verifier]).text)
    except notes.NoteError as exc:
        return f"the checkpoint of size {checkpoint.size} does not verify under the log's key: {exc}"
    if (signed.origin, signed.size, signed.root.hex()) != (key.origin(site.key), checkpoint.size, checkpoint.root):
        return f"the checkpoint of size {checkpoint.size} does not sign the tree stored for this site"
    return None


def _inconsistent(site: Site, old: LogCheckpoint, new: LogCheckpoint) -> str | None:
    """Why the stored tree does not prove `old` a prefix of `new`, or None."""
    try:
        proof = tlog.consistency(site, old.size, new.size)
    except (ValueError, Invalid) as exc:
        return f"no consistency proof from {old.size} to {new.size} can be read from the stored tree: {exc}"
    if not merkle.verify_consistency(old.size, new.size, bytes.fromhex(old.root), bytes.fromhex(new.root), proof):
        return f"the tree of the checkpoint of size {new.size} does not extend the one of size {old.size}"
    return None


def record_verification(site: Site, result: chain.Verification, *, ok: bool, reason: str | None) -> None:
    """Keep the result of a full verification of the site's log (the caller commits).

    `ok` and `reason` cover the log (`result`) and what erasures left behind; where the log itself failed, its first
    bad event and place are kept too, for the auditor to look at.
    """
    db.session.add(
        LogVerification(
            site_id=site.id,
            checked_at=utcnow(),
            ok=ok,
            checked=result.checked,
            reason=reason,
            checkpoint_size=result.checkpoint_size,
            first_bad_event=result.first_bad,
            first_bad_seq=result.first_bad_seq,
        )
    )


def last_verification(site: Site) -> LogVerification | None:
    """The site's most recent full verification, or None if the log was never verified in full."""
    return db.session.scalars(
        select(LogVerification)
        .where(LogVerification.site_id == site.id)
        .order_by(LogVerification.checked_at.desc(), LogVerification.id.desc())
        .limit(1)
    ).first()
