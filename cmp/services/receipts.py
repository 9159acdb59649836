"""Consent receipts: a visitor's own record of one decision, in Kantara Consent Receipt v1.1 field names.

Where Kantara has no field, the ISO/IEC TS 27560:2023 consent record names it (notice version and hash, event
type, who gave it, storage location). A receipt is reached by event id plus a token signed for that site and
event, so no one can walk the log by guessing ids; the token never expires, as a paper receipt does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from itsdangerous import BadSignature, Signer
from sqlalchemy import select

from cmp.errors import Forbidden, NotFound
from cmp.extensions import db
from cmp.models import ConsentEvent, NoticeVersion, Site
from cmp.vocabulary import Action, Decision, Source

KANTARA_VERSION = "KI-CR-v1.1.0"

# Kantara's collectionMethod is free text: how the decision reached the log, in words a person reads.
COLLECTION_METHODS = {
    Source.BANNER: "cookie banner on the website",
    Source.API: "the website's own systems (account sign-up, customer service)",
    Source.EMAIL_LINK: "link in an email",
    Source.ONE_CLICK: "one-click unsubscribe from an email client (RFC 8058)",
    Source.IMPORT: "imported from an earlier consent record",
    Source.SYSTEM: "the consent service itself",
}

# Decisions the person took themself: an affirmative act (GDPR Art. 4(11)). A mode's default is not one.
IMPLIED_ACTIONS = frozenset({Action.DEFAULT.value, Action.EXPIRE.value})

WITHDRAWAL_METHOD = (
    "Cookie settings on the website (withdrawing takes no more clicks than consenting), or a request to the "
    "controller, who withdraws every purpose at once"
)


class InvalidReceiptToken(Forbidden):
    """A token this service did not sign for this site and event; says nothing more."""

    def __init__(self):
        super().__init__("invalid_receipt_token", "this receipt link is not valid")


class ReceiptTokens:
    """Signs (site, event id) with the app's secret keys: the last signs, every one verifies (key rotation)."""

    def __init__(self, secret_key: str, fallbacks: Sequence[str] = ()):
        self._keys = [*fallbacks, secret_key]

    def _signer(self, site_key: str) -> Signer:
        # Its own salt, and the site in it: a visitor-id or email-link signature is worthless here, and a token
        # for one site's event proves nothing on another.
        return Signer(self._keys, salt=f"cmp.receipt:{site_key}")

    def sign(self, site_key: str, event_id: str) -> str:
        return self._signer(site_key).get_signature(event_id).decode()

    def check(self, site_key: str, event_id: str, token: str) -> None:
        """Raise `InvalidReceiptToken` unless `token` was signed for this site and event."""
        try:
            valid = self._signer(site_key).verify_signature(event_id.encode(), token.encode())
        except (BadSignature, ValueError):
            valid = False
        if not valid:
            raise InvalidReceiptToken()


@dataclass(frozen=True)
class Receipt:
    event: ConsentEvent
    notice: dict | None  # the notice version's content: what the person was shown
    site: Site


def find_receipt(site: Site, event_id: str, token: str, *, tokens: ReceiptTokens) -> Receipt:
    """The event a receipt describes, once its token holds: the token is checked before anything is read."""
    tokens.check(site.key, event_id, token)
    event = db.session.scalar(select(ConsentEvent).where(ConsentEvent.site_id == site.id, ConsentEvent.id == event_id))
    if event is None:
        # Signed by us but gone: removed by retention after its proof period.
        raise NotFound("unknown_receipt", "this consent record is no longer kept")
    notice = None
    if event.notice_version is not None:
        notice = db.session.scalar(
            select(NoticeVersion.content).where(
                NoticeVersion.site_id == site.id, NoticeVersion.version == event.notice_version
            )
        )
    return Receipt(event, notice, site)


def receipt_document(receipt: Receipt, *, storage_location: str | None) -> dict:
    """The receipt as JSON-ready fields (Kantara CR v1.1, then ISO/IEC TS 27560)."""
    event, site = receipt.event, receipt.site
    notice = receipt.notice or {}
    name = notice.get("name", site.name)
    policy_url = notice.get("policy_url", site.policy_url)
    language = event.locale or notice.get("default_locale", site.default_locale)
    evidence = None
    if event.evidence_salt is not None:
        # Erasure empties these columns: an erased subject's receipt shows no evidence.
        evidence = {"ipPrefix": event.ip_prefix, "userAgent": event.user_agent, "pageUrl": event.page_url}
    return {
        "version": KANTARA_VERSION,
        "jurisdiction": event.country,
        "consentTimestamp": int(event.received_at.timestamp()),
        "collectionMethod": COLLECTION_METHODS.get(event.source, event.source),
        "consentReceiptID": event.id,
        "language": language,
        "piiPrincipalId": event.subject_id,
        "piiControllers": [{"piiController": name, "piiControllerUrl": policy_url}],
        "policyUrl": policy_url,
        "services": [{"service": name, "purposes": _purposes(event, notice, language, name)}],
        "sensitive": False,
        "spiCat": [],
        # ISO/IEC TS 27560 where Kantara has no field.
        "eventTime": event.received_at.isoformat(),
        "eventType": event.action,
        "eventBy": event.given_by or "subject",
        "noticeVersion": event.notice_version,
        "noticeHash": event.notice_hash,
        "mode": event.mode,
        "gpc": bool(event.gpc),
        "validUntil": event.expires_at.isoformat() if event.expires_at else None,
        "withdrawalMethod": WITHDRAWAL_METHOD,
        # Policy section 8: where the record is kept, as the operator declares it.
        "storageLocation": storage_location,
        "evidence": evidence,
        "eventHash": event.hash,
    }


def _purposes(event: ConsentEvent, notice: dict, language: str, controller: str) -> list[dict]:
    shown = {p["key"]: p for p in notice.get("purposes", [])}
    consent_type = "IMPLIED" if event.action in IMPLIED_ACTIONS else "EXPLICIT"
    termination = event.expires_at.isoformat() if event.expires_at else None
    out = []
    for key, decision in event.decisions.items():
        purpose = shown.get(key, {})
        by_locale = purpose.get("texts", {})
        # A server may record any language tag; the names come from the closest locale the notice has.
        candidates = (language, language.split("-")[0], notice.get("default_locale"))
        texts = next((by_locale[c] for c in candidates if c in by_locale), {})
        # Third parties are known from the cookie inventory the person was shown: its providers other than the site.
        providers = sorted(
            {c["provider"] for c in notice.get("cookies", []) if c["purpose"] == key and c["provider"] != controller}
        )
        out.append(
            {
                "purpose": texts.get("name", key),
                "purposeCategory": [key],
                "consentType": consent_type,
                "decision": decision,
                "primaryPurpose": purpose.get("refusable") is False,
                "termination": termination if decision == Decision.GRANTED else None,
                "thirdPartyDisclosure": bool(providers),
                "thirdPartyName": ", ".join(providers) or None,
            }
        )
    return out
