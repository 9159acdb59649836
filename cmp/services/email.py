"""Marketing email: double opt-in, RFC 8058 one-click unsubscribe, and opens and clicks gated by consent.

Links carry tokens signed with itsdangerous, never an email address: the site key, the random subject id,
the purpose, and the subscription's event id or a nonce. Each kind of link has its own salt, so a token of one
kind is worthless as another. Confirmation tokens expire; unsubscribe and tracking tokens live as long as the
emails that carry them, bound to their subject and site.

Unsubscribe links are the exception: a List-Unsubscribe header has to fit one line, so its token is 20 characters
that name a stored row (see `unsubscribe_token`). Signed unsubscribe tokens mailed before still work.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import unquote_plus, urlsplit

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from cmp.errors import Invalid, Malformed, Refused, Unknown
from cmp.extensions import db, insert_or_merge
from cmp.models import ConsentEvent, ConsentState, EmailActivity, Site, SubjectIdentifier, UnsubscribeLink
from cmp.models.types import utcnow
from cmp.services.consent import (
    MAX_ATTEMPTS,
    ConsentRequest,
    Lifetimes,
    StateChanged,
    hold_subject,
    is_live,
    record_consent,
)
from cmp.services.evidence import Evidence
from cmp.services.identifiers import Identifier, InvalidIdentifier, new_event_id, parse_identifier
from cmp.services.lookup import ADULT, STATE_COLUMNS, Answer, answer_for_subject, decide
from cmp.services.notices import last_material_version
from cmp.vocabulary import Action, Decision, Source

MARKETING = "marketing_email"
TRACKING = "email_tracking"

# RFC 8058 section 3.1: the one value of List-Unsubscribe-Post, and the body a mail client POSTs.
ONE_CLICK = "List-Unsubscribe=One-Click"

# RFC 5322 section 2.1.1: a line SHOULD be at most 78 characters. Python's email package (policy.SMTP, what
# smtplib.send_message uses) folds a header without encoding it only while its value fits; a longer URI becomes
# RFC 2047 encoded words, which are no longer a List-Unsubscribe list. The whole header line must fit:
# `List-Unsubscribe: <` + public URL + UNSUBSCRIBE_PATH + token + `>`.
MAX_HEADER_LINE = 78
UNSUBSCRIBE_PATH = "/u/"
UNSUBSCRIBE_TOKEN_BYTES = 15  # 120 bits, unguessable; a multiple of 3, so base64url needs no padding
UNSUBSCRIBE_TOKEN_LENGTH = UNSUBSCRIBE_TOKEN_BYTES * 4 // 3
UNSUBSCRIBE_TOKEN = re.compile(rf"^[A-Za-z0-9_-]{{{UNSUBSCRIBE_TOKEN_LENGTH}}}$")
MAX_PUBLIC_URL_LENGTH = MAX_HEADER_LINE - len("List-Unsubscribe: <" + UNSUBSCRIBE_PATH + ">") - UNSUBSCRIBE_TOKEN_LENGTH


class LinkKind(StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    OPEN = "open"
    CLICK = "click"


PURPOSE_OF = {
    LinkKind.CONFIRM: MARKETING,
    LinkKind.UNSUBSCRIBE: MARKETING,
    LinkKind.OPEN: TRACKING,
    LinkKind.CLICK: TRACKING,
}


@dataclass(frozen=True)
class Link:
    """What a token says. `expired` is set on a confirmation whose signature holds but whose time ran out."""

    kind: LinkKind
    site: str
    subject_id: str
    locale: str | None = None
    event_id: str | None = None  # confirm: the subscribe event it confirms
    message_id: str | None = None  # open and click
    destination: str | None = None  # click
    expired: bool = False

    @property
    def purpose(self) -> str:
        return PURPOSE_OF[self.kind]


class EmailTokens:
    """Signs and reads link tokens with the app's secret keys (the last signs; all verify, for rotation)."""

    def __init__(self, secret_key: str, fallbacks: Sequence[str] = (), *, confirmation_max_age: timedelta):
        keys = [*fallbacks, secret_key]
        self._serializers = {kind: URLSafeTimedSerializer(keys, salt=f"cmp.email.{kind}") for kind in LinkKind}
        self.confirmation_max_age = confirmation_max_age

    def sign(self, link: Link) -> str:
        payload = {"site": link.site, "subject": link.subject_id, "purpose": link.purpose}
        optional = {"locale": link.locale, "event": link.event_id, "message": link.message_id, "url": link.destination}
        payload.update({name: value for name, value in optional.items() if value is not None})
        if link.event_id is None:
            payload["nonce"] = secrets.token_urlsafe(6)
        return self._serializers[link.kind].dumps(payload)

    def read(self, kind: LinkKind, token: str) -> Link:
        """The link a token describes; `Malformed` when this service did not sign it for `kind`."""
        serializer = self._serializers[kind]
        max_age = int(self.confirmation_max_age.total_seconds()) if kind == LinkKind.CONFIRM else None
        expired = False
        try:
            payload = serializer.loads(token, max_age=max_age)
        except SignatureExpired as exc:
            # The signature held; only its age is wrong, so what it says (the locale, for the page) is ours.
            payload, expired = serializer.load_payload(exc.payload), True
        except BadData:
            raise Malformed("invalid_link", "this link was not signed by this service, or it was changed") from None
        return _link(kind, payload, expired)


