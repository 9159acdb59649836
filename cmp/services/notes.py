"""Signed notes, checkpoints, cosignatures and signed entry statements, with Ed25519.

A site's consent log is published as a transparency log, and everything it states about itself travels as a
signed note (c2sp.org/signed-note): checkpoints (c2sp.org/tlog-checkpoint), witnesses' cosignatures on them
(c2sp.org/tlog-cosignature, the Ed25519 `cosignature/v1` type) and the statement that an event was received
(`entry/v1`, below). Keys are written the way Go's golang.org/x/mod/sumdb/note writes them, so that auditors can
check what cmp signs with tools that already exist rather than with cmp's own code.

Key strings:

- signer (private) key: ``PRIVATE+KEY+<name>+<key ID hex>+base64(type || 32-byte Ed25519 seed)``
- verifier key (vkey): ``<name>+<key ID hex>+base64(type || 32-byte Ed25519 public key)``
- key ID: the first four bytes of SHA-256(name || "\\n" || type || public key)

with signature type 0x01 for plain Ed25519 note signatures and 0x04 for Ed25519 cosignatures.

Signature lines are handled without their final newline; the note functions add it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar, Protocol, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04

KEY_ID_SIZE = 4
ED25519_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64
TIMESTAMP_SIZE = 8
# tlog-cosignature: the timestamp is a u64 that MUST NOT exceed 2^63 - 1.
MAX_TIMESTAMP = 2**63 - 1
# RFC 6962 Merkle tree roots (and cmp's event hashes) are SHA-256 digests.
HASH_SIZE = 32
# The tree size is read as a uint64, as Go's log package and tlog-cosignature's `end` field do.
MAX_TREE_SIZE = 2**64 - 1
# signed-note asks verifiers to bound the number of signatures and to accept at least 16; Go's note package
# refuses more than 100, and so do we, so both read the same notes.
MAX_SIGNATURES = 100

SIGNATURE_PREFIX = "\u2014 "
PRIVATE_KEY_PREFIX = "PRIVATE+KEY+"
COSIGNATURE_HEADER = "cosignature/v1"
ENTRY_STATEMENT_TYPE = "entry/v1"

_KEY_ID_HEX = re.compile(r"[0-9a-f]{8}")
_TREE_SIZE = re.compile(r"0|[1-9][0-9]*")
_RECEIVED_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_RECEIVED_AT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class NoteError(ValueError):
    """A key, note, checkpoint, cosignature or entry statement that is malformed or does not verify."""


# --- small checks and encodings ---------------------------------------------------------------------------------


def _has_control(value: str) -> bool:
    return any(ch < " " for ch in value)


def _check_utf8(value: str, what: str) -> None:
    """Python strings can hold lone surrogates, which no UTF-8 note can carry."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteError(f"{what} is not valid UTF-8") from exc


def _check_name(name: str) -> None:
    """Key names are non-empty, without Unicode spaces, plus signs or control characters (signed-note)."""
    if not isinstance(name, str) or not name:
        raise NoteError("key name must be a non-empty string")
    _check_utf8(name, "key name")
    if "+" in name or _has_control(name) or any(ch.isspace() for ch in name):
        raise NoteError(f"key name {name!r} must not contain spaces, '+' or control characters")


def _check_line(value: str, what: str) -> None:
    """A value that fills one line of a note text: non-empty, no newline, no control characters."""
    if not isinstance(value, str) or not value:
        raise NoteError(f"{what} must be a non-empty string")
    _check_utf8(value, what)
    if _has_control(value):
        raise NoteError(f"{what} must not contain newlines or control characters")


def check_text(text: str) -> None:
    """Raise NoteError unless `text` can be a note's text: UTF-8, ending in a newline, no other control character."""
    if not isinstance(text, str):
        raise NoteError("note text must be a string")
    _check_utf8(text, "note text")
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if any(ch < " " and ch != "\n" for ch in text):
        raise NoteError("note text must not contain control characters other than newline")


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(value: str, what: str) -> bytes:
    """Standard base64 with padding, and only its canonical spelling, so one value has one encoding."""
    try:
        data = base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise NoteError(f"{what} is not valid base64") from exc
    if b64encode(data) != value:
        raise NoteError(f"{what} is not canonical base64")
    return data


