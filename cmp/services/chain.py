"""The per-site hash chain over consent events: hashing, appending and verification.

Each event's hash is SHA-256 over the RFC 8785 canonical JSON of its content fields, its
evidence digest and the previous event's hash. Evidence columns enter only through a salted
digest, so erasing them (and the salt) leaves every hash intact and the erased values unguessable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from sqlalchemy import func, select, text

from cmp.extensions import db
from cmp.models import ChainCheckpoint, ChainHead, ConsentEvent, LogTile, NoticeVersion, Site
from cmp.services import canonical, merkle, notes, tlog

GENESIS_HASH = "0" * 64
# Version 1 hashes linked each event to the previous one (`seq`, `prev_hash`); since the log became a Merkle tree,
# an event is hashed when it is written, before it has a place, and the tree orders it (version 2).
HASH_VERSION = 2


def canonical_json(value) -> bytes:
    """RFC 8785 (JCS) bytes of `value`: the fast encoder, proven byte-identical to the reference."""
    return canonical.dumps(value)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_time(value: datetime | None) -> str | None:
    """`value` as `TIME_FORMAT` writes it (microseconds, "Z"), the form every event hash covers.

    Verifying a log formats two times per event, and strftime is twice as slow as formatting the fields: for
    years from 1000 on, both write the same text. Earlier years keep strftime's own text, whose padding of the
    year differs between C libraries.
    """
    if value is None:
        return None
    if value.year < 1000:
        return value.strftime(TIME_FORMAT)
    return (
        f"{value.year}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
        f".{value.microsecond:06d}Z"
    )


def evidence_digest(salt: str | None, ip_prefix: str | None, user_agent: Mapping | None, page_url: str | None) -> str:
    return sha256_hex(
        canonical_json({"salt": salt, "ip_prefix": ip_prefix, "user_agent": user_agent, "page_url": page_url})
    )


def event_payload(event: ConsentEvent, site_key: str) -> dict:
    """The fields an event's hash covers, by name, in the order receipts show them.

    A version 1 event (one with a chain link) covers its place: `seq` and `prev_hash`. Fields added after version 1
    enter the payload only when set, so every earlier hash still verifies. A version 2 payload is built as one
    literal: verifying a log builds one per event.
    """
    payload = {
        "v": 2,
        "id": event.id,
        "site": site_key,
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
    }
    if event.prev_hash is not None:
        payload = _linked(payload, event)
    given_by = getattr(event, "given_by", None)
    if given_by is not None:
        payload["given_by"] = given_by
    return payload


def _linked(unlinked: dict, event: ConsentEvent) -> dict:
    """A version 1 payload from the version 2 one: its place after the site, its link after the content."""
    payload = {"v": 1, "id": unlinked["id"], "site": unlinked["site"], "seq": event.seq}
    payload.update((name, value) for name, value in unlinked.items() if name not in payload)
    payload["prev_hash"] = event.prev_hash
    return payload


def event_hash(event: ConsentEvent, site_key: str) -> str:
    return sha256_hex(canonical_json(event_payload(event, site_key)))


def start_chain(site: Site) -> None:
    db.session.add(ChainHead(site_id=site.id, seq=0, hash=GENESIS_HASH))


def seal(event: ConsentEvent, site: Site) -> None:
    """Hash `event` and queue it for the log: durable once committed, placed in the tree later by the sequencer.

    No site-wide lock is taken: writers for different subjects do not wait for each other.
    """
    event.site_id = site.id
    event.seq = None
    event.prev_hash = None
    event.hash = event_hash(event, site.key)
    event.entry = _next_entry(site.id)
    db.session.add(event)
    db.session.info.setdefault(SEALED, set()).add(site.id)


SEALED = "cmp.sealed_sites"


def sealed_sites() -> set[int]:
    """The sites this session queued events for since the last call (an inline sequencer integrates them)."""
    return db.session.info.pop(SEALED, set())


def _next_entry(site_id: int):
    """The SQL that numbers a pending event after every pending one: a sequence on PostgreSQL; on SQLite, whose
    writers take turns, one more than the site's last pending entry (only pending events are ever ordered by it).
    """
    if db.session.get_bind().dialect.name == "postgresql":
        return text("nextval('consent_event_entries')")
    return (
        select(func.coalesce(func.max(ConsentEvent.entry), 0) + 1)
        .where(ConsentEvent.site_id == site_id, ConsentEvent.seq.is_(None))
        .scalar_subquery()
    )


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    first_bad: str | None = None
    first_bad_seq: int | None = None
    reason: str | None = None
    # The root of the verified tree: kept outside the database (a witness's checkpoint), it proves the log was not
    # rewritten whole.
    head_hash: str | None = None
    # The signed checkpoint the tree was checked against: its size.
    checkpoint_size: int | None = None

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad": self.first_bad,
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
            "head_hash": self.head_hash,
            "checkpoint_size": self.checkpoint_size,
        }


class RootBuilder:
    """The RFC 9162 root of a tree fed one leaf hash at a time, in O(log n) memory: its complete subtrees."""

    def __init__(self):
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []

    @classmethod
    def resume(cls, size: int, subtrees: list[bytes]) -> RootBuilder:
        """A builder that has seen `size` leaves, from the hashes of the complete subtrees covering them, largest
        first (`merkle.subtree_hashes`); ValueError unless there is one per set bit of `size`."""
        heights = [height for height in range(size.bit_length() - 1, -1, -1) if size >> height & 1]
        if len(subtrees) != len(heights):
            raise ValueError(f"{len(subtrees)} subtree hashes given where {len(heights)} cover {size} leaves")
        builder = cls()
        builder.size = size
        builder._stack = list(zip(heights, subtrees, strict=True))
        return builder

    def add(self, leaf: bytes) -> None:
        self.size += 1
        height, node = 0, leaf
        while self._stack and self._stack[-1][0] == height:
            node = merkle.node_hash(self._stack.pop()[1], node)
            height += 1
        self._stack.append((height, node))

    def root(self) -> bytes:
        if not self._stack:
            return merkle.EMPTY_TREE_HASH
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = merkle.node_hash(left, node)
        return node


def check_events(
    events: Iterable,
    site_key: str,
    head_seq: int | None = None,
    head_hash: str | None = None,
    notice_hashes: Mapping[int, str] | None = None,
    start: tuple[int, str | None] = (0, GENESIS_HASH),
    removed: Iterable[bytes] | None = None,
    checkpoint: tuple[int, str] | None = None,
    stored: Iterable[bytes] | None = None,
) -> Verification:
    """Walk integrated events (objects or rows with the event's fields) in log order; report the first fault.

    Catches an edited event (its hash), a deleted or inserted one (a gap in the positions, a broken link between
    version 1 events, or a tree whose root no longer matches), reordering (links and the root), edited evidence
    (its digest), events removed from or added past the end (the head, when given), an event whose notice is not
    the one it was shown (`notice_hashes`, version -> hash of the stored content, when given), and a tree that is
    not the one the log signed (`checkpoint`: the size and root hex of a checkpoint whose signature the caller
    verified).

    `start` is the (seq, hash) the first event follows: the genesis, or a retention checkpoint. The tree is checked
    only when every leaf is known: `removed` gives the stored leaf hashes of the positions a purge removed.
    `stored`, the leaf hashes the tree stores from the first event on, names the first event that is not the one
    stored at its place (changed or moved) where the root alone could only say that one is.
    """
    expected_seq, prev_hash, checked = start[0] + 1, start[1], 0
    tree = RootBuilder() if removed is not None or start[0] == 0 else None
    if tree is not None and removed is not None:
        for leaf in removed:
            tree.add(leaf)
        if tree.size != start[0]:
            return Verification(
                False, 0, None, tree.size + 1, f"the tree holds {tree.size} removed leaves where {start[0]} were purged"
            )
    signed_root = None
    stored = iter(stored) if stored is not None else None
    for event in events:
        checked += 1
        reason = _first_fault(event, site_key, expected_seq, prev_hash, head_seq) or _notice_fault(event, notice_hashes)
        leaf = merkle.leaf_hash(bytes.fromhex(event.hash))
        if not reason and stored is not None and next(stored, None) != leaf:
            reason = "the event is not the one the tree holds at its place (it was changed or moved)"
        if reason:
            return Verification(False, checked, event.id, event.seq, reason)
        expected_seq, prev_hash = event.seq + 1, event.hash
        if tree is not None:
            tree.add(leaf)
            if checkpoint is not None and tree.size == checkpoint[0]:
                signed_root = tree.root().hex()
    if head_seq is not None and head_seq != expected_seq - 1:
        return Verification(
            False,
            checked,
            None,
            expected_seq,
            f"the log ends at {expected_seq - 1} but its head is at {head_seq} (events were removed from the end)",
        )
    root = tree.root().hex() if tree is not None else None
    if root is not None and head_hash is not None and head_seq and root != head_hash:
        return Verification(
            False, checked, None, None, "the tree's root is not the one its head records (events were changed)"
        )
    if checkpoint is not None and tree is not None:
        if checkpoint[0] > tree.size:
            return Verification(
                False,
                checked,
                None,
                tree.size + 1,
                f"the log signed a checkpoint of {checkpoint[0]} events but holds {tree.size} "
                "(events were removed from the end)",
            )
        if checkpoint[0] == 0:
            signed_root = merkle.EMPTY_TREE_HASH.hex()
        if signed_root != checkpoint[1]:
            return Verification(
                False,
                checked,
                None,
                None,
                f"the tree of {checkpoint[0]} events is not the one the log signed (the log was rewritten)",
            )
    return Verification(True, checked, head_hash=root, checkpoint_size=checkpoint[0] if checkpoint else None)


def _first_fault(event, site_key: str, expected_seq: int, prev_hash: str, head_seq: int | None) -> str | None:
    if head_seq is not None and event.seq > head_seq:
        return f"event {event.seq} lies beyond the chain head at {head_seq} (added outside the chain)"
    if event.seq != expected_seq:
        return f"sequence gap: expected {expected_seq}, found {event.seq} (an event was deleted or inserted)"
    if event.prev_hash is not None and event.prev_hash != prev_hash:
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
    """Verify one site's log from the database, streaming in batches: every integrated event, the notices they
    refer to, and the tree against the latest checkpoint, whose signature is checked with the log's key.
    """
    head = db.session.get(ChainHead, site.id)
    start = checkpoint(site.id)
    signed = tlog.latest_checkpoint(site.id)
    stated = None
    if signed is not None:
        try:
            note = notes.open_note(signed.note, [tlog.log_key().verifier])
            stated_checkpoint = notes.Checkpoint.parse(note.text)
        except notes.NoteError as exc:
            return Verification(
                False, 0, None, None, f"the latest checkpoint does not verify under the log's key: {exc}"
            )
        stated = (stated_checkpoint.size, stated_checkpoint.root.hex())
    # Each notice's hash is recomputed from its stored content: an edited text no longer matches the events.
    notice_hashes = {
        version: sha256_hex(canonical_json(content))
        for version, content in db.session.execute(
            select(NoticeVersion.version, NoticeVersion.content).where(NoticeVersion.site_id == site.id)
        )
    }
    # Plain rows rather than ORM objects: memory stays flat however long the log.
    events = db.session.execute(
        select(ConsentEvent.__table__)
        .where(ConsentEvent.site_id == site.id, ConsentEvent.seq.is_not(None))
        .order_by(ConsentEvent.seq)
        .execution_options(yield_per=batch)
    )
    return check_events(
        events,
        site.key,
        head.seq if head else 0,
        head.hash if head else GENESIS_HASH,
        notice_hashes,
        start,
        removed=removed_leaves(site.id, start[0]),
        checkpoint=stated,
        stored=_stored_leaves(site.id, start[0]),
    )


def _stored_leaves(site_id: int, first: int) -> Iterator[bytes]:
    """The leaf hashes the site's tree stores from position `first` + 1 on, read a tile at a time."""
    index = first // merkle.TILE_WIDTH
    skip = first % merkle.TILE_WIDTH
    while True:
        data = db.session.scalar(
            select(LogTile.hashes).where(LogTile.site_id == site_id, LogTile.level == 0, LogTile.idx == index)
        )
        if data is None:
            return
        data = bytes(data)
        for offset in range(skip * merkle.HASH_SIZE, len(data), merkle.HASH_SIZE):
            yield data[offset : offset + merkle.HASH_SIZE]
        if len(data) < merkle.TILE_WIDTH * merkle.HASH_SIZE:
            return
        index, skip = index + 1, 0


def removed_leaves(site_id: int, count: int) -> list[bytes]:
    """The stored leaf hashes of the first `count` positions, whose events a purge removed: the tree keeps them."""
    return list(islice(_stored_leaves(site_id, 0), count))
