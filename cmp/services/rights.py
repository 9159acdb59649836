"""People's rights over their consent records (policy sections 4 and 6): access, withdrawal, erasure,
restriction, correction, and a child's age of digital consent.

A subject is named by any of its identifiers and found through that identifier's keyed digest; nothing here
ever sees or stores a plaintext email. Withdrawal appends to the log like any decision and never rewrites an
earlier event (GDPR Art. 7(3)). Erasure keeps the proof honest: the log keeps its events (their hashes cover
only a digest of the evidence), loses the evidence and every link to the person, and records that it happened.

Restriction, correction and age checks are recorded as events that decide nothing (like `erase`), each in one
transaction with what it changes, holding the subject's row as every write about the subject does: none of these
can interleave with a consent write or an erasure of the same subject, and writes about other subjects go on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update

from cmp.errors import Invalid, Refused, Unknown
from cmp.extensions import db
from cmp.models import ConsentEvent, ConsentState, EmailActivity, Site, Subject, SubjectIdentifier, UnsubscribeLink
from cmp.models.consent import EVIDENCE_COLUMNS
from cmp.models.types import utcnow
from cmp.services import chain
from cmp.services.consent import (
    ConsentRequest,
    Lifetimes,
    hold_subject,
    one_transaction,
    record_consent,
)
from cmp.services.evidence import Evidence
from cmp.services.identifiers import Identifier, InvalidIdentifier, VisitorIds, new_event_id
from cmp.services.jurisdiction import child_age, mode_for
from cmp.services.lookup import decide, subject_flags
from cmp.services.notices import last_material_version
from cmp.vocabulary import Action, Source


def read_identifier(site: Site, subject: str, *, visitor_ids: VisitorIds, field: str = "subject") -> Identifier:
    """`subject` as an identifier of this site; `Invalid`, naming `field`, when it cannot be read."""
    try:
        return visitor_ids.identifier(site.key, subject)
    except InvalidIdentifier as exc:
        # The identifier is never echoed: it may be an email address.
        raise Invalid("invalid_subject", str(exc), {field: "invalid"}) from None


def find_subject(site: Site, subject: str, *, hmac_key: str, visitor_ids: VisitorIds) -> str:
    """The subject id an identifier (`email:`, `user:` or a signed `visitor:` id) points to on this site.

    `Invalid` when it cannot be read, `Unknown` when the site holds no record of it (never erased ones).
    """
    identifier = read_identifier(site, subject, visitor_ids=visitor_ids)
    subject_id = _owner(site, identifier.digest(hmac_key, site.key))
    if subject_id is None:
        raise _unknown(site)
    return subject_id


def _owner(site: Site, digest: str) -> str | None:
    """The subject an identifier's digest names on the site, if any."""
    return db.session.scalar(
        select(SubjectIdentifier.subject_id).where(
            SubjectIdentifier.site_id == site.id, SubjectIdentifier.digest == digest
        )
    )


def _unknown(site: Site) -> Unknown:
    return Unknown("unknown_subject", f"site {site.key!r} holds no consent record for this subject")


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
    restricted: bool  # processing restricted (GDPR Art. 18): every lookup answers `restricted`
    child: bool  # below the age of digital consent (GDPR Art. 8): only a guardian's grant allows anything
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
    now, material, flags = utcnow(), last_material_version(site), subject_flags(subject_id)
    rows = db.session.execute(
        select(ConsentState)
        .where(ConsentState.site_id == site.id, ConsentState.subject_id == subject_id)
        .order_by(ConsentState.purpose)
    ).scalars()
    state = {r.purpose: PurposeState(r.decision, r.action, r.source, *decide(r, flags, now, material)) for r in rows}
    events = list(
        db.session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.site_id == site.id, ConsentEvent.subject_id == subject_id)
            # In the log's order; events not yet integrated follow, in the order they took effect.
            .order_by(ConsentEvent.seq.is_(None), ConsentEvent.seq, ConsentEvent.entry, ConsentEvent.id)
        )
    )
    return SubjectRecord(site.key, subject_id, flags.restricted, flags.child, identifiers, state, events)


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