def key_id(name: str, alg: int, public_key: bytes) -> bytes:
    """SHA-256(name || "\\n" || type || public key)[:4], as signed-note recommends and Go computes."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + public_key).digest()[:KEY_ID_SIZE]


def _verifier_key_string(name: str, alg: int, public_key: bytes) -> str:
    return f"{name}+{key_id(name, alg, public_key).hex()}+{b64encode(bytes([alg]) + public_key)}"


def _private_key_string(name: str, alg: int, private_key: Ed25519PrivateKey) -> str:
    public_key = private_key.public_key().public_bytes_raw()
    seed = private_key.private_bytes_raw()
    return f"{PRIVATE_KEY_PREFIX}{name}+{key_id(name, alg, public_key).hex()}+{b64encode(bytes([alg]) + seed)}"


def _split_key(name: str, id_hex: str, material: str, alg: int) -> bytes:
    """Check a key string's name, ID and type; return its 32 bytes of key material."""
    _check_name(name)
    if not _KEY_ID_HEX.fullmatch(id_hex):
        raise NoteError("key ID must be 8 lowercase hex digits")
    data = b64decode(material, "key material")
    if not data:
        raise NoteError("key material is empty")
    if data[0] != alg:
        raise NoteError(f"key type 0x{data[0]:02x} is not the expected 0x{alg:02x}")
    if len(data) != 1 + ED25519_KEY_SIZE:
        raise NoteError(f"an Ed25519 key has {ED25519_KEY_SIZE} bytes, not {len(data) - 1}")
    return data[1:]


def _parse_verifier_key(vkey: str, alg: int) -> tuple[str, Ed25519PublicKey]:
    if not isinstance(vkey, str):
        raise NoteError("verifier key must be a string")
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise NoteError("verifier key must read <name>+<key ID>+<key>")
    name, id_hex, material = parts
    public_bytes = _split_key(name, id_hex, material, alg)
    if key_id(name, alg, public_bytes).hex() != id_hex:
        raise NoteError("verifier key's ID does not match its name and key")
    try:
        return name, Ed25519PublicKey.from_public_bytes(public_bytes)
    except ValueError as exc:
        raise NoteError("verifier key is not an Ed25519 public key") from exc


def _parse_private_key(skey: str, alg: int) -> tuple[str, Ed25519PrivateKey]:
    if not isinstance(skey, str) or not skey.startswith(PRIVATE_KEY_PREFIX):
        raise NoteError(f"private key must start with {PRIVATE_KEY_PREFIX!r}")
    parts = skey[len(PRIVATE_KEY_PREFIX) :].split("+", 2)
    if len(parts) != 3:
        raise NoteError("private key must read PRIVATE+KEY+<name>+<key ID>+<key>")
    name, id_hex, material = parts
    private_key = Ed25519PrivateKey.from_private_bytes(_split_key(name, id_hex, material, alg))
    if key_id(name, alg, private_key.public_key().public_bytes_raw()).hex() != id_hex:
        raise NoteError("private key's ID does not match its name and key")
    return name, private_key


# --- keys -------------------------------------------------------------------------------------------------------


class NoteVerifier(Protocol):
    """What open_note needs of a verifier: the (name, key ID) it answers for, and a check of one signature."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def verify(self, text: str, signature: bytes) -> bool: ...


class _Ed25519Signer:
    """An Ed25519 private key under a name, for one signature type (`ALG`)."""

    ALG: ClassVar[int]

    def __init__(self, name: str, private_key: Ed25519PrivateKey):
        _check_name(name)
        self.name = name
        self._private_key = private_key
        self._public_bytes = private_key.public_key().public_bytes_raw()
        self.key_id = key_id(name, self.ALG, self._public_bytes)

    @classmethod
    def from_private(cls, skey: str) -> Self:
        return cls(*_parse_private_key(skey, cls.ALG))

    @classmethod
    def generate(cls, name: str) -> Self:
        return cls(name, Ed25519PrivateKey.generate())

    @property
    def private_key(self) -> str:
        return _private_key_string(self.name, self.ALG, self._private_key)

    @property
    def verifier_key(self) -> str:
        return _verifier_key_string(self.name, self.ALG, self._public_bytes)

    def _line(self, signature: bytes) -> str:
        return Signature(self.name, self.key_id, signature).line

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}+{self.key_id.hex()}>"


class _Ed25519Verifier:
    """An Ed25519 public key under a name, for one signature type (`ALG`)."""

    ALG: ClassVar[int]

    def __init__(self, name: str, public_key: Ed25519PublicKey):
        _check_name(name)
        self.name = name
        self._public_key = public_key
        self.key_id = key_id(name, self.ALG, public_key.public_bytes_raw())

    @classmethod
    def from_key(cls, vkey: str) -> Self:
        return cls(*_parse_verifier_key(vkey, cls.ALG))

    @property
    def verifier_key(self) -> str:
        return _verifier_key_string(self.name, self.ALG, self._public_key.public_bytes_raw())

    def _check(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != ED25519_SIGNATURE_SIZE:
            return False
        try:
            self._public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}+{self.key_id.hex()}>"


class Signer(_Ed25519Signer):
    """Signs note texts with Ed25519 (signature type 0x01)."""

    ALG = ALG_ED25519

    def sign(self, text: str) -> str:
        """The signature line (without its newline) over `text`."""
        check_text(text)
        return self._line(self._private_key.sign(text.encode("utf-8")))

    def verifier(self) -> Verifier:
        return Verifier(self.name, self._private_key.public_key())


class Verifier(_Ed25519Verifier):
    """Checks Ed25519 note signatures (signature type 0x01)."""

    ALG = ALG_ED25519

    def verify(self, text: str, signature: bytes) -> bool:
        """Whether `signature` (without its key ID) is this key's signature over `text`."""
        return self._check(text.encode("utf-8"), signature)


