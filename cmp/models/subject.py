"""Subjects (people) and the pseudonymous identifiers that point to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from cmp.extensions import db
from cmp.models.types import UTCDateTime, key_string, utcnow


class Subject(db.Model):
    """A person as a random id; nothing here identifies them."""

    __tablename__ = "subjects"
    # Few subjects carry a flag: a bulk lookup joins only these, through an index that holds just them (0017).
    __table_args__ = (
        Index(
            "ix_subjects_flagged",
            "id",
            postgresql_include=["restricted", "child"],
            postgresql_where=text("restricted OR child"),
            sqlite_where=text("restricted OR child"),
        ),
    )

    id: Mapped[str] = mapped_column(key_string(32), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Processing restricted (GDPR Art. 18): every lookup answers not allowed, reason "restricted".
    restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    # Below the site's age of digital consent (GDPR Art. 8): only a guardian's grant allows anything.
    child: Mapped[bool] = mapped_column(Boolean, default=False)


class SubjectIdentifier(db.Model):
    """Links `kind:value` to a subject through a keyed HMAC-SHA256 digest; the value is never stored."""

    __tablename__ = "subject_identifiers"
    # The digest covers site, kind and value: (site, digest) is unique and is what lookups search by. On
    # PostgreSQL the index also carries the subject id, so a lookup never reads the table for it.
    __table_args__ = (
        Index(
            "uq_subject_identifiers_site_id_digest", "site_id", "digest", unique=True, postgresql_include=["subject_id"]
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    subject_id: Mapped[str] = mapped_column(key_string(32), ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    digest: Mapped[str] = mapped_column(key_string(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
