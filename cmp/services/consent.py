"""Recording consent: resolve the decision set, append the event to the chain, update the current state."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import TypeVar

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from cmp.errors import DomainError, Invalid, Refused, Unknown
from cmp.extensions import db, insert_or_merge
from cmp.models import ConsentEvent, ConsentState, NoticeVersion, Site, Subject, SubjectIdentifier
from cmp.models.types import utcnow
from cmp.services import chain, notices
from cmp.services.evidence import Evidence
from cmp.services.identifiers import Identifier, new_event_id, new_subject_id
from cmp.services.jurisdiction import mode_for
from cmp.vocabulary import Action, Channel, Decision, GivenBy, Mode, Source

log = logging.getLogger(__name__)

# Transient conflicts (two writers creating the same subject, a deadlock, a lock timeout) are retried.
MAX_ATTEMPTS = 6


@dataclass(frozen=True)
class Lifetimes:
    """How long a grant lasts, and how long a refusal is not asked again (CNIL 2020-092)."""

    consent: timedelta = timedelta(days=365)
    refusal: timedelta = timedelta(days=182)

    @classmethod
    def from_settings(cls, settings: Mapping) -> Lifetimes:
        return cls(
            consent=timedelta(days=settings["CMP_CONSENT_LIFETIME_DAYS"]),
            refusal=timedelta(days=settings["CMP_REFUSAL_LIFETIME_DAYS"]),
        )


@dataclass(frozen=True)
class ConsentRequest:
    site: Site
    # Who decided: an identifier, or (`subject_id` below) the subject a signed email link names.
    identifier: Identifier | None
    action: Action
    source: Source
    decisions: dict[str, str] = field(default_factory=dict)
    notice_version: int | None = None
    locale: str | None = None
    evidence: Evidence = field(default_factory=Evidence)
    # The identifier was minted for this request (a first-time visitor): no subject can exist for it yet.
    new_subject: bool = False
    # The subject itself, known from a signed link that carries no identifier (no plaintext email in tokens).
    subject_id: str | None = None
    # (purpose, event id or None for no state yet): record only if that purpose's current state is still this.
    # Checked holding the subject, so of two requests acting on the same state (two clicks on one link) only
    # the first records; the others raise `StateChanged`.
    expected_state: tuple[str, str | None] | None = None
    # Who decided when it was not the subject: a parent or guardian (policy section 6). Covered by the hash.
    given_by: GivenBy | None = None


def record_consent(request: ConsentRequest, *, hmac_key: str, lifetimes: Lifetimes) -> ConsentEvent:
    """Append one consent event and update the current state, in one transaction.

    Raises `Invalid`, `Refused` or `Unknown` before anything is written when the request cannot be honoured.
    """
    if (request.identifier is None) == (request.subject_id is None):
        raise ValueError("a consent request names its subject by an identifier or by a subject id, not both")
    site = request.site
    site_key = site.key
    notice = _resolve_notice(site, request.notice_version)
    mode = mode_for(request.evidence.country, site.jurisdiction_overrides)
    decisions, by_gpc = resolve_decisions(request, notice.content, mode)
    digest = request.identifier.digest(hmac_key, site_key) if request.identifier is not None else None

    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            event = _write(request, site, notice, mode, decisions, by_gpc, digest, lifetimes)
            db.session.commit()
            return event
        except DomainError:
            db.session.rollback()
            raise
        except (IntegrityError, OperationalError) as exc:
            db.session.rollback()
            if attempt == MAX_ATTEMPTS or not is_transient(exc):
                raise
            log.info("consent write retried", extra={"site": site_key, "attempt": attempt, "error": type(exc).__name__})
            time.sleep(0.005 * attempt)
            site = db.session.get(Site, site.id)
    raise AssertionError("unreachable")


R = TypeVar("R")


def one_transaction(write: Callable[[], R], changed: Callable[[R], bool] = lambda _: True) -> R:
    """Run `write` (which holds its subject first) as one transaction and return its result.

    Committed when `changed` says the result changed something; otherwise rolled back, so a request that finds
    nothing to do leaves no trace. Retried whole on a transient conflict (a lock, or a concurrent writer of the same
    new identifier).
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            result = write()
            if changed(result):
                db.session.commit()
            else:
                db.session.rollback()
            return result
        except (IntegrityError, OperationalError) as exc:
            db.session.rollback()
            # A writer that read first (SQLite) may be refused its write lock rather than queued: try again whole.
            if attempt == MAX_ATTEMPTS or not is_transient(exc):
                raise
            time.sleep(0.005 * attempt)
        except BaseException:
            db.session.rollback()
            raise
    raise AssertionError("unreachable")