# --- events that decide nothing, written holding the subject ------------------------------------------------


def _append(site: Site, subject_id: str, action: Action) -> ConsentEvent:
    """Queue an event of `action` about the subject for the log: no decisions, no evidence, no identifier."""
    event = ConsentEvent(
        id=new_event_id(),
        subject_id=subject_id,
        action=action.value,
        source=Source.API.value,
        decisions={},
        notice_version=None,
        notice_hash=None,
        locale=None,
        # No visitor request behind it: the rule for an unknown country, the strictest.
        mode=mode_for(None, site.jurisdiction_overrides).value,
        country=None,
        gpc=False,
        evidence_salt=None,
        evidence_digest=chain.evidence_digest(None, None, None, None),
        # Time is read holding the subject, so its receive times rise in the order its events took effect.
        received_at=utcnow(),
    )
    chain.seal(event, site)
    db.session.flush()
    return event


@dataclass(frozen=True)
class Marked:
    """A subject flag after a request to set it, and the event that recorded the change (None: it was so)."""

    subject_id: str
    value: bool
    event: ConsentEvent | None


# The subject's flags, by the actions that set and clear them. Erasure clears them with the links.
FLAGS = {"restricted": (Action.RESTRICT, Action.UNRESTRICT), "child": (Action.CHILD, Action.ADULT)}


def _mark(site: Site, subject_id: str, flag: str, value: bool) -> Marked:
    """Set one of the subject's flags and record the change; a repeat records nothing. `Unknown` once erased."""

    def write() -> Marked:
        # Checked holding the subject: a subject erased since the request found it gets nothing recorded.
        if not hold_subject(site.id, subject_id):
            raise _unknown(site)
        if db.session.scalar(select(getattr(Subject, flag)).where(Subject.id == subject_id)) == value:
            return Marked(subject_id, value, None)
        db.session.execute(update(Subject).where(Subject.id == subject_id).values({flag: value}))
        set_by, cleared_by = FLAGS[flag]
        return Marked(subject_id, value, _append(site, subject_id, set_by if value else cleared_by))

    return one_transaction(write, changed=lambda marked: marked.event is not None)


# --- restriction -------------------------------------------------------------------------------------------------


def restrict(site: Site, subject_id: str, restricted: bool = True) -> Marked:
    """Restrict processing for the subject (GDPR Art. 18), or lift the restriction, recorded as `restrict` or
    `unrestrict`; while restricted every lookup answers not allowed, reason `restricted`.

    The subject's decisions stay as they are and may still change (a withdrawal, say): they count again once the
    restriction is lifted.
    """
    return _mark(site, subject_id, "restricted", restricted)


# --- age of digital consent --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgeCheck:
    marked: Marked
    age_of_consent: int  # the threshold applied


def record_age(site: Site, subject_id: str, age: int, country: str | None = None) -> AgeCheck:
    """Mark the subject a child (GDPR Art. 8(1)) when `age` is below the age of digital consent in `country` under
    the site's setting, or an adult otherwise; a change is recorded as `child` or `adult`.

    Only the outcome is stored, never the age or the country. For a child, only a guardian's grant allows anything.
    """
    threshold = child_age(country, site.child_ages)
    return AgeCheck(_mark(site, subject_id, "child", age < threshold), threshold)


# --- correction --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Correction:
    subject_id: str
    event: ConsentEvent  # the correct event appended to the log


