"""Each site's consent log as a transparency log: the sequencer, signed checkpoints, proofs and cosignatures.

Writes queue their events durably, hashed but without a place (`chain.seal`); the sequencer integrates them in
batches, in the order they took effect, into the site's RFC 9162 Merkle tree, stored in C2SP tlog-tiles, and
signs a C2SP checkpoint of every tree it makes. One sequencer runs per site at a time, whichever process holds the
site's lock (a PostgreSQL advisory lock; on SQLite the file's write lock), and each integration is one
transaction: a process killed at any point leaves either the whole batch or none of it, and the head moves only
by compare-and-set, so the tree never forks.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, cached_property

from flask import current_app
from sqlalchemy import ScalarSelect, Select, func, select, text, tuple_, update

from cmp.errors import Invalid, Refused, Unknown
from cmp.extensions import db, insert_or_merge
from cmp.models import ChainHead, ConsentEvent, LogCheckpoint, LogCosignature, LogTile, LogWitness, Site
from cmp.models.types import utcnow
from cmp.services import merkle, notes, rollups

log = logging.getLogger(__name__)

# How many pending events one integration takes at most; the rest wait for the next round.
BATCH = 4096
# The first key of the sequencer's advisory lock on PostgreSQL ("cmp" in ASCII); the second is the site id.
LOCK_CLASS = 0x636D70


@dataclass(frozen=True)
class LogKey:
    """The log's Ed25519 signing key, as a C2SP signed-note signer, and what anyone needs to check its signatures."""

    signer: notes.Signer

    @classmethod
    def load(cls, private_key: str) -> LogKey:
        try:
            return cls(notes.Signer.from_private(private_key))
        except notes.NoteError as exc:
            raise ValueError(f"CMP_LOG_KEY is not a signed-note private key: {exc}") from None

    @property
    def name(self) -> str:
        return self.signer.name

    @cached_property
    def verifier_key(self) -> str:
        """The public key in the signed-note verifier format: `name+keyhash+base64`."""
        return self.signer.verifier_key

    @cached_property
    def verifier(self) -> notes.Verifier:
        return notes.Verifier.from_key(self.verifier_key)

    def origin(self, site_key: str) -> str:
        """A site's log origin: the first line of its checkpoints, unique to the site under this log key."""
        return f"{self.name}/{site_key}"


def log_key() -> LogKey:
    return current_app.extensions["cmp.log_key"]


# --- the sequencer ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Integration:
    site_id: int
    integrated: int  # events placed in the tree by this round
    checkpoint: LogCheckpoint


def integrate(site: Site, key: LogKey | None = None, *, batch: int = BATCH, wait: bool = False) -> Integration | None:
    """Integrate up to `batch` of the site's pending events and sign a checkpoint of the new tree, in one transaction.

    Returns None when there is nothing to do, or when another process is integrating this site and `wait` is not
    set; with `wait`, it queues behind that process and then integrates what is still pending. A site whose tree has
    no checkpoint yet (its first events, or a tree planted by the migration) gets one even with nothing pending.
    """
    key = key or log_key()
    try:
        if not _hold_sequencer(site.id, wait):
            db.session.rollback()
            return None
        size, root = _head(site.id)
        pending = db.session.execute(
            select(ConsentEvent.id, ConsentEvent.hash)
            .where(ConsentEvent.site_id == site.id, ConsentEvent.seq.is_(None))
            .order_by(ConsentEvent.entry, ConsentEvent.id)
            .limit(batch)
        ).all()
        latest = latest_checkpoint(site.id)
        if not pending and (size == 0 or (latest is not None and latest.size == size)):
            db.session.rollback()
            return None
        if pending:
            grown, root = _grow(site.id, size, pending)
            _refresh_statistics(size, grown)
            size = grown
        checkpoint = _sign(site, key, size, root)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return Integration(site.id, len(pending), checkpoint)