def is_transient(exc: Exception) -> bool:
    if isinstance(exc, IntegrityError):
        return True  # a concurrent writer created the same subject first
    text = str(getattr(exc, "orig", exc)).lower()
    return any(word in text for word in ("deadlock", "could not serialize", "database is locked", "lock timeout"))


def _write(request, site, notice, mode, decisions, by_gpc, digest, lifetimes) -> ConsentEvent:
    grants = any(value == Decision.GRANTED and _refusable(notice.content, key) for key, value in decisions.items())
    lifetime = lifetimes.consent if grants else lifetimes.refusal
    evidence = request.evidence
    event = ConsentEvent(
        id=new_event_id(),
        action=request.action.value,
        source=request.source.value,
        decisions=decisions,
        notice_version=notice.version,
        notice_hash=notice.content_hash,
        locale=request.locale,
        mode=mode.value,
        country=evidence.country,
        gpc=evidence.gpc,
        ip_prefix=evidence.ip_prefix,
        user_agent=evidence.user_agent,
        page_url=evidence.page_url,
        evidence_salt=evidence.salt,
        evidence_digest=evidence.digest,
        given_by=request.given_by.value if request.given_by else None,
    )
    # Which subject the event belongs to depends on other writers (an erasure, a correction, a link): it is decided
    # holding the subject's row, which every writer for that subject holds until commit, and nothing site-wide.
    event.subject_id = subject_id = _subject(request, site, digest)
    if request.expected_state is not None:
        _require_state(site.id, subject_id, *request.expected_state)
    # Time is read holding the subject, so each subject's receive times rise in the order its decisions took effect.
    now = utcnow()
    event.received_at, event.expires_at = now, now + lifetime
    chain.seal(event, site)
    db.session.flush()
    _write_state(site.id, subject_id, event, decisions, by_gpc, lifetimes, now)
    return event


class StateChanged(Refused):
    """The state a request's `expected_state` names is no longer the current one; nothing was recorded."""

    def __init__(self, purpose: str):
        super().__init__("state_changed", f"the {purpose} decision changed meanwhile; nothing was recorded")


def _require_state(site_id: int, subject_id: str, purpose: str, event_id: str | None) -> None:
    current = db.session.scalar(
        select(ConsentState.event_id).where(
            ConsentState.site_id == site_id, ConsentState.subject_id == subject_id, ConsentState.purpose == purpose
        )
    )
    if current != event_id:
        raise StateChanged(purpose)


def is_live(site_id: int, subject_id: str) -> bool:
    """Whether the subject belongs to the site and was not erased.

    Erasure deletes every identifier link of its subject and nothing else leaves a subject with a record but no
    link (retention drops links only with the subject), so a subject no identifier names is an erased one.
    """
    linked = select(SubjectIdentifier.id).where(
        SubjectIdentifier.site_id == site_id, SubjectIdentifier.subject_id == subject_id
    )
    return db.session.scalar(select(linked.exists()))


def hold_subject(site_id: int, subject_id: str, *, exclusive: bool = False, shared: bool = False) -> bool:
    """Lock the subject's row until commit and answer whether it is live.

    Every write about a subject holds its row, and nothing site-wide, so writers for different subjects never wait
    for each other. Decisions and flags hold it for update: writes for one subject take effect one at a time, in the
    order of their log entries (the sequencer integrates in that order), so replaying the log gives the state.
    Email opens, clicks and unsubscribe links hold it `shared` (they order nothing among themselves); an erasure
    holds it `exclusive`: either the erasure waits and then deletes what a write stored, or the write waits and then
    finds the subject erased. SQLite has one writer at a time: a write takes that lock now, since a read alone would
    not keep an erasure out until commit.
    """
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(update(Subject).where(Subject.id == subject_id).values(site_id=Subject.site_id))
    else:
        held = select(Subject.id).where(Subject.id == subject_id)
        if exclusive:
            held = held.with_for_update()
        elif shared:
            held = held.with_for_update(read=True)
        else:
            held = held.with_for_update(key_share=True)
        db.session.execute(held)
    return is_live(site_id, subject_id)