REQUIRED = {
    LinkKind.CONFIRM: {"site", "subject", "purpose", "event"},
    LinkKind.UNSUBSCRIBE: {"site", "subject", "purpose"},
    LinkKind.OPEN: {"site", "subject", "purpose", "message"},
    LinkKind.CLICK: {"site", "subject", "purpose", "message", "url"},
}


def _link(kind: LinkKind, payload, expired: bool) -> Link:
    valid = (
        isinstance(payload, dict)
        and REQUIRED[kind] <= set(payload)
        and all(isinstance(value, str) for value in payload.values())
        and payload["purpose"] == PURPOSE_OF[kind]
    )
    if not valid:
        raise Malformed("invalid_link", "this link does not say what a link of its kind says")
    return Link(
        kind=kind,
        site=payload["site"],
        subject_id=payload["subject"],
        locale=payload.get("locale"),
        event_id=payload.get("event"),
        message_id=payload.get("message"),
        destination=payload.get("url"),
        expired=expired,
    )


def email_identifier(address: str) -> Identifier:
    """`email:<address>`, normalised as every other email identifier is before it is hashed."""
    try:
        return parse_identifier(f"email:{address}")
    except InvalidIdentifier as exc:
        raise Invalid("invalid_email", str(exc), {"fields": {"email": [str(exc)]}}) from None


def _subject_id(site: Site, identifier: Identifier, hmac_key: str) -> str | None:
    return db.session.scalar(
        select(SubjectIdentifier.subject_id).where(
            SubjectIdentifier.site_id == site.id, SubjectIdentifier.digest == identifier.digest(hmac_key, site.key)
        )
    )


def _recipient(site: Site, address: str, hmac_key: str) -> tuple[Identifier, str]:
    identifier = email_identifier(address)
    subject_id = _subject_id(site, identifier, hmac_key)
    if subject_id is None:
        raise Unknown("unknown_recipient", f"site {site.key!r} holds no consent record for this address")
    return identifier, subject_id


def _state(site: Site, subject_id: str, purpose: str):
    """The current-state row as plain columns (never a cached ORM object: the state is upserted behind the ORM)."""
    return db.session.execute(
        select(*STATE_COLUMNS).where(
            ConsentState.site_id == site.id, ConsentState.subject_id == subject_id, ConsentState.purpose == purpose
        )
    ).first()


def current_answer(site: Site, subject_id: str, purpose: str, now: datetime | None = None) -> Answer:
    """May we act for this subject and purpose now: what a lookup answers, restriction and age included."""
    return answer_for_subject(site, subject_id, purpose, now)


def _recorded_answer(site: Site, subject_id: str, purpose: str) -> Answer:
    """What the recorded decision says now, before a restriction or the subject's age is weighed.

    Whether a subscription is already confirmed or already withdrawn is a fact about the record: a restricted
    subject's unsubscribe is still an unsubscribe, and is not recorded twice.
    """
    return decide(_state(site, subject_id, purpose), ADULT, utcnow(), last_material_version(site))