def integrate_pending(key: LogKey | None = None, *, batch: int = BATCH) -> list[Integration]:
    """One round over every site with pending events (or no checkpoint of its tree yet)."""
    key = key or log_key()
    rounds = []
    for site in _sites_to_integrate():
        done = integrate(site, key, batch=batch)
        if done is not None:
            rounds.append(done)
    return rounds


def _sites_to_integrate() -> list[Site]:
    pending = select(ConsentEvent.site_id).where(ConsentEvent.seq.is_(None)).distinct()
    signed = select(LogCheckpoint.size).where(
        LogCheckpoint.site_id == ChainHead.site_id, LogCheckpoint.size == ChainHead.seq
    )
    unsigned = select(ChainHead.site_id).where(ChainHead.seq > 0, ~signed.exists())
    ids = set(db.session.scalars(pending)) | set(db.session.scalars(unsigned))
    db.session.rollback()
    return [db.session.get(Site, site_id) for site_id in sorted(ids)]


def _hold_sequencer(site_id: int, wait: bool) -> bool:
    """Take the site's sequencer lock for this transaction: wait for it, or answer False when another process has it."""
    if db.session.get_bind().dialect.name == "postgresql":
        if wait:
            db.session.execute(select(func.pg_advisory_xact_lock(LOCK_CLASS, site_id)))
            return True
        return bool(db.session.scalar(select(func.pg_try_advisory_xact_lock(LOCK_CLASS, site_id))))
    # SQLite: the first write takes the file's write lock; any other integration waits for it.
    db.session.execute(update(ChainHead).where(ChainHead.site_id == site_id).values(seq=ChainHead.seq))
    return True


def _head(site_id: int) -> tuple[int, bytes]:
    row = db.session.execute(
        select(ChainHead.seq, ChainHead.hash).where(ChainHead.site_id == site_id).with_for_update()
    ).one()
    return row.seq, (bytes.fromhex(row.hash) if row.seq else merkle.EMPTY_TREE_HASH)


def _grow(site_id: int, size: int, pending: Sequence) -> tuple[int, bytes]:
    """Place `pending` (id, hash) after position `size`: seq, rollups, tiles and head, all in the caller's
    transaction."""
    edge = read_tiles(site_id, merkle.edge_tiles(size))
    leaves = [merkle.leaf_hash(bytes.fromhex(row.hash)) for row in pending]
    written, root = merkle.append(size, edge, leaves)
    events = ConsentEvent.__table__
    # Places follow the order the events were read in (entry, then id), numbered in one statement. On the table:
    # the ORM refuses changes to the log, and a pending event's place is the one field written after its insert.
    ranked = (
        select(events.c.id, (func.row_number().over(order_by=(events.c.entry, events.c.id)) + size).label("place"))
        .where(events.c.id.in_([row.id for row in pending]))
        .subquery()
    )
    placed = db.session.execute(
        update(events).where(events.c.id == ranked.c.id, events.c.seq.is_(None)).values(seq=ranked.c.place)
    )
    if placed.rowcount != len(pending):
        raise RuntimeError(f"site {site_id}: {len(pending) - placed.rowcount} events were placed by another sequencer")
    rollups.add_placed(site_id, size + 1, size + len(pending))
    _write_tiles(site_id, written)
    new_size = size + len(pending)
    moved = db.session.execute(
        update(ChainHead)
        .where(ChainHead.site_id == site_id, ChainHead.seq == size)
        .values(seq=new_size, hash=root.hex())
    )
    if moved.rowcount != 1:
        raise RuntimeError(f"site {site_id}: the log head moved during integration")
    return new_size, root


def _refresh_statistics(before: int, after: int) -> None:
    """On SQLite, refresh the log table's planner statistics each time a site's tree doubles.

    PostgreSQL's autovacuum keeps them; SQLite has none unless asked. Without them its planner reads a site's
    events through the (site_id, seq) index and sorts the whole log for an export in id order, where a scan of the
    primary key needs no sort. One ANALYZE per doubling keeps the total under twice the cost of the last.
    """
    if db.session.get_bind().dialect.name == "sqlite" and before.bit_length() < after.bit_length():
        db.session.execute(text("ANALYZE consent_events"))


