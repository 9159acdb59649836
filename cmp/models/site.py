"""A website that embeds the banner, with its purposes and cookie inventory."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from cmp.extensions import db
from cmp.models.notice import ImmutableRecordError
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
    # Country code (or "*" for every other) -> the age of digital consent there, 13 to 16 (GDPR Art. 8(1));
    # 16 where it names none. See services.jurisdiction.child_age.
    child_ages: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
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
    # Needs its own affirmative act (PIPL Art. 23, 38, 39: sharing with another handler, transfer abroad; email
    # tracking): accept_all never grants it, and a grant of it decides nothing else.
    separate_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_mode: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Locale -> {"name", "description"}; a separate consent adds "means", "rights" and optionally "categories".
    texts: Mapped[dict[str, dict[str, str]]] = mapped_column(JSONType, default=dict)
    # The kinds of personal data processed, in words a person reads (Kantara CR v1.1 `piiCategory`).
    pii_categories: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Who receives the data besides the controller and the cookie inventory's providers (GDPR Art. 13(1)(e)
    # recipients; PIPL Art. 39 overseas recipients): receipts name them as third parties. Each is
    # {"name", "contact"}; the contact may be null, but a separate consent needs one (PIPL Art. 39).
    recipients: Mapped[list[dict[str, str | None]]] = mapped_column(JSONType, default=list)

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


class JurisdictionAcknowledgement(db.Model):
    """An operator's acknowledgement that a site puts prior-consent countries on a weaker mode, and why.

    Append-only: the record an auditor reads of who relied on what when the default was weakened
    (services.sites.update_site; services.jurisdiction.PRIOR_CONSENT).
    """

    __tablename__ = "jurisdiction_acknowledgements"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    # The prior-consent country codes the override weakens, sorted; and the mode it puts them on.
    countries: Mapped[list[str]] = mapped_column(JSONType)
    mode: Mapped[str] = mapped_column(String(16))
    # What the operator relies on (a legal opinion, a local exemption), in their words.
    reason: Mapped[str] = mapped_column(Text)
    # How it was given ("cli"); the command line has no signed-in user to name.
    recorded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"<JurisdictionAcknowledgement {self.id} {self.mode} {' '.join(self.countries)}>"


@event.listens_for(JurisdictionAcknowledgement, "before_update")
def _refuse_update(mapper, connection, target):
    raise ImmutableRecordError(f"jurisdiction acknowledgement {target.id} is append-only")


@event.listens_for(JurisdictionAcknowledgement, "before_delete")
def _refuse_delete(mapper, connection, target):
    raise ImmutableRecordError(f"jurisdiction acknowledgement {target.id} is append-only and cannot be deleted")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_changes(state):
    """Bulk UPDATE or DELETE through the ORM skips the per-object guards above."""
    if (state.is_update or state.is_delete) and state.bind_mapper is not None:
        if state.bind_mapper.class_ is JurisdictionAcknowledgement:
            raise ImmutableRecordError("JurisdictionAcknowledgement rows are append-only")