def _require_subject(site: Site, subject_id: str, *, hold: bool = False) -> None:
    """The link's subject exists on this site and was not erased (erasure removes every identifier link).

    An old link of an erased person must not record anything about them again, evidence included. With `hold`,
    for writes that order nothing (opens, clicks), the subject's row stays locked against an erasure until commit.
    """
    live = hold_subject(site.id, subject_id, shared=True) if hold else is_live(site.id, subject_id)
    if not live:
        raise Unknown("unknown_subject", f"site {site.key!r} has no such subject")


# --- double opt-in ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    status: str  # "pending" until confirmed; "confirmed" when it already was
    subject_id: str
    event_id: str
    confirmation_token: str | None = None
    confirmation_expires_at: datetime | None = None


def subscribe(
    site: Site,
    address: str,
    *,
    locale: str | None,
    notice_version: int | None,
    evidence: Evidence,
    tokens: EmailTokens,
    hmac_key: str,
    lifetimes: Lifetimes,
) -> Subscription:
    """Start a double opt-in: record `subscribe` (pending, so not allowed) and sign the confirmation link.

    A subscriber already confirmed keeps their subscription: nothing is recorded and no link is made.
    """
    identifier = email_identifier(address)
    subject_id = _subject_id(site, identifier, hmac_key)
    if subject_id is not None:
        current = _recorded_answer(site, subject_id, MARKETING)
        if current.allowed:
            return Subscription("confirmed", subject_id, current.event_id)
    locale = locale or site.default_locale
    event = record_consent(
        ConsentRequest(
            site=site,
            identifier=identifier,
            action=Action.SUBSCRIBE,
            source=Source.API,
            # REQUIREMENTS 21: a subscription counts only once confirmed; until then it is a refusal.
            decisions={MARKETING: Decision.DENIED.value},
            notice_version=notice_version,
            locale=locale,
            evidence=evidence,
        ),
        hmac_key=hmac_key,
        lifetimes=lifetimes,
    )
    link = Link(LinkKind.CONFIRM, site.key, event.subject_id, locale=locale, event_id=event.id)
    # itsdangerous stamps whole seconds: the link expires no later than this.
    expires_at = event.received_at.replace(microsecond=0) + tokens.confirmation_max_age
    return Subscription("pending", event.subject_id, event.id, tokens.sign(link), expires_at)


@dataclass(frozen=True)
class Outcome:
    status: str  # confirm confirmed already_confirmed unsubscribed already_unsubscribed
    event_id: str | None


def confirmation(site: Site, link: Link) -> Outcome:
    """What the confirmation page offers, recording nothing: `confirm` (its button) while the link's subscription
    is pending, `already_confirmed` once it is confirmed.

    Opening the link must not confirm: mail scanners fetch every link of a message, and a confirmation nobody
    asked for is no consent (REQUIREMENTS 21). Refused as `confirm` refuses.
    """
    row = _confirmable_state(site, link)
    if _pending(row, link):
        return Outcome("confirm", link.event_id)
    return _already_confirmed(site, link, row)


def confirm(site: Site, link: Link, *, evidence: Evidence, hmac_key: str, lifetimes: Lifetimes) -> Outcome:
    """Record `confirm` for the subscription the link was made for, if that is still the one pending.

    An expired link, or one whose subscription was superseded (a newer link, an unsubscribe), changes nothing.
    """
    row = _confirmable_state(site, link)
    if _pending(row, link):
        try:
            event = record_consent(
                ConsentRequest(
                    site=site,
                    identifier=None,
                    subject_id=link.subject_id,
                    action=Action.CONFIRM,
                    source=Source.EMAIL_LINK,
                    decisions={MARKETING: Decision.GRANTED.value},
                    # What the person was shown when they subscribed is what they confirm.
                    notice_version=row.notice_version,
                    locale=link.locale,
                    evidence=evidence,
                    expected_state=(MARKETING, link.event_id),
                ),
                hmac_key=hmac_key,
                lifetimes=lifetimes,
            )
            return Outcome("confirmed", event.id)
        except Refused:
            # Another click on this link (or an unsubscribe) got there first: answer from what it recorded.
            row = _state(site, link.subject_id, MARKETING)
    return _already_confirmed(site, link, row)


