"""Email opens and clicks (measured only where `email_tracking` is granted), and the short unsubscribe links."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cmp.extensions import db
from cmp.models.types import UTCDateTime, key_string, utcnow


class EmailActivity(db.Model):
    """One open of the pixel or one click of a tracked link, by a subject who allowed email tracking."""

    __tablename__ = "email_activity"
    __table_args__ = (Index("ix_email_activity_site_id_occurred_at", "site_id", "occurred_at"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    # Erasing a subject erases its activity with it.
    subject_id: Mapped[str] = mapped_column(key_string(32), ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    message_id: Mapped[str] = mapped_column(String(255))
    # Clicks only: the destination's host, never its path or query, which may carry personal data.
    destination_host: Mapped[str | None] = mapped_column(String(253))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<EmailActivity {self.kind} {self.id}>"


class UnsubscribeLink(db.Model):
    """The short token of a recipient's List-Unsubscribe URL, kept only as its SHA-256 digest.

    One row per site, subject and locale, shared by every message to them; erasing the subject deletes it.
    """

    __tablename__ = "unsubscribe_links"
    __table_args__ = (UniqueConstraint("site_id", "subject_id", "locale"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(key_string(64), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    subject_id: Mapped[str] = mapped_column(key_string(32), ForeignKey("subjects.id", ondelete="CASCADE"))
    locale: Mapped[str] = mapped_column(String(35))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"<UnsubscribeLink {self.id}>"
