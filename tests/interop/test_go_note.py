"""Go's golang.org/x/mod/sumdb/note reads the notes cmp signs, and cmp reads the notes Go signs.

The Go side is tests/interop/note_check.go, built offline against the Debian packaged sources
(golang-go and golang-golang-x-mod-dev); it takes one JSON request on stdin and answers in JSON on stdout.
Go's package knows nothing of cosignatures, so here they only have to leave a checkpoint note readable to it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cmp.services.notes import (
    Checkpoint,
    CosignatureSigner,
    NoteError,
    Signer,
    Verifier,
    add_signatures,
    cosign,
    entry_statement,
    generate_key,
    open_note,
    parse_entry_statement,
    sign_note,
)
from tests.interop import GoCall, go_program

SOURCE = Path(__file__).with_name("note_check.go")

ORIGIN = "cmp.example/log/shop"


@pytest.fixture(scope="module")
def go_note(tmp_path_factory) -> GoCall:
    """Build note_check once for the module; calling the result runs one request through it."""
    return go_program(SOURCE, "note", tmp_path_factory.mktemp("go-note"))


@pytest.fixture
def log_key() -> tuple[Signer, str]:
    skey, vkey = generate_key(ORIGIN)
    return Signer.from_private(skey), vkey


def _key(signer: Signer) -> str:
    return f"{signer.name}+{signer.key_id.hex()}"


def test_go_opens_our_checkpoint(go_note, log_key):
    signer, vkey = log_key
    body = Checkpoint(ORIGIN, 1234, hashlib.sha256(b"root").digest(), ("extension",)).body()
    answer = go_note({"op": "open", "note": sign_note(body, signer), "vkeys": [vkey]})
    assert answer == {"ok": True, "text": body, "verified": [_key(signer)]}


def test_go_opens_our_entry_statement(go_note, log_key):
    signer, vkey = log_key
    text = entry_statement(ORIGIN, "01HZX3V7K8Q9R2S4T6W8Y0A2C4", hashlib.sha256(b"event").digest(), datetime.now(UTC))
    answer = go_note({"op": "open", "note": sign_note(text, signer), "vkeys": [vkey]})
    assert answer["ok"] is True and answer["verified"] == [_key(signer)]
    assert parse_entry_statement(answer["text"]).text() == text


def test_go_opens_our_cosigned_checkpoint_with_the_log_key(go_note, log_key):
    """A witness's line (type 0x04) is an unknown key to Go, which must leave the note readable."""
    signer, vkey = log_key
    note = sign_note(Checkpoint(ORIGIN, 9, hashlib.sha256(b"nine").digest()).body(), signer)
    cosigned = add_signatures(note, cosign(note, CosignatureSigner.generate("witness.example/w1"), 1_700_000_000))
    answer = go_note({"op": "open", "note": cosigned, "vkeys": [vkey]})
    assert answer["ok"] is True and answer["verified"] == [_key(signer)]


@pytest.mark.parametrize("where", ["text", "signature"])
def test_go_rejects_our_note_once_altered(go_note, log_key, where):
    signer, vkey = log_key
    body = Checkpoint(ORIGIN, 1234, hashlib.sha256(b"root").digest()).body()
    note = sign_note(body, signer)
    if where == "text":
        altered = note.replace("\n1234\n", "\n1235\n", 1)
    else:
        cut = len(note) - 10
        altered = note[:cut] + ("A" if note[cut] != "A" else "B") + note[cut + 1 :]
    assert altered != note
    answer = go_note({"op": "open", "note": altered, "vkeys": [vkey]})
    assert answer["ok"] is False and answer["error"] == f"invalid signature for key {_key(signer)}"


def test_go_does_not_take_our_note_under_another_key(go_note, log_key):
    signer, _ = log_key
    _, other_vkey = generate_key(ORIGIN)
    answer = go_note({"op": "open", "note": sign_note("text\n", signer), "vkeys": [other_vkey]})
    assert answer == {"ok": False, "error": "note has no verifiable signatures"}


def test_we_open_a_note_go_signed_with_a_key_go_made(go_note):
    text = "go.example/log\n7\n" + "q" * 43 + "=\n"
    answer = go_note({"op": "sign", "name": "go.example/log", "text": text})
    assert answer["ok"] is True
    opened = open_note(answer["note"], [Verifier.from_key(answer["vkey"])])
    assert opened.text == text and [s.name for s in opened.verified] == ["go.example/log"]
    # Ed25519 is deterministic: Go's private key string signs here exactly as it did in Go.
    assert sign_note(text, Signer.from_private(answer["skey"])) == answer["note"]
    assert Signer.from_private(answer["skey"]).verifier_key == answer["vkey"]


def test_we_reject_a_note_go_signed_once_altered(go_note):
    answer = go_note({"op": "sign", "name": "go.example/log", "text": "hello from Go\n"})
    altered = answer["note"].replace("hello", "hullo", 1)
    with pytest.raises(NoteError, match="does not verify"):
        open_note(altered, [Verifier.from_key(answer["vkey"])])
