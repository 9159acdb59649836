"""The per-site hash chain over consent events: hashing, appending and verification.

Each event's hash is SHA-256 over the RFC 8785 canonical JSON of its content fields, its
evidence digest and the previous event's hash. Evidence columns enter only through a salted
digest, so erasing them (and the salt) leaves every hash intact and the erased values unguessable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import rfc8785
from sqlalchemy import select, update

from cmp.extensions import db
from cmp.models import ChainCheckpoint, ChainHead, ConsentEvent, NoticeVersion, Site

GENESIS_HASH = "0" * 64
HASH_VERSION = 1


def canonical_json(value) -> bytes:
    return rfc8785.dumps(value)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def format_time(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def evidence_digest(salt: str | None, ip_prefix: str | None, user_agent: Mapping | None, page_url: str | None) -> str:
    return sha256_hex(
        canonical_json({"salt": salt, "ip_prefix": ip_prefix, "user_agent": user_agent, "page_url": page_url})
    )


def event_payload(event: ConsentEvent, site_key: str) -> dict:
    """The fields an event's hash covers, by name.

    Fields added after version 1 enter the payload only when set, so every earlier hash still verifies.
    """
    payload = {
        "v": HASH_VERSION,
        "id": event.id,
        "site": site_key,
        "seq": event.seq,
        "subject_id": event.subject_id,
        "action": event.action,
        "source": event.source,
        "decisions": dict(event.decisions),
        "notice_version": event.notice_version,
        "notice_hash": event.notice_hash,
        "locale": event.locale,
        "mode": event.mode,
        "country": event.country,
        "gpc": bool(event.gpc),
        "received_at": format_time(event.received_at),
        "expires_at": format_time(event.expires_at),
        "evidence_digest": event.evidence_digest,
        "prev_hash": event.prev_hash,
    }
    if getattr(event, "given_by", None) is not None:
        payload["given_by"] = event.given_by
    return payload


def event_hash(event: ConsentEvent, site_key: str) -> str:
    return sha256_hex(canonical_json(event_payload(event, site_key)))


def start_chain(site: Site) -> None:
    db.session.add(ChainHead(site_id=site.id, seq=0, hash=GENESIS_HASH))


def next_link(site: Site) -> tuple[int, str]:
    """Take the next place in the site's chain: its sequence number and the previous hash.

    This UPDATE is the first write of the transaction: PostgreSQL holds the head's row lock and
    SQLite its write lock until commit, so concurrent writers queue here and the chain never forks.
    """
    seq, prev_hash = db.session.execute(
        update(ChainHead)
        .where(ChainHead.site_id == site.id)
        .values(seq=ChainHead.seq + 1)
        .returning(ChainHead.seq, ChainHead.hash)
    ).one()
    return seq, prev_hash


def lock(site: Site) -> None:
    """Queue on the site's chain head as `next_link` does, without taking a place in the chain.

    For writes that append no event but change which subject an identifier names (links): they then never
    interleave with a consent write or an erasure deciding the same.
    """
    db.session.execute(update(ChainHead).where(ChainHead.site_id == site.id).values(seq=ChainHead.seq))


def seal(event: ConsentEvent, site: Site, seq: int, prev_hash: str) -> None:
    """Link `event` at `seq` after `prev_hash`, hash it, and move the head to it."""
    event.site_id = site.id
    event.seq = seq
    event.prev_hash = prev_hash
    event.hash = event_hash(event, site.key)
    db.session.add(event)
    db.session.execute(update(ChainHead).where(ChainHead.site_id == site.id).values(hash=event.hash))


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    first_bad: str | None = None
    first_bad_seq: int | None = None
    reason: str | None = None
    # The last verified hash: kept outside the database, it proves the log was not rewritten whole.
    head_hash: str | None = None

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad": self.first_bad,
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
            "head_hash": self.head_hash,
        }


def check_events(
    events: Iterable,
    site_key: str,
    head_seq: int | None = None,
    head_hash: str | None = None,
    notice_hashes: Mapping[int, str] | None = None,
    start: tuple[int, str] = (0, GENESIS_HASH),
) -> Verification:
    """Walk events (objects or rows with the event's fields) in chain order; report the first that does not match.

    Catches an edited event (its hash), a deleted or inserted one (a gap or a broken link),
    reordering (links and hashes), edited evidence (its digest), events removed from or added
    past the end (the head, when given), and an event whose notice is not the one it was shown
    (`notice_hashes`, version -> hash of the stored content, when given).

    `start` is the (seq, hash) the first event follows: the genesis, or a retention checkpoint.
    """
    expected_seq, prev_hash, checked = start[0] + 1, start[1], 0
    for event in events:
        checked += 1
        reason = _first_fault(event, site_key, expected_seq, prev_hash, head_seq) or _notice_fault(event, notice_hashes)
        if reason:
            return Verification(False, checked, event.id, event.seq, reason)
        expected_seq, prev_hash = event.seq + 1, event.hash
    if head_seq is not None and (head_seq != expected_seq - 1 or head_hash != prev_hash):
        return Verification(
            False,
            checked,
            None,
            expected_seq,
            f"the log ends at {expected_seq - 1} but the chain head is at {head_seq} "
            "(events were removed from the end)",
        )
    return Verification(True, checked, head_hash=prev_hash)


def _first_fault(event, site_key: str, expected_seq: int, prev_hash: str, head_seq: int | None) -> str | None:
    if head_seq is not None and event.seq > head_seq:
        return f"event {event.seq} lies beyond the chain head at {head_seq} (added outside the chain)"
    if event.seq != expected_seq:
        return f"sequence gap: expected {expected_seq}, found {event.seq} (an event was deleted or inserted)"
    if event.prev_hash != prev_hash:
        return "previous-hash link broken (an event was deleted, inserted or reordered)"
    if event_hash(event, site_key) != event.hash:
        return "hash does not match the event's content (the event was altered)"
    if event.evidence_salt is None:
        if any(getattr(event, name) is not None for name in ("ip_prefix", "user_agent", "page_url")):
            return "evidence present without its salt (evidence was altered)"
    elif (
        evidence_digest(event.evidence_salt, event.ip_prefix, event.user_agent, event.page_url) != event.evidence_digest
    ):
        return "evidence does not match its digest (evidence was altered)"
    return None


def _notice_fault(event, notice_hashes: Mapping[int, str] | None) -> str | None:
    if notice_hashes is None or event.notice_version is None:
        return None
    if notice_hashes.get(event.notice_version) != event.notice_hash:
        return f"notice version {event.notice_version} is not the one this event was shown (the notice was altered)"
    return None


def checkpoint(site_id: int) -> tuple[int, str]:
    """The (seq, hash) a site's remaining chain follows: its latest retention checkpoint, or the genesis."""
    row = db.session.execute(
        select(ChainCheckpoint.seq, ChainCheckpoint.hash)
        .where(ChainCheckpoint.site_id == site_id)
        .order_by(ChainCheckpoint.seq.desc())
        .limit(1)
    ).first()
    return (row.seq, row.hash) if row else (0, GENESIS_HASH)


def verify_site(site: Site, batch: int = 1000) -> Verification:
    """Verify one site's chain from the database, streaming in batches, and the notices its events refer to."""
    head = db.session.get(ChainHead, site.id)
    start = checkpoint(site.id)
    # Each notice's hash is recomputed from its stored content: an edited text no longer matches the events.
    notice_hashes = {
        version: sha256_hex(canonical_json(content))
        for version, content in db.session.execute(
            select(NoticeVersion.version, NoticeVersion.content).where(NoticeVersion.site_id == site.id)
        )
    }
    # Plain rows rather than ORM objects: memory stays flat however long the chain.
    events = db.session.execute(
        select(ConsentEvent.__table__)
        .where(ConsentEvent.site_id == site.id)
        .order_by(ConsentEvent.seq)
        .execution_options(yield_per=batch)
    )
    return check_events(
        events, site.key, head.seq if head else 0, head.hash if head else GENESIS_HASH, notice_hashes, start
    )
