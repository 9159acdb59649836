"""People's rights over their consent records (policy section 4): access, withdrawal, erasure.

A subject is named by any of its identifiers and found through that identifier's keyed digest; nothing here
ever sees or stores a plaintext email. Withdrawal appends to the log like any decision and never rewrites an
earlier event (GDPR Art. 7(3)). Erasure keeps the proof honest: the log keeps its events (their hashes cover
only a digest of the evidence), loses the evidence and every link to the person, and records that it happened.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import OperationalError

from cmp.errors import Invalid, NotFound
from cmp.extensions import db
from cmp.models import ConsentEvent, ConsentState, EmailActivity, Site, SubjectIdentifier, UnsubscribeLink
from cmp.models.consent import EVIDENCE_COLUMNS
from cmp.models.types import utcnow
from cmp.services import chain
from cmp.services.consent import MAX_ATTEMPTS, ConsentRequest, Lifetimes, hold_subject, is_transient, record_consent
from cmp.services.evidence import Evidence
from cmp.services.identifiers import InvalidIdentifier, VisitorIds, new_event_id
from cmp.services.jurisdiction import mode_for
from cmp.services.lookup import answer
from cmp.services.notices import last_material_version
from cmp.vocabulary import Action, Source


def find_subject(site: Site, subject: str, *, hmac_key: str, visitor_ids: VisitorIds) -> str:
    """The subject id an identifier (`email:`, `user:` or a signed `visitor:` id) points to on this site.

    `Invalid` when it cannot be read, `NotFound` when the site holds no record of it (never erased ones).
    """
    try:
        identifier = visitor_ids.identifier(site.key, subject)
    except InvalidIdentifier as exc:
        # The identifier is never echoed: it may be an email address.
        raise Invalid("invalid_subject", str(exc), {"subject": "invalid"}) from None
    subject_id = db.session.scalar(
        select(SubjectIdentifier.subject_id).where(
            SubjectIdentifier.site_id == site.id,
            SubjectIdentifier.digest == identifier.digest(hmac_key, site.key),
        )
    )
    if subject_id is None:
        raise NotFound("unknown_subject", f"site {site.key!r} holds no consent record for this subject")
    return subject_id


# --- access ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkedIdentifier:
    kind: str
    linked_at: datetime


@dataclass(frozen=True)
class PurposeState:
    """The current decision for one purpose, with what a lookup answers for it now."""

    decision: str
    action: str
    source: str
    allowed: bool
    reason: str
    decided_at: datetime | None
    event_id: str | None
    notice_version: int | None
    expires_at: datetime | None


@dataclass(frozen=True)
class SubjectRecord:
    """Everything the site holds about one subject's consent (GDPR Art. 15): no identifier values, none are kept."""

    site: str
    subject_id: str
    identifiers: list[LinkedIdentifier]
    state: dict[str, PurposeState]  # by purpose
    events: list[ConsentEvent]


def access(site: Site, subject_id: str) -> SubjectRecord:
    identifiers = [
        LinkedIdentifier(kind, created_at)
        for kind, created_at in db.session.execute(
            select(SubjectIdentifier.kind, SubjectIdentifier.created_at)
            .where(SubjectIdentifier.site_id == site.id, SubjectIdentifier.subject_id == subject_id)
            .order_by(SubjectIdentifier.id)
        )
    ]
    now, material = utcnow(), last_material_version(site)
    rows = db.session.execute(
        select(ConsentState)
        .where(ConsentState.site_id == site.id, ConsentState.subject_id == subject_id)
        .order_by(ConsentState.purpose)
    ).scalars()
    state = {r.purpose: PurposeState(r.decision, r.action, r.source, *answer(r, now, material)) for r in rows}
    events = list(
        db.session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.site_id == site.id, ConsentEvent.subject_id == subject_id)
            .order_by(ConsentEvent.seq)
        )
    )
    return SubjectRecord(site.key, subject_id, identifiers, state, events)


# --- withdrawal --------------------------------------------------------------------------------------------------