def _subject(request: ConsentRequest, site: Site, digest: str | None) -> str:
    """The subject a request writes to, held until commit.

    By identifier: the subject it names now, or a new one where it names none (it never did, or it was erased or
    corrected away meanwhile). By subject id: that subject, unless it was erased: then `Unknown`, as for a subject
    that never was.
    """
    if request.subject_id is None:
        return _subject_for(site.id, request.identifier.kind, digest, known_new=request.new_subject)
    if not hold_subject(site.id, request.subject_id):
        raise Unknown("unknown_subject", f"site {site.key!r} has no such subject")
    return request.subject_id


def _subject_for(site_id: int, kind: str, digest: str, *, known_new: bool = False) -> str:
    """The subject an identifier points to, held; created with the link if there is none.

    Two writers creating a subject for the same new identifier collide on the link's unique key: the loser's
    transaction is retried whole and then finds the winner's subject.
    """
    if not known_new:
        while (subject_id := _owner(site_id, digest)) is not None:
            hold_subject(site_id, subject_id)
            # Read again holding the subject: an erasure or a correction may have taken the link meanwhile.
            if _owner(site_id, digest) == subject_id:
                return subject_id
    subject_id = new_subject_id()
    db.session.execute(insert(Subject), {"id": subject_id, "site_id": site_id})
    db.session.execute(
        insert(SubjectIdentifier), {"site_id": site_id, "subject_id": subject_id, "kind": kind, "digest": digest}
    )
    return subject_id


def _owner(site_id: int, digest: str) -> str | None:
    return db.session.scalar(
        select(SubjectIdentifier.subject_id).where(
            SubjectIdentifier.site_id == site_id, SubjectIdentifier.digest == digest
        )
    )


def _write_state(site_id, subject_id, event, decisions, by_gpc, lifetimes, now) -> None:
    rows = [
        {
            "site_id": site_id,
            "subject_id": subject_id,
            "purpose": purpose,
            "decision": decision,
            "action": Action.GPC.value if purpose in by_gpc else event.action,
            "source": event.source,
            "event_id": event.id,
            "notice_version": event.notice_version,
            "decided_at": now,
            "expires_at": now + (lifetimes.consent if decision == Decision.GRANTED else lifetimes.refusal),
            "given_by": event.given_by,
        }
        for purpose, decision in decisions.items()
    ]
    db.session.execute(_upsert_state(db.session.get_bind().dialect.name), rows)


@cache
def _upsert_state(dialect: str):
    """INSERT ... ON CONFLICT DO UPDATE for state rows; built once per dialect, so SQLAlchemy compiles it once."""
    statement = insert_or_merge(ConsentState, dialect)
    return statement.on_conflict_do_update(
        index_elements=["site_id", "subject_id", "purpose"],
        set_={name: statement.excluded[name] for name in STATE_FIELDS},
    )


STATE_FIELDS = ("decision", "action", "source", "event_id", "notice_version", "decided_at", "expires_at", "given_by")


def _resolve_notice(site: Site, version: int | None) -> NoticeVersion:
    if version is None:
        notice = notices.current_notice(site)
        if notice is None:
            raise Refused("no_notice", f"site {site.key!r} has no published notice; publish one first")
        return notice
    notice = notices.get_notice(site, version)
    if notice is None:
        raise Invalid(
            "unknown_notice_version",
            f"site {site.key!r} has no notice version {version}",
            {"notice_version": version},
        )
    return notice


def _refusable(content: dict, key: str) -> bool:
    return next((p["refusable"] for p in content["purposes"] if p["key"] == key), True)