def _confirmable_state(site: Site, link: Link):
    if link.expired:
        raise Malformed("link_expired", "this confirmation link has expired; nothing was changed")
    return _state(site, link.subject_id, MARKETING)


def _pending(row, link: Link) -> bool:
    """The subscription this link was made for is the one waiting for confirmation."""
    return row is not None and row.event_id == link.event_id and row.action == Action.SUBSCRIBE


def _already_confirmed(site: Site, link: Link, row) -> Outcome:
    if row is not None and row.action == Action.CONFIRM and _recorded_answer(site, link.subject_id, MARKETING).allowed:
        return Outcome("already_confirmed", row.event_id)
    raise Refused("link_superseded", "this confirmation link is no longer the one pending; nothing was changed")


# --- unsubscribe (RFC 8058) -------------------------------------------------------------------------------------


def list_unsubscribe_headers(url: str) -> dict[str, str]:
    """RFC 2369 List-Unsubscribe with an https URI, and RFC 8058 List-Unsubscribe-Post; both to be DKIM-signed."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": ONE_CLICK}


def unsubscribe_token(site: Site, address: str, *, locale: str | None, hmac_key: str) -> str:
    """A short token that unsubscribes this recipient from marketing email, in the locale they subscribed in.

    The token is keyed with the HMAC key (which never changes: identifiers depend on it) over site, subject and
    locale, so every message to them carries the same one and one row stands for it; the row keeps only its
    SHA-256 digest, so the table alone unsubscribes no one. Erasing the subject deletes the row.
    """
    _, subject_id = _recipient(site, address, hmac_key)
    if not hold_subject(site.id, subject_id, shared=True):
        raise Unknown("unknown_recipient", f"site {site.key!r} holds no consent record for this address")
    if locale is None:
        locale = db.session.scalar(
            select(ConsentEvent.locale)
            .join(ConsentState, ConsentState.event_id == ConsentEvent.id)
            .where(
                ConsentState.site_id == site.id,
                ConsentState.subject_id == subject_id,
                ConsentState.purpose == MARKETING,
            )
        )
    locale = locale or site.default_locale
    message = f"cmp.unsubscribe\x00{site.key}\x00{subject_id}\x00{locale}".encode()
    key = hmac.new(hmac_key.encode(), message, hashlib.sha256).digest()[:UNSUBSCRIBE_TOKEN_BYTES]
    token = base64.urlsafe_b64encode(key).decode()
    row = {"digest": _token_digest(token), "site_id": site.id, "subject_id": subject_id, "locale": locale}
    # Two senders asking at once for the same recipient store one row.
    db.session.execute(insert_or_merge(UnsubscribeLink).values(created_at=utcnow(), **row).on_conflict_do_nothing())
    db.session.commit()
    return token


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def unsubscribe_link(token: str, *, tokens: EmailTokens) -> Link:
    """What an unsubscribe token stands for: a short token's stored row, or a signed token mailed before them.

    A short token that names no row (never made, or its subject erased) is `Unknown`.
    """
    if not UNSUBSCRIBE_TOKEN.fullmatch(token):
        return tokens.read(LinkKind.UNSUBSCRIBE, token)
    row = db.session.execute(
        select(Site.key, UnsubscribeLink.subject_id, UnsubscribeLink.locale)
        .join(Site, Site.id == UnsubscribeLink.site_id)
        .where(UnsubscribeLink.digest == _token_digest(token))
    ).first()
    if row is None:
        raise Unknown("unknown_subject", "this unsubscribe link names no one this service knows")
    return Link(LinkKind.UNSUBSCRIBE, row.key, row.subject_id, locale=row.locale)


def is_unsubscribed(site: Site, link: Link) -> bool:
    _require_subject(site, link.subject_id)
    return _recorded_answer(site, link.subject_id, link.purpose).reason == "withdrawn"


def unsubscribe(
    site: Site, link: Link, *, source: Source, evidence: Evidence, hmac_key: str, lifetimes: Lifetimes
) -> Outcome:
    """Record `unsubscribe` (a denial); the next lookup answers not allowed, reason withdrawn.

    Honoured whatever the state: it also cancels a pending subscription, so its confirmation link stops working.
    Repeated requests (mail clients retry) record nothing more, even when they arrive together.
    """
    _require_subject(site, link.subject_id)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        current = _recorded_answer(site, link.subject_id, link.purpose)
        if current.reason == "withdrawn":
            return Outcome("already_unsubscribed", current.event_id)
        try:
            event = record_consent(
                ConsentRequest(
                    site=site,
                    identifier=None,
                    subject_id=link.subject_id,
                    action=Action.UNSUBSCRIBE,
                    source=source,
                    decisions={link.purpose: Decision.DENIED.value},
                    locale=link.locale,
                    evidence=evidence,
                    # Read again holding the subject: of two requests that both saw no unsubscribe, one records.
                    expected_state=(link.purpose, current.event_id),
                ),
                hmac_key=hmac_key,
                lifetimes=lifetimes,
            )
            return Outcome("unsubscribed", event.id)
        except StateChanged:
            # Another decision landed first: a repeat of this one is answered from it, any other is overruled.
            if attempt == MAX_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


# --- opens and clicks -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackingLinks:
    """What a sender may put in one message: signed tokens only where email tracking is allowed for its recipient."""

    open_token: str | None  # None: no pixel to mail
    click_tokens: list[tuple[str, str | None]]  # (destination, token); None: link straight to the destination
    tracking: Answer  # whether opens and clicks are recorded now


def _mentions(text: str, address: str) -> bool:
    return address in unquote_plus(text).lower()


def tracking_links(
    site: Site,
    address: str,
    message_id: str,
    destinations: Sequence[str],
    *,
    tokens: EmailTokens,
    hmac_key: str,
) -> TrackingLinks:
    """Sign the open pixel and one tracked link per destination for one recipient of one message.

    Only while `email_tracking` is allowed for the recipient now: otherwise there is no pixel to mail and each link
    goes straight to its destination, so a message sent without consent carries nothing that tracks (a pixel that
    records nothing is still a request the reader's mail client makes unasked). A grant given later does not reach
    messages already sent; a refusal given later is honoured by `record_activity`, which asks at every open and click.

    Tokens are readable (signed, not encrypted), so neither the message id nor a destination may hold the address.
    """
    identifier, subject_id = _recipient(site, address, hmac_key)
    if _mentions(message_id, identifier.value):
        raise Invalid("address_in_link", "the message id holds the recipient's address", {"fields": ["message_id"]})
    holding = [index for index, url in enumerate(destinations) if _mentions(url, identifier.value)]
    if holding:
        raise Invalid("address_in_link", "a destination holds the recipient's address", {"destinations": holding})
    tracking = current_answer(site, subject_id, TRACKING)
    if not tracking.allowed:
        return TrackingLinks(None, [(url, None) for url in destinations], tracking)
    sign = tokens.sign
    return TrackingLinks(
        open_token=sign(Link(LinkKind.OPEN, site.key, subject_id, message_id=message_id)),
        click_tokens=[
            (url, sign(Link(LinkKind.CLICK, site.key, subject_id, message_id=message_id, destination=url)))
            for url in destinations
        ],
        tracking=tracking,
    )


def safe_destination(link: Link) -> str:
    """The click's destination, checked again before redirecting to it: http(s) with a host, nothing else."""
    parts = urlsplit(link.destination or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Malformed("invalid_link", "this link has no destination this service redirects to")
    return link.destination


def record_activity(site: Site, link: Link, *, now: datetime | None = None) -> bool:
    """Record an open or a click only where `email_tracking` is granted now (CNIL 2026: pixels need consent).

    Opens and clicks are not consent events: they go to their own table, never to the consent log.
    """
    _require_subject(site, link.subject_id, hold=True)
    now = now or utcnow()
    if not current_answer(site, link.subject_id, TRACKING, now).allowed:
        return False
    db.session.add(
        EmailActivity(
            id=new_event_id(),
            site_id=site.id,
            subject_id=link.subject_id,
            kind=link.kind.value,
            message_id=link.message_id,
            destination_host=urlsplit(link.destination).hostname if link.kind == LinkKind.CLICK else None,
            occurred_at=now,
        )
    )
    db.session.commit()
    return True
