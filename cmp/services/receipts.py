"""Consent receipts: a visitor's own record of one decision, in Kantara Consent Receipt v1.1 field names.

Every receipt validates against Kantara's own JSON schema (v1.1.0 draft 6), where every field it requires is a
string: what is not known or does not apply is said in words, never null. What Kantara has no field for
follows under the log's own names, with the same values and types as the audit export (`action`, `givenBy`,
`receivedAt`, `expiresAt`, the notice version and hash, the storage location); no other standard is claimed. A
receipt is reached by event id plus a token signed for that site and event, so no one can walk the log by
guessing ids; the token never expires, as a paper receipt does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from itsdangerous import BadSignature, Signer
from sqlalchemy import select

from cmp.catalog import DEFAULT_PURPOSES
from cmp.errors import NotPermitted, Unknown
from cmp.extensions import db
from cmp.models import ConsentEvent, NoticeVersion, Site
from cmp.services import chain, tlog
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

# What a receipt says where Kantara requires a string and there is nothing to say.
NOT_APPLICABLE = "N/A"  # as Kantara's own example says it: the termination of a consent that was refused
NOT_PROVIDED = "not provided"  # the controller has not set this part of its identity
UNKNOWN_JURISDICTION = "unknown"
UNTIL_WITHDRAWN = "until withdrawn"
# A purpose marked as sale or sharing (`gpc`) discloses to third parties even when the notice names none.
UNNAMED_THIRD_PARTIES = "third parties not named in the notice (sale or sharing)"

# Notices published before purposes carried their data categories: the seeded purposes' own, by key.
SEEDED_PII_CATEGORIES = {purpose["key"]: purpose["pii_categories"] for purpose in DEFAULT_PURPOSES}

WITHDRAWAL_METHOD = (
    "Cookie settings on the website (withdrawing takes no more clicks than consenting), or a request to the "
    "controller, who withdraws every purpose at once"
)


class InvalidReceiptToken(NotPermitted):
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
        raise Unknown("unknown_receipt", "this consent record is no longer kept")
    notice = None
    if event.notice_version is not None:
        notice = db.session.scalar(
            select(NoticeVersion.content).where(
                NoticeVersion.site_id == site.id, NoticeVersion.version == event.notice_version
            )
        )
    return Receipt(event, notice, site)


def receipt_document(receipt: Receipt, *, storage_location: str | None) -> dict:
    """The receipt as JSON-ready fields: Kantara CR v1.1, then the log's own fields."""
    event, site = receipt.event, receipt.site
    notice = receipt.notice or {}
    name = notice.get("name", site.name)
    policy_url = notice.get("policy_url", site.policy_url)
    language = event.locale or notice.get("default_locale", site.default_locale)
    evidence = None
    if event.evidence_salt is not None:
        # Erasure empties these columns: an erased subject's receipt shows no evidence.
        evidence = {"ipPrefix": event.ip_prefix, "userAgent": event.user_agent, "pageUrl": event.page_url}
    controller = site.controller or {}
    return {
        "version": KANTARA_VERSION,
        # Where the person was (the rule applied there), else the controller's own country: the law of its
        # establishment applies wherever the person is (GDPR Art. 3(1)).
        "jurisdiction": event.country or controller.get("country") or UNKNOWN_JURISDICTION,
        "consentTimestamp": int(event.received_at.timestamp()),
        "collectionMethod": COLLECTION_METHODS.get(event.source, event.source),
        "consentReceiptID": event.id,
        "language": language,
        "piiPrincipalId": event.subject_id,
        "piiControllers": [_controller(controller, name, policy_url)],
        "policyUrl": policy_url or NOT_PROVIDED,
        "services": [{"service": name, "purposes": _purposes(event, notice, language, {name, controller.get("name")})}],
        "sensitive": False,
        "spiCat": [],
        # Where Kantara has no field: the log's own, as the audit export and the event's hash carry them.
        "receivedAt": chain.format_time(event.received_at),
        "action": event.action,
        "givenBy": event.given_by,
        "noticeVersion": event.notice_version,
        "noticeHash": event.notice_hash,
        "mode": event.mode,
        "gpc": bool(event.gpc),
        "expiresAt": chain.format_time(event.expires_at),
        "withdrawalMethod": WITHDRAWAL_METHOD,
        # Policy section 8: where the record is kept, as the operator declares it.
        "storageLocation": storage_location,
        "evidence": evidence,
        "eventHash": event.hash,
        "log": log_section(event, site),
    }