def resolve_decisions(request: ConsentRequest, content: dict, mode: Mode) -> tuple[dict[str, str], set[str]]:
    """The decision set to record, and the purposes Global Privacy Control denied.

    Purposes and their rules come from the notice version the subject was shown.
    """
    purposes = {p["key"]: p for p in content["purposes"]}
    from_banner = request.source == Source.BANNER
    in_scope = {k: p for k, p in purposes.items() if not from_banner or p["channel"] == Channel.WEB}
    refusable = [k for k, p in in_scope.items() if p["refusable"]]
    given = dict(request.decisions)

    unknown = sorted(set(given) - set(purposes))
    if unknown:
        raise Invalid("unknown_purpose", f"unknown purpose: {', '.join(unknown)}", {"purposes": unknown})
    outside = sorted(set(given) - set(in_scope))
    if outside:
        raise Invalid(
            "purpose_not_in_banner",
            f"not collected by the banner: {', '.join(outside)}",
            {"purposes": outside},
        )
    not_refusable = sorted(k for k, v in given.items() if v == Decision.DENIED and not purposes[k]["refusable"])
    if not_refusable:
        raise Invalid(
            "not_refusable",
            f"strictly necessary purposes cannot be refused: {', '.join(not_refusable)}",
            {"purposes": not_refusable},
        )

    action = request.action
    gpc_purposes = {k for k, p in in_scope.items() if p["gpc"]}
    # Purposes that need their own affirmative act (PIPL Art. 23, 38, 39; email tracking): nothing else grants them.
    separate = {k for k, p in in_scope.items() if p.get("separate_consent", False)}
    if action in (Action.ACCEPT_ALL, Action.REJECT_ALL, Action.WITHDRAW):
        wanted = Decision.GRANTED if action == Action.ACCEPT_ALL else Decision.DENIED
        mismatched = sorted(k for k, v in given.items() if v != wanted and purposes[k]["refusable"])
        if mismatched:
            raise Invalid(
                "decisions_contradict_action",
                f"{action.value} cannot carry these decisions: {', '.join(mismatched)}",
                {"purposes": mismatched},
            )
        if wanted == Decision.GRANTED:
            # A grant in one click covers neither what needs a confirmed double opt-in nor what needs its own act.
            candidates = [k for k in refusable if not purposes[k]["double_opt_in"] and k not in separate]
        else:
            candidates = refusable
        decisions = {k: wanted.value for k in candidates}
    elif action == Action.GPC:
        if not request.evidence.gpc:
            raise Invalid("gpc_not_seen", "action gpc needs a Global Privacy Control signal (Sec-GPC: 1 or gpc: true)")
        decisions = {k: Decision.DENIED.value for k in refusable if k in gpc_purposes}
    elif action == Action.DEFAULT:
        decisions = {k: in_scope[k]["defaults"][mode.value] for k in refusable}
        mismatched = sorted(k for k, v in given.items() if decisions.get(k, v) != v)
        if mismatched:
            raise Invalid(
                "decisions_contradict_action",
                f"default decisions in {mode.value} differ for: {', '.join(mismatched)}",
                {"purposes": mismatched},
            )
    else:
        decisions = {k: Decision(v).value for k, v in given.items()}

    granted = {k for k, v in decisions.items() if v == Decision.GRANTED and purposes[k]["refusable"]}
    needs_opt_in = sorted(k for k in granted if purposes[k]["double_opt_in"])
    if needs_opt_in and action != Action.CONFIRM:
        raise Invalid(
            "double_opt_in_required",
            f"a grant of {', '.join(needs_opt_in)} counts only after a confirmed double opt-in",
            {"purposes": needs_opt_in},
        )
    bundled = sorted(k for k in granted & separate if len(granted) > 1 or action == Action.DEFAULT)
    if bundled:
        raise Invalid(
            "separate_consent_required",
            f"{', '.join(bundled)} can only be granted on its own, by a decision that grants nothing else",
            {"purposes": bundled},
        )

    by_gpc: set[str] = set()
    if request.evidence.gpc and mode == Mode.OPT_OUT:
        sold = sorted(gpc_purposes & granted)
        if sold and not from_banner:
            # CCPA regulations 7025(c)(3): the signal is an opt-out of sale and sharing, whatever else a server says.
            raise Invalid(
                "gpc_opt_out",
                f"Global Privacy Control refuses the sale or sharing of {', '.join(sold)}; nothing was recorded",
                {"purposes": sold},
            )
        # In the banner the signal denies every sale/sharing purpose, whatever else was chosen; it never grants.
        for key in sold:
            decisions[key] = Decision.DENIED.value
            by_gpc.add(key)
        if action == Action.GPC:
            by_gpc |= set(decisions)

    if not any(purposes[k]["refusable"] for k in decisions):
        raise Invalid("no_decisions", "the request decides nothing: give at least one refusable purpose")
    if from_banner:
        # What the banner cannot switch off is in effect with every decision, and recorded as such.
        decisions.update({k: Decision.GRANTED.value for k, p in in_scope.items() if not p["refusable"]})
    return decisions, by_gpc
