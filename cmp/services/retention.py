"""Retention (policy section 5): expire old grants, empty old evidence, remove events past their proof period.

Three steps, each safe to repeat (a second run finds nothing left to do) and each in its own transactions:

1. **Expire.** A grant whose time is up is recorded as an `expire` event, so the log itself says when
   consent ended, and lookups answer `expired`. Purposes that cannot be refused are left alone.
2. **Evidence.** The evidence columns (address prefix, user agent, page URL and the salt of their digest)
   of events older than the evidence limit (at most 3 years) are emptied, and email opens and clicks
   older than it are deleted: both are "access behaviour data". The chain covers only the salted digest,
   so it still verifies.
3. **Events.** Integrated events older than the consent's life plus the proof period are removed from the
   start of the log, with the state rows that still point to them. Their leaves stay in the tree's tiles, so
   every signed checkpoint and every remaining proof still verifies; a checkpoint row keeps the place and
   hash of the last removed event, and verification resumes from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update

from cmp.errors import Refused
from cmp.extensions import db
from cmp.models import (
    ChainCheckpoint,
    ChainHead,
    ConsentEvent,
    ConsentState,
    EmailActivity,
    Site,
    Subject,
    SubjectIdentifier,
)
from cmp.models.types import utcnow
from cmp.services import chain, notices, rollups
from cmp.services.consent import ConsentRequest, Lifetimes, record_consent
from cmp.vocabulary import Action, Decision, Source

# Rows changed per statement when emptying evidence: keeps each transaction and its locks short.
BATCH = 5000


@dataclass(frozen=True)
class Policy:
    """How long things are kept, from the settings."""

    evidence: timedelta
    events: timedelta  # the consent's life plus the proof period
    lifetimes: Lifetimes

    @classmethod
    def from_settings(cls, settings) -> Policy:
        lifetimes = Lifetimes.from_settings(settings)
        proof = timedelta(days=settings["CMP_PROOF_PERIOD_DAYS"])
        return cls(
            evidence=timedelta(days=settings["CMP_EVIDENCE_RETENTION_DAYS"]),
            events=max(lifetimes.consent, lifetimes.refusal) + proof,
            lifetimes=lifetimes,
        )


@dataclass
class PurgeReport:
    site: str
    dry_run: bool
    expired_subjects: int = 0
    expired_grants: int = 0
    # Grants that changed between reading and recording (the visitor decided again): left as they are.
    skipped: int = 0
    evidence_emptied: int = 0
    activity_removed: int = 0
    events_removed: int = 0
    state_rows_removed: int = 0
    subjects_removed: int = 0
    checkpoint: dict | None = field(default=None)
    # A dry run records nothing, so it remembers which state rows the expiry step would have moved.
    _would_expire: set[tuple[str, str]] = field(default_factory=set, repr=False)

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


def purge_site(site: Site, policy: Policy, *, hmac_key: str, dry_run: bool = False, now: datetime | None = None):
    """Apply the three retention steps to one site and report what was (or, dry, would be) done."""
    now = now or utcnow()
    report = PurgeReport(site=site.key, dry_run=dry_run)
    _expire_grants(site, policy, report, hmac_key=hmac_key, dry_run=dry_run, now=now)
    _empty_evidence(site, now - policy.evidence, report, dry_run=dry_run)
    _remove_events(site, now - policy.events, report, dry_run=dry_run, now=now)
    return report


# -- 1. expiry -------------------------------------------------------------------------------------------


def _expired_grants(site: Site, now: datetime) -> list[tuple[str, str, int | None, list[str]]]:
    """(subject, event, notice version, purposes) for each decision whose grants have run out."""
    rows = db.session.execute(
        select(ConsentState.subject_id, ConsentState.event_id, ConsentState.notice_version, ConsentState.purpose)
        .where(
            ConsentState.site_id == site.id,
            ConsentState.decision == Decision.GRANTED.value,
            ConsentState.expires_at <= now,
        )
        .order_by(ConsentState.subject_id, ConsentState.event_id, ConsentState.purpose)
    ).all()
    groups: dict[tuple[str, str, int | None], list[str]] = {}
    for subject_id, event_id, version, purpose in rows:
        groups.setdefault((subject_id, event_id, version), []).append(purpose)
    return [(*key, purposes) for key, purposes in groups.items()]


def _expire_grants(site: Site, policy: Policy, report: PurgeReport, *, hmac_key: str, dry_run: bool, now) -> None:
    refusable_by_version: dict[int | None, set[str]] = {}
    for subject_id, event_id, version, purposes in _expired_grants(site, now):
        if version not in refusable_by_version:
            notice = notices.get_notice(site, version) if version is not None else notices.current_notice(site)
            refusable_by_version[version] = {p["key"] for p in notice.content["purposes"] if p["refusable"]}
        expiring = [p for p in purposes if p in refusable_by_version[version]]
        if not expiring:
            continue
        if dry_run:
            report.expired_subjects += 1
            report.expired_grants += len(expiring)
            report._would_expire.update((subject_id, purpose) for purpose in expiring)
            continue
        request = ConsentRequest(
            site=site,
            identifier=None,
            subject_id=subject_id,
            action=Action.EXPIRE,
            source=Source.SYSTEM,
            decisions={p: Decision.DENIED.value for p in expiring},
            notice_version=version,
            # Only if the decision is still the expired one: a visitor who decided again meanwhile keeps it.
            expected_state=(expiring[0], event_id),
        )
        try:
            record_consent(request, hmac_key=hmac_key, lifetimes=policy.lifetimes)
        except Refused:
            report.skipped += 1
            continue
        report.expired_subjects += 1
        report.expired_grants += len(expiring)


# -- 2. evidence -----------------------------------------------------------------------------------------


def _empty_evidence(site: Site, cutoff: datetime, report: PurgeReport, *, dry_run: bool) -> None:
    events = ConsentEvent.__table__
    old = (events.c.site_id == site.id) & (events.c.received_at < cutoff) & (events.c.evidence_salt.is_not(None))
    activity = (EmailActivity.site_id == site.id) & (EmailActivity.occurred_at < cutoff)
    if dry_run:
        report.evidence_emptied = db.session.scalar(select(func.count()).select_from(events).where(old))
        report.activity_removed = db.session.scalar(select(func.count()).select_from(EmailActivity).where(activity))
        return
    # The log's ORM guard allows only emptying evidence; this works on the table, so it names the columns itself.
    while True:
        ids = select(events.c.id).where(old).limit(BATCH).scalar_subquery()
        emptied = db.session.execute(
            update(events)
            .where(events.c.id.in_(ids))
            .values(ip_prefix=None, user_agent=None, page_url=None, evidence_salt=None)
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        report.evidence_emptied += emptied
        if emptied < BATCH:
            break
    report.activity_removed = db.session.execute(
        delete(EmailActivity).where(activity).execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()


# -- 3. whole events -------------------------------------------------------------------------------------


def _remove_events(site: Site, cutoff: datetime, report: PurgeReport, *, dry_run: bool, now: datetime) -> None:
    events = ConsentEvent.__table__
    # Purges of one site queue on its log head, as the sequencer does; writers, who never take it, go on.
    db.session.execute(select(ChainHead.seq).where(ChainHead.site_id == site.id).with_for_update())
    start_seq, _ = chain.checkpoint(site.id)
    # Only placed events can go (a pending one has no place yet), and only a prefix of the log: everything
    # before the first placed event still within its proof period. Receive times rise per subject, not across
    # the log, so an old event after that one waits for a later purge.
    first_kept = db.session.scalar(
        select(func.min(events.c.seq)).where(events.c.site_id == site.id, events.c.received_at >= cutoff)
    )
    last_seq = db.session.scalar(select(func.max(events.c.seq)).where(events.c.site_id == site.id))
    if last_seq is None:
        db.session.rollback()
        return
    end = (first_kept - 1) if first_kept is not None else last_seq
    if end <= start_seq:
        db.session.rollback()
        return
    in_range = (events.c.site_id == site.id) & (events.c.seq > start_seq) & (events.c.seq <= end)
    doomed = select(events.c.id).where(in_range)
    report.events_removed = db.session.scalar(select(func.count()).select_from(events).where(in_range))
    if dry_run:
        stale = db.session.execute(
            select(ConsentState.subject_id, ConsentState.purpose).where(ConsentState.event_id.in_(doomed))
        )
        report.state_rows_removed = sum(1 for row in stale if tuple(row) not in report._would_expire)
    last_hash = db.session.scalar(select(events.c.hash).where(events.c.site_id == site.id, events.c.seq == end))
    report.checkpoint = {"seq": end, "hash": last_hash}
    if dry_run:
        db.session.rollback()
        return

    subjects = select(events.c.subject_id).where(in_range).distinct()
    touched = set(db.session.scalars(subjects))
    # A current decision older than its proof period answers `no_record` from now on: not allowed, as before.
    report.state_rows_removed = db.session.execute(
        delete(ConsentState).where(ConsentState.event_id.in_(doomed)).execution_options(synchronize_session=False)
    ).rowcount
    # The dashboard counts what the log holds: purged decisions leave its figures with their events.
    rollups.retract(site.id, start_seq + 1, end)
    db.session.execute(delete(events).where(in_range))
    db.session.add(
        ChainCheckpoint(site_id=site.id, seq=end, hash=last_hash, removed=report.events_removed, created_at=now)
    )
    report.subjects_removed = _remove_forgotten_subjects(site, touched)
    db.session.commit()


def _remove_forgotten_subjects(site: Site, candidates: set[str]) -> int:
    """Subjects left with no event and no decision are nobody's record any more: drop them and their links."""
    removed = 0
    candidates_list = sorted(candidates)
    for offset in range(0, len(candidates_list), BATCH):
        chunk = candidates_list[offset : offset + BATCH]
        remaining = set(
            db.session.scalars(select(ConsentEvent.subject_id).where(ConsentEvent.subject_id.in_(chunk)).distinct())
        ) | set(
            db.session.scalars(select(ConsentState.subject_id).where(ConsentState.subject_id.in_(chunk)).distinct())
        )
        gone = [s for s in chunk if s not in remaining]
        if not gone:
            continue
        for model, column in (
            (EmailActivity, EmailActivity.subject_id),
            (SubjectIdentifier, SubjectIdentifier.subject_id),
        ):
            db.session.execute(delete(model).where(column.in_(gone)).execution_options(synchronize_session=False))
        removed += db.session.execute(
            delete(Subject)
            .where(Subject.site_id == site.id, Subject.id.in_(gone))
            .execution_options(synchronize_session=False)
        ).rowcount
    return removed
