"""Email opens and clicks: activity measured only where `email_tracking` is granted, kept apart from the consent log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from cmp.extensions import db
from cmp.models.types import UTCDateTime, key_string


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