def correct(site: Site, subject_id: str, old: str, new: str, *, hmac_key: str, visitor_ids: VisitorIds) -> Correction:
    """Replace the subject's identifier `old` by `new` (GDPR Art. 16: a changed email address, a merged account).

    The subject stays the same, so its history and current state stay with it; the old identifier then names no
    one, and a `correct` event records that a correction happened, never what either identifier was. When `new`
    already names another subject: `Refused`, nothing changes, two histories are never merged. When it already
    names this subject: the old link alone goes.
    """
    replacement = read_identifier(site, new, visitor_ids=visitor_ids, field="identifier")
    old_digest = read_identifier(site, old, visitor_ids=visitor_ids).digest(hmac_key, site.key)
    new_digest = replacement.digest(hmac_key, site.key)
    if old_digest == new_digest:
        raise Invalid(
            "identifier_unchanged", "the new identifier is the one the subject is known by", {"identifier": "same"}
        )

    def write() -> Correction:
        # Decided holding the subject, as consent writes decide which subject an identifier names: of two
        # concurrent corrections of one identifier the second finds it gone, and an erasure either ran first
        # (nothing left to correct) or runs after (and deletes the new link with the rest). A link of the new
        # identifier made meanwhile collides on its unique key, and the retry finds it taken.
        hold_subject(site.id, subject_id)
        if _owner(site, old_digest) != subject_id:
            raise _unknown(site)
        owner = _owner(site, new_digest)
        if owner not in (None, subject_id):
            raise Refused(
                "identifiers_conflict",
                "the new identifier already belongs to another subject; their histories are not merged",
                {"kinds": [replacement.kind.value]},
            )
        db.session.execute(
            delete(SubjectIdentifier).where(
                SubjectIdentifier.site_id == site.id, SubjectIdentifier.digest == old_digest
            )
        )
        if owner is None:
            db.session.execute(
                insert(SubjectIdentifier),
                {"site_id": site.id, "subject_id": subject_id, "kind": replacement.kind.value, "digest": new_digest},
            )
        return Correction(subject_id, _append(site, subject_id, Action.CORRECT))

    return one_transaction(write)


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
    """Erase a subject in one transaction holding its row exclusively; `Unknown` if it is already erased.

    Appends an `erase` event (no evidence of its own), deletes the identifier links, the current state and the
    email activity, clears the subject's flags (restricted, child), and empties the evidence columns of all the
    subject's events. The events stay: their hashes cover a salted digest of the evidence, not the evidence, so
    the log still verifies. The subject's row stays too, with nothing about the person in it.

    Writers hold the subject too, so once this commits nothing more is recorded under the subject id: a write by
    subject id is refused as for an unknown subject, and a write by one of its former identifiers starts a new
    subject.
    """
    return one_transaction(lambda: _erase(site, subject_id))


def _erase(site: Site, subject_id: str) -> Erasure:
    # Waits for every write about the subject being made, and stops new ones.
    hold_subject(site.id, subject_id, exclusive=True)
    # Checked holding the subject: of two concurrent erasures, the second finds nothing left and records nothing.
    links = delete(SubjectIdentifier).where(
        SubjectIdentifier.site_id == site.id, SubjectIdentifier.subject_id == subject_id
    )
    identifiers = db.session.execute(links).rowcount
    if not identifiers:
        raise _unknown(site)
    event = _append(site, subject_id, Action.ERASE)
    removed = {
        model: db.session.execute(
            delete(model).where(model.site_id == site.id, model.subject_id == subject_id)
        ).rowcount
        for model in ERASED_WITH_LINKS
    }
    # A child or a restriction is something known about the person: it goes with the links.
    db.session.execute(update(Subject).where(Subject.id == subject_id).values(dict.fromkeys(FLAGS, False)))
    # On the table, not the mapped class: the ORM refuses bulk changes to the log, and only these columns
    # (which the hash does not cover) may be emptied.
    events = db.session.execute(
        update(ConsentEvent.__table__)
        .where(ConsentEvent.__table__.c.site_id == site.id, ConsentEvent.__table__.c.subject_id == subject_id)
        .values({name: None for name in EVIDENCE_COLUMNS})
    ).rowcount
    return Erasure(subject_id, event, Removed(identifiers, removed[ConsentState], removed[EmailActivity]), events)