def cosigned_message(checkpoint_body: str, timestamp: int) -> bytes:
    """What an Ed25519 cosignature/v1 signs: a header line, a time line, then the whole checkpoint text."""
    return f"{COSIGNATURE_HEADER}\ntime {timestamp}\n{checkpoint_body}".encode()


def _check_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp must be an integer from 0 to {MAX_TIMESTAMP}")


class CosignatureSigner(_Ed25519Signer):
    """A witness's key: timestamped Ed25519 cosignatures on checkpoints (tlog-cosignature, type 0x04).

    Its private key string has the same shape as a note signer's, with type byte 0x04.
    """

    ALG = ALG_COSIGNATURE_V1

    def sign(self, checkpoint_body: str, timestamp: int) -> str:
        """The cosignature line (without its newline) stating `checkpoint_body` as seen at `timestamp` (POSIX s)."""
        Checkpoint.parse(checkpoint_body)
        _check_timestamp(timestamp)
        signature = self._private_key.sign(cosigned_message(checkpoint_body, timestamp))
        return self._line(timestamp.to_bytes(TIMESTAMP_SIZE, "big") + signature)

    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self.name, self._private_key.public_key())


class CosignatureVerifier(_Ed25519Verifier):
    """Checks a witness's cosignatures; also usable with open_note, like any note verifier."""

    ALG = ALG_COSIGNATURE_V1

    def timestamp(self, checkpoint_body: str, signature: bytes) -> int | None:
        """The timestamp of a valid cosignature (timestamp || Ed25519 signature) over the body, else None."""
        if len(signature) != TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE:
            return None
        timestamp = int.from_bytes(signature[:TIMESTAMP_SIZE], "big")
        if timestamp > MAX_TIMESTAMP:
            return None
        if not self._check(cosigned_message(checkpoint_body, timestamp), signature[TIMESTAMP_SIZE:]):
            return None
        return timestamp

    def verify(self, text: str, signature: bytes) -> bool:
        return self.timestamp(text, signature) is not None


def generate_key(name: str) -> tuple[str, str]:
    """A new Ed25519 note key: (private key string, verifier key string), as Go's note.GenerateKey makes them."""
    signer = Signer.generate(name)
    return signer.private_key, signer.verifier_key


def generate_cosignature_key(name: str) -> tuple[str, str]:
    """A new Ed25519 cosigner key: (private key string, verifier key string), both with type 0x04."""
    signer = CosignatureSigner.generate(name)
    return signer.private_key, signer.verifier_key


# --- notes ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """One signature line: the signer's name and key ID, and the signature bytes that follow the key ID."""

    name: str
    key_id: bytes
    raw: bytes

    @property
    def line(self) -> str:
        return f"{SIGNATURE_PREFIX}{self.name} {b64encode(self.key_id + self.raw)}"


def parse_signature_line(line: str) -> Signature:
    """Read one signature line, given without its newline: em dash, space, key name, space, base64."""
    if not isinstance(line, str) or not line.startswith(SIGNATURE_PREFIX):
        raise NoteError("a signature line starts with an em dash and a space")
    name, space, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not space:
        raise NoteError("a signature line reads '\u2014 <name> <base64 signature>'")
    _check_name(name)
    data = b64decode(encoded, f"signature by {name}")
    if len(data) <= KEY_ID_SIZE:
        raise NoteError(f"signature by {name} is too short")
    return Signature(name, data[:KEY_ID_SIZE], data[KEY_ID_SIZE:])