def log_section(event: ConsentEvent, site: Site) -> dict:
    """The event's proof of inclusion: pending (with the log's signed statement of the entry) until the sequencer
    integrates it, then its index, its RFC 9162 inclusion proof and the signed, cosigned checkpoint it is in."""
    key = tlog.log_key()
    proof = tlog.inclusion(site, event)
    return {
        "status": "pending" if proof is None else "integrated",
        "origin": key.origin(site.key),
        "verifierKey": key.verifier_key,
        "entry": chain.event_payload(event, site.key),
        "signedEntry": tlog.entry_statement(site, event.id, event.hash, event.received_at, key),
        "index": None if proof is None else proof.index,
        "treeSize": None if proof is None else proof.size,
        "inclusionProof": None if proof is None else [tlog.b64(h) for h in proof.hashes],
        "checkpoint": None if proof is None else proof.signed.note,
    }


def _controller(controller: dict, name: str, policy_url: str | None) -> dict:
    """Kantara's `piiControllers` entry: the identity the operator set, or the site's name alone until then."""
    address = {"streetAddress": controller.get("address"), "addressCountry": controller.get("country")}
    entry = {
        "piiController": controller.get("name", name),
        # Whom to contact about one's data: the data protection officer where there is one (GDPR Art. 38(4)).
        "contact": controller.get("dpo") or controller.get("name") or NOT_PROVIDED,
        # A schema.org PostalAddress, as Kantara's example gives it.
        "address": {field: value for field, value in address.items() if value},
        "email": controller.get("email", NOT_PROVIDED),
        "phone": controller.get("phone", NOT_PROVIDED),
    }
    if policy_url:
        entry["piiControllerUrl"] = policy_url
    return entry


def _purposes(event: ConsentEvent, notice: dict, language: str, first_parties: set[str | None]) -> list[dict]:
    shown = {p["key"]: p for p in notice.get("purposes", [])}
    consent_type = "IMPLIED" if event.action in IMPLIED_ACTIONS else "EXPLICIT"
    termination = event.expires_at.isoformat() if event.expires_at else UNTIL_WITHDRAWN
    out = []
    for key, decision in event.decisions.items():
        purpose = shown.get(key, {})
        by_locale = purpose.get("texts", {})
        # A server may record any language tag; the names come from the closest locale the notice has.
        candidates = (language, language.split("-")[0], notice.get("default_locale"))
        texts = next((by_locale[c] for c in candidates if c in by_locale), {})
        # Third parties are known from the notice the person was shown: the cookie inventory's providers other
        # than the site or its controller, and the recipients the purpose names.
        providers = sorted({c["provider"] for c in notice.get("cookies", []) if c["purpose"] == key} - first_parties)
        recipients = [_recipient(r) for r in purpose.get("recipients", [])]
        third_parties = ", ".join(dict.fromkeys([*providers, *recipients]))
        if not third_parties and purpose.get("gpc"):
            third_parties = UNNAMED_THIRD_PARTIES
        out.append(
            {
                "purpose": texts.get("name", key),
                "purposeCategory": [key],
                "consentType": consent_type,
                "piiCategory": purpose.get("pii_categories") or SEEDED_PII_CATEGORIES.get(key) or [NOT_PROVIDED],
                "decision": decision,
                "primaryPurpose": purpose.get("refusable") is False,
                "termination": termination if decision == Decision.GRANTED else NOT_APPLICABLE,
                "thirdPartyDisclosure": bool(third_parties),
                "thirdPartyName": third_parties or None,
                # Kept apart from the others (PIPL Art. 23, 39): given by its own act, never by Accept all.
                "separateConsent": bool(purpose.get("separate_consent")),
            }
        )
    return out


def _recipient(recipient: dict | str) -> str:
    """A recipient as the receipt names it, `Name (contact)`; notices published before recipients had contacts
    name them as plain text."""
    if isinstance(recipient, str):
        return recipient
    return f"{recipient['name']} ({recipient['contact']})" if recipient.get("contact") else recipient["name"]
