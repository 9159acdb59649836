"""Random ids, keyed digests of identifiers, and the signed visitor id."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import NamedTuple

from itsdangerous import BadSignature, Signer
from ulid import PureRandomPolicy, ULIDGenerator

from cmp.vocabulary import CONTROL_CHARACTERS, IdentifierKind

# Fresh randomness for every id: ULIDs stay sortable by time, and are never the predecessor plus one.
_ULIDS = ULIDGenerator(policy=PureRandomPolicy())

_VISITOR_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")
_CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
# A dictionary rather than IdentifierKind(kind): a bulk lookup parses 10,000 subjects per call.
_KINDS = {kind.value: kind for kind in IdentifierKind}


class InvalidIdentifier(ValueError):
    """A subject identifier that cannot be parsed."""


def new_event_id() -> str:
    """A sortable, unguessable id (ULID with 80 random bits)."""
    return str(_ULIDS.generate())


def new_subject_id() -> str:
    return secrets.token_urlsafe(16)


def new_visitor_id() -> str:
    return secrets.token_urlsafe(16)


# A named tuple rather than a frozen dataclass: a bulk lookup parses 10,000 subjects per call, and these build fast.
class Identifier(NamedTuple):
    kind: IdentifierKind
    value: str

    def digest(self, hmac_key: str, site_key: str) -> str:
        """HMAC-SHA256 over site, kind and value: equal values on two sites do not link."""
        message = f"{site_key}\x00{self.kind}:{self.value}".encode()
        return hmac.new(hmac_key.encode(), message, hashlib.sha256).hexdigest()


class Digester:
    """`Identifier.digest` for thousands of identifiers of one site: a bulk lookup hashes up to 10,000 per call.

    The keyed HMAC state is made once and copied per identifier, sparing each digest the key's set-up: about a
    quarter of hashing 10,000 identifiers one `hmac.new` at a time (bench/README.md, lookups).
    """

    def __init__(self, hmac_key: str, site_key: str):
        self._keyed = hmac.new(hmac_key.encode(), digestmod=hashlib.sha256)
        self._prefix = f"{site_key}\x00"

    def __call__(self, identifier: Identifier) -> str:
        mac = self._keyed.copy()
        mac.update(f"{self._prefix}{identifier.kind}:{identifier.value}".encode())
        return mac.hexdigest()


def parse_identifier(text: str) -> Identifier:
    """Parse ``visitor:<id>``, ``user:<account id>`` or ``email:<address>``; normalise emails.

    Messages never quote the text: it may be an email address.
    """
    kind, sep, value = text.partition(":")
    if not sep or not value:
        raise InvalidIdentifier("expected kind:value, where kind is visitor, user or email")
    known = _KINDS.get(kind)
    if known is None:
        raise InvalidIdentifier("unknown identifier kind; use visitor, user or email")
    if _CONTROL.search(value):
        raise InvalidIdentifier("identifiers hold no control characters")
    kind = known
    value = value.strip()
    if kind is IdentifierKind.EMAIL:
        value = value.lower()
        if not _EMAIL.fullmatch(value):
            raise InvalidIdentifier("not an email address")
    elif kind is IdentifierKind.VISITOR and not _VISITOR_ID.fullmatch(value):
        raise InvalidIdentifier("not a visitor id")
    elif not value or len(value) > 256:
        raise InvalidIdentifier("user ids are 1 to 256 characters")
    return Identifier(kind, value)


class VisitorIds:
    """Signs visitor ids per site, so a page can neither forge one nor move one to another site."""

    def __init__(self, secret_key: str, fallbacks: list[str] | None = None):
        # itsdangerous signs with the last key and accepts any of them (key rotation).
        self._keys = [*(fallbacks or []), secret_key]

    def _signer(self, site_key: str) -> Signer:
        return Signer(self._keys, salt=f"cmp.visitor:{site_key}")

    def sign(self, site_key: str, visitor_id: str) -> str:
        return self._signer(site_key).sign(visitor_id).decode()

    def identifier(self, site_key: str, text: str) -> Identifier:
        """`kind:value` as a caller names a subject; visitor ids come signed, as the banner keeps them."""
        kind, _, value = text.partition(":")
        if kind == IdentifierKind.VISITOR:
            visitor_id = self.unsign(site_key, value)
            if visitor_id is None:
                raise InvalidIdentifier("the visitor id is not one this service signed")
            return Identifier(IdentifierKind.VISITOR, visitor_id)
        return parse_identifier(text)

    def unsign(self, site_key: str, signed: str) -> str | None:
        """The visitor id, or None when the signature does not hold."""
        try:
            value = self._signer(site_key).unsign(signed).decode()
        except (BadSignature, UnicodeDecodeError):
            return None
        return value if _VISITOR_ID.fullmatch(value) else None