@dataclass(frozen=True)
class Note:
    """A note's text and its signatures; `verified` lists those that open_note checked."""

    text: str
    signatures: tuple[Signature, ...]
    verified: tuple[Signature, ...] = field(default=())

    def render(self) -> str:
        return self.text + "\n" + "".join(f"{signature.line}\n" for signature in self.signatures)


def _check_signatures(signatures: Iterable[Signature]) -> tuple[Signature, ...]:
    """At most MAX_SIGNATURES, and one per key: a repeated key is an error rather than a line to skip."""
    result = tuple(signatures)
    if len(result) > MAX_SIGNATURES:
        raise NoteError(f"a note carries at most {MAX_SIGNATURES} signatures")
    seen: set[tuple[str, bytes]] = set()
    for signature in result:
        key = (signature.name, signature.key_id)
        if key in seen:
            raise NoteError(f"two signatures by {signature.name}+{signature.key_id.hex()}")
        seen.add(key)
    return result


def parse_note(note: str | bytes) -> Note:
    """Split a signed note into its text and signatures, checking its structure only (no signature is checked)."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("note is not valid UTF-8") from exc
    if not isinstance(note, str):
        raise NoteError("note must be a string")
    _check_utf8(note, "note")
    if any(ch < " " and ch != "\n" for ch in note):
        raise NoteError("note must not contain control characters other than newline")
    # The text ends at the note's last blank line; signature lines never hold one.
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise NoteError("note must end with a signature line and a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"a note carries at most {MAX_SIGNATURES} signatures")
    return Note(text, _check_signatures(parse_signature_line(line) for line in lines))


def _index(verifiers: Iterable[NoteVerifier]) -> dict[tuple[str, bytes], NoteVerifier]:
    known: dict[tuple[str, bytes], NoteVerifier] = {}
    for verifier in verifiers:
        key = (verifier.name, bytes(verifier.key_id))
        if key in known and known[key] is not verifier:
            raise NoteError(f"two verifiers for {verifier.name}+{verifier.key_id.hex()}")
        known[key] = verifier
    return known


def open_note(note: str | bytes, verifiers: Iterable[NoteVerifier]) -> Note:
    """Parse a note and check it against known keys, as signed-note requires.

    Signatures by unknown keys are kept but not checked (a key is known by name and key ID together). A known key's
    signature that fails is an error, and so is a note that no known key has signed.
    """
    parsed = parse_note(note)
    known = _index(verifiers)
    verified = []
    for signature in parsed.signatures:
        verifier = known.get((signature.name, signature.key_id))
        if verifier is None:
            continue
        if not verifier.verify(parsed.text, signature.raw):
            raise NoteError(f"signature by {signature.name}+{signature.key_id.hex()} does not verify")
        verified.append(signature)
    if not verified:
        raise NoteError("note has no signature from a known key")
    return Note(parsed.text, parsed.signatures, tuple(verified))


def sign_note(text: str, *signers: Signer) -> str:
    """The signed note: `text` (which must end in a newline), a blank line, then one line per signer."""
    check_text(text)
    if not signers:
        raise NoteError("a note needs at least one signer")
    lines = [signer.sign(text) for signer in signers]
    return Note(text, _check_signatures(parse_signature_line(line) for line in lines)).render()


def add_signatures(note: str, *lines: str) -> str:
    """The note with more signature lines (such as cosignatures) after its own.

    Only the structure is checked. A new line by a key that already signed replaces that key's old line, as Go's
    note.Sign does, so a witness's newer cosignature takes the place of its older one.
    """
    parsed = parse_note(note)
    added = _check_signatures(parse_signature_line(line) for line in lines)
    replaced = {(signature.name, signature.key_id) for signature in added}
    kept = tuple(s for s in parsed.signatures if (s.name, s.key_id) not in replaced)
    return Note(parsed.text, _check_signatures(kept + added)).render()


# --- checkpoints and cosignatures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head (tlog-checkpoint): origin line, decimal tree size, base64 root hash, extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "checkpoint origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 0 <= self.size <= MAX_TREE_SIZE:
            raise NoteError(f"checkpoint tree size must be an integer from 0 to {MAX_TREE_SIZE}")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise NoteError(f"checkpoint root hash must be {HASH_SIZE} bytes")
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for extension in self.extensions:
            _check_line(extension, "checkpoint extension line")

    def body(self) -> str:
        lines = [self.origin, str(self.size), b64encode(self.root), *self.extensions]
        return "".join(f"{line}\n" for line in lines)

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        check_text(body)
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("a checkpoint has an origin, a tree size and a root hash line")
        origin, size, root, *extensions = lines
        if not _TREE_SIZE.fullmatch(size):
            raise NoteError(f"checkpoint tree size {size!r} is not a decimal without leading zeros")
        return cls(origin, int(size), b64decode(root, "checkpoint root hash"), tuple(extensions))


def cosign(checkpoint_note: str, signer: CosignatureSigner, timestamp: int) -> str:
    """The cosignature line for a signed checkpoint note, to add with add_signatures.

    Only the note's structure and its checkpoint are checked here: a witness opens the note with the log's key, and
    checks consistency with what it saw before, before it cosigns.
    """
    return signer.sign(parse_note(checkpoint_note).text, timestamp)


def verify_cosignature(checkpoint_body: str, line_or_signature: str | Signature, verifier: CosignatureVerifier) -> int:
    """The timestamp of a cosignature by `verifier` over the checkpoint; NoteError when it is not one."""
    Checkpoint.parse(checkpoint_body)
    signature = (
        line_or_signature if isinstance(line_or_signature, Signature) else parse_signature_line(line_or_signature)
    )
    if (signature.name, signature.key_id) != (verifier.name, verifier.key_id):
        raise NoteError(f"signature is by {signature.name}+{signature.key_id.hex()}, not by this cosigner")
    timestamp = verifier.timestamp(checkpoint_body, signature.raw)
    if timestamp is None:
        raise NoteError(f"cosignature by {signature.name}+{signature.key_id.hex()} does not verify")
    return timestamp


# --- entry statements -------------------------------------------------------------------------------------------


def format_received_at(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds and Z: one spelling per instant, so the signed text is reproducible."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise NoteError("received_at must be a timezone-aware datetime")
    return value.astimezone(UTC).strftime(_RECEIVED_AT_FORMAT)


def parse_received_at(value: str) -> datetime:
    if not _RECEIVED_AT.fullmatch(value):
        raise NoteError(f"received_at {value!r} is not RFC 3339 UTC with microseconds (2024-01-02T03:04:05.000006Z)")
    try:
        return datetime.strptime(value, _RECEIVED_AT_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise NoteError(f"received_at {value!r} is not a valid time") from exc


@dataclass(frozen=True)
class EntryStatement:
    """A log's signed statement that it received an event (like a signed entry timestamp).

    Text: origin, ``entry/v1``, event ID, base64 event hash, and the receipt time, one per line.
    """

    origin: str
    event_id: str
    event_hash: bytes
    received_at: datetime

    def __post_init__(self) -> None:
        _check_line(self.origin, "entry statement origin")
        _check_line(self.event_id, "event ID")
        if any(ch.isspace() for ch in self.event_id):
            raise NoteError("event ID must not contain spaces")
        if not isinstance(self.event_hash, bytes) or len(self.event_hash) != HASH_SIZE:
            raise NoteError(f"event hash must be {HASH_SIZE} bytes")
        format_received_at(self.received_at)
        object.__setattr__(self, "received_at", self.received_at.astimezone(UTC))

    def text(self) -> str:
        lines = [
            self.origin,
            ENTRY_STATEMENT_TYPE,
            self.event_id,
            b64encode(self.event_hash),
            format_received_at(self.received_at),
        ]
        return "".join(f"{line}\n" for line in lines)


def entry_statement(origin: str, event_id: str, event_hash: bytes, received_at: datetime) -> str:
    """The text of an entry statement, ready for sign_note."""
    return EntryStatement(origin, event_id, event_hash, received_at).text()


def parse_entry_statement(text: str) -> EntryStatement:
    """Read an entry statement's text (as open_note returns it); NoteError unless it is exactly one."""
    check_text(text)
    lines = text[:-1].split("\n")
    if len(lines) != 5 or lines[1] != ENTRY_STATEMENT_TYPE:
        raise NoteError(f"an entry statement has five lines, the second being {ENTRY_STATEMENT_TYPE!r}")
    origin, _, event_id, event_hash, received_at = lines
    return EntryStatement(origin, event_id, b64decode(event_hash, "event hash"), parse_received_at(received_at))