def _write_tiles(site_id: int, tiles: Mapping[tuple[int, int], bytes]) -> None:
    if tiles:
        db.session.execute(
            _upsert_tile(db.session.get_bind().dialect.name),
            [{"site_id": site_id, "level": level, "idx": idx, "hashes": data} for (level, idx), data in tiles.items()],
        )


@cache
def _upsert_tile(dialect: str):
    statement = insert_or_merge(LogTile, dialect)
    return statement.on_conflict_do_update(
        index_elements=["site_id", "level", "idx"], set_={"hashes": statement.excluded.hashes}
    )


def _sign(site: Site, key: LogKey, size: int, root: bytes) -> LogCheckpoint:
    body = notes.Checkpoint(key.origin(site.key), size, root).body()
    checkpoint = LogCheckpoint(
        site_id=site.id, size=size, root=root.hex(), note=notes.sign_note(body, key.signer), created_at=utcnow()
    )
    db.session.add(checkpoint)
    db.session.flush()
    return checkpoint


# --- reading the tree --------------------------------------------------------------------------------------------


def read_tiles(site_id: int, keys: Collection[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The site's tiles at these (level, index) keys, in one statement; a key with no tile is left out."""
    if not keys:
        return {}
    return {(row.level, row.idx): bytes(row.hashes) for row in db.session.execute(_tiles(site_id, keys))}


def _tiles(site_id: int, keys: Collection[tuple[int, int]]) -> Select:
    return select(LogTile.level, LogTile.idx, LogTile.hashes).where(
        LogTile.site_id == site_id, tuple_(LogTile.level, LogTile.idx).in_(list(keys))
    )


def tile_reader(site_id: int) -> merkle.TileReader:
    return lambda keys: read_tiles(site_id, keys)


def latest_checkpoint(site_id: int) -> LogCheckpoint | None:
    return db.session.scalars(
        select(LogCheckpoint).where(LogCheckpoint.site_id == site_id).order_by(LogCheckpoint.size.desc()).limit(1)
    ).first()


def checkpoint_of_size(site_id: int, size: int) -> LogCheckpoint:
    checkpoint = db.session.scalars(
        select(LogCheckpoint).where(LogCheckpoint.site_id == site_id, LogCheckpoint.size == size)
    ).first()
    if checkpoint is None:
        raise _no_checkpoint(size)
    return checkpoint


def _no_checkpoint(size: int) -> Unknown:
    return Unknown("unknown_checkpoint", f"this log has no checkpoint of size {size}")


@dataclass(frozen=True)
class CosignedCheckpoint:
    """A signed checkpoint with its witnesses' cosignature lines, in the order they came."""

    checkpoint: LogCheckpoint
    cosignatures: tuple[str, ...]

    @property
    def note(self) -> str:
        """The checkpoint's note with every witness's cosignature line added."""
        return (
            notes.add_signatures(self.checkpoint.note, *self.cosignatures)
            if self.cosignatures
            else self.checkpoint.note
        )


def latest_cosigned(site_id: int) -> CosignedCheckpoint | None:
    """`latest_checkpoint` with its cosignatures, in one statement."""
    latest = select(func.max(LogCheckpoint.size)).where(LogCheckpoint.site_id == site_id).scalar_subquery()
    return _cosigned(site_id, latest)


def cosigned_checkpoint_of_size(site_id: int, size: int) -> CosignedCheckpoint:
    """`checkpoint_of_size` with its cosignatures, in one statement."""
    signed = _cosigned(site_id, size)
    if signed is None:
        raise _no_checkpoint(size)
    return signed


def _cosigned(site_id: int, size: int | ScalarSelect[int]) -> CosignedCheckpoint | None:
    rows = db.session.execute(
        select(LogCheckpoint, LogCosignature.line)
        .outerjoin(LogCosignature, LogCosignature.checkpoint_id == LogCheckpoint.id)
        .where(LogCheckpoint.site_id == site_id, LogCheckpoint.size == size)
        .order_by(LogCosignature.id)
    ).all()
    if not rows:
        return None
    return CosignedCheckpoint(rows[0][0], tuple(line for _, line in rows if line is not None))


@dataclass(frozen=True)
class InclusionProof:
    index: int  # the leaf index: the event's seq minus one
    size: int
    leaf_hash: bytes
    hashes: list[bytes]
    signed: CosignedCheckpoint
    # The event at this place was removed (retention): its content is gone, its leaf stays in the tree.
    removed: bool = False

    def as_dict(self) -> dict:
        return {
            "index": self.index,
            "tree_size": self.size,
            "leaf_hash": b64(self.leaf_hash),
            "hashes": [b64(h) for h in self.hashes],
            "checkpoint": self.signed.note,
            "removed": self.removed,
        }


def inclusion(site: Site, event: ConsentEvent) -> InclusionProof | None:
    """The proof that `event` is in the site's latest checkpointed tree; None while it is pending."""
    if event.seq is None:
        return None
    signed = latest_cosigned(site.id)
    if signed is None or event.seq > signed.checkpoint.size:
        return None
    return _prove(site.id, event.seq - 1, signed)


def inclusion_at(site: Site, index: int, size: int | None = None) -> InclusionProof:
    """The proof for leaf `index` in the checkpointed tree of `size` (default the latest); `Unknown` past its end.

    Two statements: the checkpoint with its cosignatures, then the tiles with whether an event holds the leaf.
    """
    signed = latest_cosigned(site.id) if size is None else cosigned_checkpoint_of_size(site.id, size)
    if signed is None or index >= signed.checkpoint.size:
        raise Unknown("unknown_leaf", f"the tree has no leaf {index}")
    return _prove(site.id, index, signed)


def _prove(site_id: int, index: int, signed: CosignedCheckpoint) -> InclusionProof:
    leaf_tile = (0, index // merkle.TILE_WIDTH)
    held = select(ConsentEvent.id).where(ConsentEvent.site_id == site_id, ConsentEvent.seq == index + 1).exists()
    tiles: dict[tuple[int, int], bytes] = {}
    present = False

    def read(keys):
        # The proof's one read also fetches the tile holding the leaf itself, and whether an event still holds the
        # leaf (retention removes events, never their leaves): one statement for all three. It runs once the leaf is
        # known to be in the tree, so `index + 1` is a place the log can hold (a BIGINT).
        nonlocal present
        for row in db.session.execute(_tiles(site_id, {*keys, leaf_tile}).add_columns(held.label("held"))):
            tiles[row.level, row.idx] = bytes(row.hashes)
            present = bool(row.held)
        return tiles

    hashes = merkle.inclusion_proof(index, signed.checkpoint.size, read)
    offset = (index % merkle.TILE_WIDTH) * merkle.HASH_SIZE
    leaf = tiles[leaf_tile][offset : offset + merkle.HASH_SIZE]
    return InclusionProof(index, signed.checkpoint.size, leaf, hashes, signed, removed=not present)


def consistency(site: Site, old: int, new: int) -> list[bytes]:
    """The RFC 9162 consistency proof between the site's trees of sizes `old` and `new` (both checkpointed)."""
    head = db.session.get(ChainHead, site.id)
    if not 0 < old <= new or head is None or new > head.seq:
        raise Invalid(
            "bad_tree_sizes",
            f"sizes must satisfy 0 < old <= new <= {head.seq if head else 0}",
            {"old": old, "new": new},
        )
    return merkle.consistency_proof(old, new, tile_reader(site.id))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- signed statements of entries ---------------------------------------------------------------------------------


def entry_statement(
    site: Site, event_id: str, event_hash: str, received_at: datetime, key: LogKey | None = None
) -> str:
    """The log's signed promise, given when a write is acknowledged, that this entry will be in the log.

    A signed note (like Rekor's signed entry timestamp) over the origin, the event's id, hash and receive time:
    whoever holds it can hold the log to it, and a receipt shows it until the entry is integrated.
    """
    key = key or log_key()
    body = notes.entry_statement(key.origin(site.key), event_id, bytes.fromhex(event_hash), received_at)
    return notes.sign_note(body, key.signer)


# --- witnesses -----------------------------------------------------------------------------------------------------


def add_witness(site: Site, verifier_key: str) -> LogWitness:
    try:
        verifier = notes.CosignatureVerifier.from_key(verifier_key)
    except notes.NoteError as exc:
        raise Invalid("bad_witness_key", f"not a cosignature verifier key: {exc}", {"key": "malformed"}) from None
    witness = LogWitness(site_id=site.id, name=verifier.name, key=verifier_key, created_at=utcnow())
    db.session.add(witness)
    return witness


def witnesses(site_id: int) -> list[LogWitness]:
    return list(db.session.scalars(select(LogWitness).where(LogWitness.site_id == site_id).order_by(LogWitness.id)))


def accept_cosignature(site: Site, size: int, line: str) -> tuple[LogCosignature, LogWitness]:
    """Keep a witness's cosignature of the site's checkpoint of `size`, in its own transaction.

    It must verify under a witness key the site's operator registered; a repeat from the same witness keeps the
    first. `Refused` otherwise, with nothing stored.
    """
    try:
        checkpoint = checkpoint_of_size(site.id, size)
        body = notes.parse_note(checkpoint.note).text
        for witness in witnesses(site.id):
            try:
                timestamp = notes.verify_cosignature(body, line, notes.CosignatureVerifier.from_key(witness.key))
            except notes.NoteError:
                continue
            cosignature = db.session.scalars(
                select(LogCosignature).where(
                    LogCosignature.checkpoint_id == checkpoint.id, LogCosignature.witness_id == witness.id
                )
            ).first()
            if cosignature is None:
                cosignature = LogCosignature(
                    checkpoint_id=checkpoint.id,
                    witness_id=witness.id,
                    line=line,
                    timestamp=timestamp,
                    created_at=utcnow(),
                )
                db.session.add(cosignature)
                db.session.commit()
            return cosignature, witness
        raise Refused("unknown_witness", "the cosignature does not verify under any witness key this site accepts")
    except BaseException:
        db.session.rollback()
        raise


# --- what auditors see ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cosigned:
    witness: str
    timestamp: datetime


@dataclass(frozen=True)
class LogStatus:
    """A site's log at a glance: its latest checkpoint and who cosigned it, and what is still to integrate."""

    checkpoint: LogCheckpoint | None
    cosignatures: list[Cosigned]
    pending: int
    # How long the oldest pending event has waited for the sequencer (the integration lag now); None if none waits.
    oldest_pending_seconds: float | None


def status(site: Site) -> LogStatus:
    checkpoint = latest_checkpoint(site.id)
    cosignatures = []
    if checkpoint is not None:
        rows = db.session.execute(
            select(LogWitness.name, LogCosignature.timestamp)
            .join(LogWitness, LogWitness.id == LogCosignature.witness_id)
            .where(LogCosignature.checkpoint_id == checkpoint.id)
            .order_by(LogWitness.name)
        )
        cosignatures = [Cosigned(name, datetime.fromtimestamp(timestamp, UTC)) for name, timestamp in rows]
    pending, oldest = db.session.execute(
        select(func.count(), func.min(ConsentEvent.received_at)).where(
            ConsentEvent.site_id == site.id, ConsentEvent.seq.is_(None)
        )
    ).one()
    waited = None
    if oldest is not None:
        # SQLite hands back the aggregate without the column's type: read it as the model stores it.
        oldest = oldest if isinstance(oldest, datetime) else datetime.fromisoformat(str(oldest))
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
        waited = max(0.0, (utcnow() - oldest).total_seconds())
    return LogStatus(checkpoint, cosignatures, pending, waited)
