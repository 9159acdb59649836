"""The consent log (append-only events in a hash chain) and the current state derived from it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    event,
    inspect,
    text,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from cmp.extensions import db
from cmp.models.notice import ImmutableRecordError, NoticeVersion
from cmp.models.types import JSONType, UTCDateTime, key_string


class ConsentEvent(db.Model):
    """One decision set for one subject at one moment, with its evidence and chain fields."""

    __tablename__ = "consent_events"
    __table_args__ = (
        UniqueConstraint("site_id", "seq"),
        Index("ix_consent_events_site_id_received_at", "site_id", "received_at"),
        # What the sequencer has still to integrate, in the order the writes took effect.
        Index(
            "ix_consent_events_pending",
            "site_id",
            "entry",
            postgresql_where=text("seq IS NULL"),
            sqlite_where=text("seq IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    # Position in the site's log, from 1 without gaps: the leaf index plus one. None while the event is pending:
    # acknowledged and durable, not yet integrated into the tree by the sequencer.
    seq: Mapped[int | None] = mapped_column(BigInteger)
    # The order in which writes took effect (a database sequence): the sequencer integrates pending events in it,
    # so each subject's events enter the log in the order they changed its state.
    entry: Mapped[int | None] = mapped_column(BigInteger)
    subject_id: Mapped[str] = mapped_column(key_string(32), ForeignKey("subjects.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    # Purpose key -> "granted" | "denied"
    decisions: Mapped[dict[str, str]] = mapped_column(JSONType)
    notice_version: Mapped[int | None] = mapped_column(Integer)
    notice_hash: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(35))
    mode: Mapped[str] = mapped_column(String(16))
    country: Mapped[str | None] = mapped_column(String(2))
    gpc: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Who gave the decision when it was not the subject: "guardian" for a parent or guardian (policy section 6).
    given_by: Mapped[str | None] = mapped_column(String(16))

    # Evidence: erasable and purgeable. The chain covers `evidence_digest`, a salted digest of
    # these columns, so emptying them (and the salt) keeps the chain verifiable and the digest
    # no longer reveals what they held.
    ip_prefix: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[dict | None] = mapped_column(JSONType)
    page_url: Mapped[str | None] = mapped_column(String(2048))
    evidence_salt: Mapped[str | None] = mapped_column(String(32))
    evidence_digest: Mapped[str] = mapped_column(String(64))

    # The previous event's hash, for events hashed before the log became a tree (hash version 1); None after.
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    # The entry's hash: the leaf data of its place in the tree.
    hash: Mapped[str] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"<ConsentEvent {self.id} seq={self.seq}>"


EVIDENCE_COLUMNS = ("ip_prefix", "user_agent", "page_url", "evidence_salt")


@event.listens_for(ConsentEvent, "before_update")
def _only_evidence_may_be_emptied(mapper, connection, target):
    state = inspect(target)
    for attr in state.attrs:
        if not attr.history.has_changes():
            continue
        if attr.key not in EVIDENCE_COLUMNS or attr.value is not None:
            raise ImmutableRecordError(f"consent event {target.id}: {attr.key} is append-only")


@event.listens_for(ConsentEvent, "before_delete")
def _refuse_delete(mapper, connection, target):
    raise ImmutableRecordError(f"consent event {target.id} is append-only and cannot be deleted")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_changes(state):
    """Bulk UPDATE or DELETE through the ORM skips the per-object guards above: refuse it for the log and notices.

    Erasure and retention work on the table itself, column by column, in their own services.
    """
    if (state.is_update or state.is_delete) and state.bind_mapper is not None:
        if state.bind_mapper.class_ in (ConsentEvent, NoticeVersion):
            raise ImmutableRecordError(f"{state.bind_mapper.class_.__name__} rows are append-only")


class ConsentState(db.Model):
    """The latest decision per site, subject and purpose, written with its event."""

    __tablename__ = "consent_state"
    # On PostgreSQL the key also carries the answer's columns, so a lookup reads only the key (migration 0009).
    __table_args__ = (
        PrimaryKeyConstraint(
            "site_id",
            "subject_id",
            "purpose",
            postgresql_include=[
                "decision",
                "action",
                "event_id",
                "notice_version",
                "decided_at",
                "expires_at",
                "given_by",
            ],
        ),
    )

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    subject_id: Mapped[str] = mapped_column(key_string(32), ForeignKey("subjects.id"), primary_key=True)
    purpose: Mapped[str] = mapped_column(key_string(64), primary_key=True)
    decision: Mapped[str] = mapped_column(String(8))
    # The action behind this purpose's decision ("gpc" where the signal denied it).
    action: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(ForeignKey("consent_events.id"))
    notice_version: Mapped[int | None] = mapped_column(Integer)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Who gave the decision when it was not the subject ("guardian"), as its event says.
    given_by: Mapped[str | None] = mapped_column(String(16))


class ChainHead(db.Model):
    """The head of a site's log: the size of its tree and the tree's root hash (hex).

    Only the sequencer moves it, forward and by compare-and-set on `seq`, so the tree never forks.
    """

    __tablename__ = "chain_heads"

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class ChainCheckpoint(db.Model):
    """Where a site's chain resumes after retention removed its oldest events.

    `seq` and `hash` are those of the last removed event: the first remaining event must follow them,
    so verification starts here instead of at the genesis hash. One row per purge, kept as its record.
    """

    __tablename__ = "chain_checkpoints"
    __table_args__ = (UniqueConstraint("site_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    # How many events this purge removed, and when.
    removed: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
