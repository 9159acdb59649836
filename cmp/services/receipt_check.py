"""Checking a consent receipt from the file alone, with nothing but the log's public key.

A receipt states a decision in Kantara's words and carries, under `log`, the entry its hash covers, the log's signed
statement that it received that entry and, once the sequencer has placed it, an inclusion proof into a signed
checkpoint. Everything the person reads is tied to the entry, the entry to its hash, the hash to the log's
signatures: a receipt whose fields were changed after it was issued, or one signed by another key, fails here with
the first field that does not hold. No database and no app settings are needed, so an auditor can run it anywhere.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

from cmp.services import chain, merkle, notes

PENDING = "pending"
INTEGRATED = "integrated"


class ReceiptError(ValueError):
    """The receipt does not prove what it states; the message names the field that fails."""


@dataclass(frozen=True)
class ReceiptCheck:
    status: str  # PENDING or INTEGRATED
    event_id: str
    origin: str
    index: int | None = None
    tree_size: int | None = None


def check_receipt(receipt: Mapping, verifier_key: str) -> ReceiptCheck:
    """Check everything `receipt` states against itself and the log key; `ReceiptError` at the first fault."""
    try:
        verifier = notes.Verifier.from_key(verifier_key)
    except notes.NoteError as exc:
        raise ReceiptError(f"the log key is not a signed-note verifier key: {exc}") from None
    log = _mapping(receipt.get("log"), "log")
    entry = _mapping(log.get("entry"), "log.entry")
    event_hash = _event_hash(receipt, entry)
    _check_kantara_fields(receipt, entry)
    origin = _string(log.get("origin"), "log.origin")
    expected_origin = f"{verifier.name}/{entry.get('site')}"
    if origin != expected_origin:
        raise ReceiptError(f"log.origin {origin!r} is not this key's log of site {entry.get('site')!r}")
    _check_signed_entry(log, entry, event_hash, origin, verifier)
    status = log.get("status")
    if status == PENDING:
        return ReceiptCheck(PENDING, entry["id"], origin)
    if status != INTEGRATED:
        raise ReceiptError(f"log.status {status!r} is neither {PENDING!r} nor {INTEGRATED!r}")
    index, size = _check_inclusion(log, event_hash, origin, verifier)
    return ReceiptCheck(INTEGRATED, entry["id"], origin, index, size)


def _mapping(value, what: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise ReceiptError(f"{what} is missing or not an object")
    return value


def _string(value, what: str) -> str:
    if not isinstance(value, str):
        raise ReceiptError(f"{what} is missing or not a string")
    return value


def _integer(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReceiptError(f"{what} is missing or not an integer")
    return value


def _event_hash(receipt: Mapping, entry: Mapping) -> bytes:
    """The receipt's eventHash, once it is shown to be the hash of the entry (RFC 8785, then SHA-256)."""
    stated = _string(receipt.get("eventHash"), "eventHash")
    if chain.sha256_hex(chain.canonical_json(dict(entry))) != stated:
        raise ReceiptError("eventHash is not the SHA-256 of log.entry (the entry or the hash was altered)")
    return bytes.fromhex(stated)


def _check_kantara_fields(receipt: Mapping, entry: Mapping) -> None:
    """What the person reads must be what the hashed entry says."""
    pairs = (
        ("consentReceiptID", "id"),
        ("piiPrincipalId", "subject_id"),
        ("action", "action"),
        ("receivedAt", "received_at"),
        ("noticeHash", "notice_hash"),
    )
    for field, key in pairs:
        if receipt.get(field) != entry.get(key):
            raise ReceiptError(f"{field} {receipt.get(field)!r} is not the logged entry's {key} {entry.get(key)!r}")
    decisions = _mapping(entry.get("decisions"), "log.entry.decisions")
    stated: dict[str, object] = {}
    for service in receipt.get("services") or []:
        for purpose in _mapping(service, "services[]").get("purposes") or []:
            purpose = _mapping(purpose, "services[].purposes[]")
            categories = purpose.get("purposeCategory") or [None]
            stated[categories[0]] = purpose.get("decision")
    for key in sorted(set(stated) | set(decisions), key=str):
        if stated.get(key) != decisions.get(key):
            raise ReceiptError(
                f"the decision for purpose {key!r} reads {stated.get(key)!r} but the logged entry has "
                f"{decisions.get(key)!r}"
            )


def _check_signed_entry(log: Mapping, entry: Mapping, event_hash: bytes, origin: str, verifier: notes.Verifier) -> None:
    """The log's signed promise must be over this very entry: its origin, id, hash and receive time."""
    try:
        note = notes.open_note(_string(log.get("signedEntry"), "log.signedEntry"), [verifier])
        statement = notes.parse_entry_statement(note.text)
    except notes.NoteError as exc:
        raise ReceiptError(f"log.signedEntry does not verify under the log key: {exc}") from None
    if statement.origin != origin:
        raise ReceiptError(f"log.signedEntry names origin {statement.origin!r}, not {origin!r}")
    if statement.event_id != entry.get("id"):
        raise ReceiptError(f"log.signedEntry names event {statement.event_id!r}, not {entry.get('id')!r}")
    if statement.event_hash != event_hash:
        raise ReceiptError("log.signedEntry names another event hash than eventHash")
    if notes.format_received_at(statement.received_at) != entry.get("received_at"):
        raise ReceiptError(
            f"log.signedEntry names receive time {notes.format_received_at(statement.received_at)}, "
            f"not {entry.get('received_at')!r}"
        )


def _check_inclusion(log: Mapping, event_hash: bytes, origin: str, verifier: notes.Verifier) -> tuple[int, int]:
    """The signed checkpoint is this log's, of the stated size, and the proof places the entry in its tree."""
    try:
        note = notes.open_note(_string(log.get("checkpoint"), "log.checkpoint"), [verifier])
        checkpoint = notes.Checkpoint.parse(note.text)
    except notes.NoteError as exc:
        raise ReceiptError(f"log.checkpoint does not verify under the log key: {exc}") from None
    if checkpoint.origin != origin:
        raise ReceiptError(f"log.checkpoint is of origin {checkpoint.origin!r}, not {origin!r}")
    index = _integer(log.get("index"), "log.index")
    size = _integer(log.get("treeSize"), "log.treeSize")
    if checkpoint.size != size:
        raise ReceiptError(f"log.treeSize {size} is not the signed checkpoint's size {checkpoint.size}")
    proof = log.get("inclusionProof")
    if not isinstance(proof, list):
        raise ReceiptError("log.inclusionProof is missing or not a list")
    try:
        hashes = [base64.b64decode(_string(h, "log.inclusionProof[]"), validate=True) for h in proof]
    except binascii.Error:
        raise ReceiptError("log.inclusionProof holds a hash that is not base64") from None
    if not merkle.verify_inclusion(merkle.leaf_hash(event_hash), index, size, hashes, checkpoint.root):
        raise ReceiptError(
            f"the inclusion proof does not place eventHash at index {index} of the signed tree of size {size}"
        )
    return index, size
