"""The consent log as a transparency log: its tree's tiles, its signed checkpoints, the witnesses' cosignatures,
the daily counts the sequencer keeps of it, and the results of its full verifications."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cmp.extensions import db
from cmp.models.types import UTCDateTime, key_string, utcnow


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


class DecisionRollup(db.Model):
    """How many banner decisions a site's log holds for one UTC day, action, country and mode.

    Kept by the sequencer in the transaction that places the events, so it counts exactly the integrated events;
    the dashboard reads these rows instead of the log. `country` is '' where none was determined.
    """

    __tablename__ = "decision_rollups"

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    action: Mapped[str] = mapped_column(String(16), primary_key=True)
    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16), primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger)


class PurposeRollup(db.Model):
    """How many of a site's banner decisions of one UTC day granted, or denied, one purpose."""

    __tablename__ = "purpose_rollups"

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    purpose: Mapped[str] = mapped_column(key_string(64), primary_key=True)
    decision: Mapped[str] = mapped_column(String(8), primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger)


class LogVerification(db.Model):
    """The result of one full verification of a site's log (`cmp verify`), kept for the dashboard to show."""

    __tablename__ = "log_verifications"
    __table_args__ = (Index("ix_log_verifications_site_id_checked_at", "site_id", "checked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ok: Mapped[bool] = mapped_column(Boolean)
    # Integrated events checked, and why the log failed (None when it verified).
    checked: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    # The size of the signed checkpoint the tree was checked against; None before the first one.
    checkpoint_size: Mapped[int | None] = mapped_column(BigInteger)
    # Where the log first failed, when it did: the event (if its row is there) and its place in the log.
    first_bad_event: Mapped[str | None] = mapped_column(String(26))
    first_bad_seq: Mapped[int | None] = mapped_column(BigInteger)
