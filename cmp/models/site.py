"""A website that embeds the banner, with its purposes and cookie inventory."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cmp.extensions import db
from cmp.models.types import JSONType, UTCDateTime, utcnow


class Site(db.Model):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    allowed_origins: Mapped[list[str]] = mapped_column(JSONType, default=list)
    locales: Mapped[list[str]] = mapped_column(JSONType)
    default_locale: Mapped[str] = mapped_column(String(35))
    policy_url: Mapped[str | None] = mapped_column(String(2048))
    # Country code (or "*" for every other known country) -> mode; see services.jurisdiction.
    jurisdiction_overrides: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    # Locale -> banner text key -> text, overriding the built-in catalogue.
    texts: Mapped[dict[str, dict[str, str]]] = mapped_column(JSONType, default=dict)
    # Who is responsible for the processing (GDPR Art. 13(1)(a) and (b)), as consent receipts name them (Kantara
    # CR v1.1 `piiControllers`): {"name", "email", "address", "country", "phone", "dpo"}, name and email always
    # present; None until the operator sets it (services.sites.set_controller).
    controller: Mapped[dict[str, str] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    purposes: Mapped[list[Purpose]] = relationship(
        back_populates="site", order_by="Purpose.position", cascade="all, delete-orphan"
    )
    cookies: Mapped[list[Cookie]] = relationship(
        back_populates="site", order_by="Cookie.id", cascade="all, delete-orphan"
    )

    def purpose(self, key: str) -> Purpose | None:
        return next((p for p in self.purposes if p.key == key), None)

    def __repr__(self) -> str:
        return f"<Site {self.key}>"


class Purpose(db.Model):
    """What consent is for, with its per-mode defaults and Consent Mode mapping."""

    __tablename__ = "purposes"
    __table_args__ = (UniqueConstraint("site_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer, default=0)
    channel: Mapped[str] = mapped_column(String(8), default="web")
    refusable: Mapped[bool] = mapped_column(Boolean, default=True)
    default_opt_in: Mapped[str] = mapped_column(String(8), default="denied")
    default_opt_out: Mapped[str] = mapped_column(String(8), default="granted")
    default_notice_only: Mapped[str] = mapped_column(String(8), default="granted")
    # Treated as sale/sharing: Global Privacy Control denies it in opt_out mode.
    gpc: Mapped[bool] = mapped_column(Boolean, default=False)
    # A grant counts only after a confirmed double opt-in.
    double_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_mode: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Locale -> {"name": ..., "description": ...}
    texts: Mapped[dict[str, dict[str, str]]] = mapped_column(JSONType, default=dict)
    # The kinds of personal data processed, in words a person reads (Kantara CR v1.1 `piiCategory`).
    pii_categories: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Who receives the data besides the controller and the cookie inventory's providers (GDPR Art. 13(1)(e)
    # recipients; PIPL Art. 39 overseas recipients): receipts name them as third parties.
    recipients: Mapped[list[str]] = mapped_column(JSONType, default=list)

    site: Mapped[Site] = relationship(back_populates="purposes")

    def __repr__(self) -> str:
        return f"<Purpose {self.key}>"


class Cookie(db.Model):
    """One entry of a site's tracker inventory: a cookie, a storage key or a pixel."""

    __tablename__ = "cookies"
    __table_args__ = (UniqueConstraint("site_id", "name", "provider"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    purpose_id: Mapped[int] = mapped_column(ForeignKey("purposes.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str | None] = mapped_column(String(253))
    kind: Mapped[str] = mapped_column(String(16), default="cookie")
    storage: Mapped[str] = mapped_column(String(16))
    # None for session storage; seconds otherwise.
    lifetime_seconds: Mapped[int | None] = mapped_column(Integer)
    # Locale -> description
    descriptions: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)

    site: Mapped[Site] = relationship(back_populates="cookies")
    purpose: Mapped[Purpose] = relationship()

    def __repr__(self) -> str:
        return f"<Cookie {self.name}>"
