"""Immutable notice versions: exactly what a visitor was shown."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from cmp.extensions import db
from cmp.models.types import JSONType, UTCDateTime, utcnow


class NoticeVersion(db.Model):
    __tablename__ = "notice_versions"
    __table_args__ = (UniqueConstraint("site_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    # Canonical snapshot: texts per locale, purposes, cookie inventory, policy URL, banner version.
    content: Mapped[dict] = mapped_column(JSONType)
    # SHA-256 of the RFC 8785 canonical JSON of `content`.
    content_hash: Mapped[str] = mapped_column(String(64))
    # A material change asks every visitor again.
    material: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"<NoticeVersion {self.site_id}/{self.version}>"


class ImmutableRecordError(RuntimeError):
    """An attempt to change or delete a record that is append-only."""


@event.listens_for(NoticeVersion, "before_update")
def _refuse_update(mapper, connection, target):
    raise ImmutableRecordError(f"notice version {target.version} is immutable; publish a new one")


@event.listens_for(NoticeVersion, "before_delete")
def _refuse_delete(mapper, connection, target):
    raise ImmutableRecordError(f"notice version {target.version} is immutable and cannot be deleted")