def withdraw(site: Site, subject_id: str, *, hmac_key: str, lifetimes: Lifetimes) -> ConsentEvent:
    """Record one `withdraw` event denying every refusable purpose of the site's notice, web and email alike.

    Through `record_consent`: the chain and the current state change in one transaction, and the next lookup
    answers `withdrawn`. The request comes from the controller's systems, not the person's browser, so it
    carries no evidence about them.
    """
    return record_consent(
        ConsentRequest(
            site=site,
            identifier=None,
            subject_id=subject_id,
            action=Action.WITHDRAW,
            source=Source.API,
            evidence=Evidence(),
        ),
        hmac_key=hmac_key,
        lifetimes=lifetimes,
    )


# --- erasure -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Removed:
    identifiers: int  # links deleted
    states: int  # current-state rows deleted
    email_activity: int  # opens and clicks deleted


@dataclass(frozen=True)
class Erasure:
    subject_id: str
    event: ConsentEvent  # the erase event
    removed: Removed
    evidence_emptied: int  # events whose evidence columns were emptied (the erase event included)


# What erasure deletes along with the identifier links: the current state, email opens and clicks, and the short
# unsubscribe links that would otherwise still name the subject. `cmp verify` checks none of it outlives them.
ERASED_WITH_LINKS = (ConsentState, EmailActivity, UnsubscribeLink)


def erase(site: Site, subject_id: str) -> Erasure:
    """Erase a subject in one transaction under the site's chain lock; `NotFound` if it is already erased.

    Appends an `erase` event (no evidence of its own), deletes the identifier links, the current state and the
    email activity, and empties the evidence columns of all the subject's events. The events stay: their hashes
    cover a salted digest of the evidence, not the evidence, so the chain still verifies.

    Writers decide their subject under the same lock, so once this commits nothing more is recorded under the
    subject id: a write by subject id is refused as for an unknown subject, and a write by one of its former
    identifiers starts a new subject.
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            erasure = _erase(site, subject_id)
            db.session.commit()
            return erasure
        except OperationalError as exc:
            db.session.rollback()
            # A writer that read first (SQLite) may be refused its write lock rather than queued: try again whole.
            if attempt == MAX_ATTEMPTS or not is_transient(exc):
                raise
            time.sleep(0.005 * attempt)
        except BaseException:
            db.session.rollback()
            raise
    raise AssertionError("unreachable")


def _erase(site: Site, subject_id: str) -> Erasure:
    event = ConsentEvent(
        id=new_event_id(),
        subject_id=subject_id,
        action=Action.ERASE.value,
        source=Source.API.value,
        decisions={},
        notice_version=None,
        notice_hash=None,
        locale=None,
        # No visitor request behind an erasure: the rule for an unknown country, the strictest.
        mode=mode_for(None, site.jurisdiction_overrides).value,
        country=None,
        gpc=False,
        evidence_salt=None,
        evidence_digest=chain.evidence_digest(None, None, None, None),
    )
    seq, prev_hash = chain.next_link(site)
    # Waits for opens, clicks and unsubscribe links being stored for the subject, and stops new ones.
    hold_subject(site.id, subject_id, for_erasure=True)
    # Checked again under the lock: of two concurrent erasures, the second finds nothing left and records nothing.
    links = delete(SubjectIdentifier).where(
        SubjectIdentifier.site_id == site.id, SubjectIdentifier.subject_id == subject_id
    )
    identifiers = db.session.execute(links).rowcount
    if not identifiers:
        raise NotFound("unknown_subject", f"site {site.key!r} holds no consent record for this subject")
    event.received_at = utcnow()
    chain.seal(event, site, seq, prev_hash)
    db.session.flush()
    removed = {
        model: db.session.execute(
            delete(model).where(model.site_id == site.id, model.subject_id == subject_id)
        ).rowcount
        for model in ERASED_WITH_LINKS
    }
    # On the table, not the mapped class: the ORM refuses bulk changes to the log, and only these columns
    # (which the hash does not cover) may be emptied.
    events = db.session.execute(
        update(ConsentEvent.__table__)
        .where(ConsentEvent.__table__.c.site_id == site.id, ConsentEvent.__table__.c.subject_id == subject_id)
        .values({name: None for name in EVIDENCE_COLUMNS})
    ).rowcount
    return Erasure(subject_id, event, Removed(identifiers, removed[ConsentState], removed[EmailActivity]), events)
