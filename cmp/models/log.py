"""The consent log as a transparency log: its tree's tiles, its signed checkpoints, and the witnesses' cosignatures."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cmp.extensions import db
from cmp.models.types import UTCDateTime, utcnow


class LogTile(db.Model):
    """Up to 256 consecutive hashes of one level of a site's Merkle tree (the C2SP tlog-tiles layout).

    A tile at tile level L and index N holds the hashes of tree level 8L with indices 256N and up; a partial tile
    is replaced by a wider one as the tree grows, and a hash once stored never changes. Level 0 holds the leaf
    hashes, kept when retention or erasure removes an event's content, so every position stays provable.
    """

    __tablename__ = "log_tiles"

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hashes: Mapped[bytes] = mapped_column(LargeBinary)


class LogCheckpoint(db.Model):
    """A signed checkpoint of a site's log (C2SP tlog-checkpoint in a signed note); every one is kept."""

    __tablename__ = "log_checkpoints"
    __table_args__ = (UniqueConstraint("site_id", "size"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    # The tree's root hash, hex.
    root: Mapped[str] = mapped_column(String(64))
    # The signed note as served: checkpoint body, blank line, the log's signature line.
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LogWitness(db.Model):
    """A witness a site's operator accepts cosignatures from, by its verifier key (tlog-cosignature)."""

    __tablename__ = "log_witnesses"
    __table_args__ = (UniqueConstraint("site_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LogCosignature(db.Model):
    """A witness's cosignature of one checkpoint: it checked the checkpoint consistent with all it saw before."""

    __tablename__ = "log_cosignatures"
    __table_args__ = (UniqueConstraint("checkpoint_id", "witness_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("log_checkpoints.id"), index=True)
    witness_id: Mapped[int] = mapped_column(ForeignKey("log_witnesses.id"))
    # The signature line to append to the checkpoint's note, and the time the witness signed (seconds).
    line: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
