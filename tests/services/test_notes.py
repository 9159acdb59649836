"""Signed notes, checkpoints, cosignatures and entry statements: the published vectors, round trips and rejections."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from cmp.services.notes import (
    MAX_SIGNATURES,
    MAX_TIMESTAMP,
    Checkpoint,
    CosignatureSigner,
    CosignatureVerifier,
    EntryStatement,
    NoteError,
    Signature,
    Signer,
    Verifier,
    add_signatures,
    cosign,
    entry_statement,
    format_received_at,
    generate_cosignature_key,
    generate_key,
    key_id,
    open_note,
    parse_entry_statement,
    parse_note,
    parse_signature_line,
    sign_note,
    verify_cosignature,
)

# Go's golang.org/x/mod/sumdb/note documentation and note_test.go.
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)
ENOCH_SIG = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ="
)
GO_NOTE = f"{GO_TEXT}\n{PETER_SIG}\n"

# c2sp.org/signed-note's example.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n\u2014 example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

# c2sp.org/tlog-cosignature's example: a checkpoint signed by its log and cosigned by a witness at 1679315147.
SPEC_CHECKPOINT_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_COSIGNED_NOTE = (
    SPEC_CHECKPOINT_BODY + "\n"
    "\u2014 example.com/behind-the-sofa "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "\u2014 witness.example.com/w1 "
    "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)
SPEC_COSIGNATURE_TIME = 1679315147
# A published Ed25519 cosignature/v1 verifier key (type 0x04), from transparency-dev/formats' tests.
COSIGNER_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"

ORIGIN = "cmp.example/log/shop"
ROOT = hashlib.sha256(b"root").digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _line(name: str, data: bytes) -> str:
    return f"\u2014 {name} {_b64(data)}"


def _flip(data: bytes, index: int = -1) -> bytes:
    changed = bytearray(data)
    changed[index] ^= 0x01
    return bytes(changed)


@pytest.fixture
def log_signer() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture
def witness() -> CosignatureSigner:
    return CosignatureSigner.generate("witness.example/w1")


@pytest.fixture
def checkpoint_note(log_signer) -> str:
    return sign_note(Checkpoint(ORIGIN, 42, ROOT).body(), log_signer)


# --- published vectors -------------------------------------------------------------------------------------------


def test_go_signer_key_gives_go_verifier_key():
    signer = Signer.from_private(PETER_SKEY)
    assert (signer.name, signer.key_id) == ("PeterNeumann", bytes.fromhex("c74f20a3"))
    assert signer.verifier_key == PETER_VKEY
    assert signer.private_key == PETER_SKEY


def test_go_signing_vector_is_reproduced_byte_for_byte():
    assert sign_note(GO_TEXT, Signer.from_private(PETER_SKEY)) == GO_NOTE


def test_go_vectors_open_with_only_the_known_signature_verified():
    note = f"{GO_TEXT}\n{PETER_SIG}\n{ENOCH_SIG}\n"
    opened = open_note(note, [Verifier.from_key(PETER_VKEY)])
    assert opened.text == GO_TEXT
    assert [s.name for s in opened.signatures] == ["PeterNeumann", "EnochRoot"]
    assert [(s.name, s.key_id.hex()) for s in opened.verified] == [("PeterNeumann", "c74f20a3")]

    both = open_note(note, [Verifier.from_key(PETER_VKEY), Verifier.from_key(ENOCH_VKEY)])
    assert [s.name for s in both.verified] == ["PeterNeumann", "EnochRoot"]


def test_signed_note_spec_example_verifies():
    verifier = Verifier.from_key(SPEC_VKEY)
    assert verifier.verifier_key == SPEC_VKEY
    opened = open_note(SPEC_NOTE, [verifier])
    assert opened.text == "This is an example message.\n"
    assert opened.verified[0].key_id == bytes.fromhex("530d903a")


def test_key_id_is_the_truncated_hash_of_name_type_and_key():
    public_key = base64.b64decode(PETER_VKEY.split("+")[2])[1:]
    expected = hashlib.sha256(b"PeterNeumann\n\x01" + public_key).digest()[:4]
    assert key_id("PeterNeumann", 0x01, public_key) == expected == bytes.fromhex("c74f20a3")


def test_published_cosigner_key_reads_as_a_cosigner_key_only():
    verifier = CosignatureVerifier.from_key(COSIGNER_VKEY)
    assert (verifier.name, verifier.key_id.hex()) == ("remora.n621.de", "da77ade7")
    assert verifier.verifier_key == COSIGNER_VKEY
    with pytest.raises(NoteError, match="type 0x04"):
        Verifier.from_key(COSIGNER_VKEY)
    with pytest.raises(NoteError, match="type 0x01"):
        CosignatureVerifier.from_key(PETER_VKEY)


def test_spec_cosigned_checkpoint_parses_with_its_timestamp():
    note = parse_note(SPEC_COSIGNED_NOTE)
    assert Checkpoint.parse(note.text) == Checkpoint(
        "example.com/behind-the-sofa", 20852163, base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    )
    log, cosignature = note.signatures
    assert (log.name, len(log.raw)) == ("example.com/behind-the-sofa", 64)
    assert (cosignature.name, len(cosignature.raw)) == ("witness.example.com/w1", 72)
    assert int.from_bytes(cosignature.raw[:8], "big") == SPEC_COSIGNATURE_TIME


@pytest.mark.parametrize(
    ("parse", "key"),
    [(Verifier.from_key, PETER_VKEY), (Signer.from_private, PETER_SKEY)],
    ids=["verifier", "signer"],
)
def test_every_mangled_key_string_is_rejected(parse, key):
    """As Go's note_test.go does: every proper substring, and every one-character change, fails."""
    parse(key)
    for start in range(len(key) + 1):
        for end in range(start + 1, len(key) + 1):
            if (start, end) != (0, len(key)):
                with pytest.raises(NoteError):
                    parse(key[start:end])
    for index, char in enumerate(key):
        with pytest.raises(NoteError):
            parse(key[:index] + chr(ord(char) + 1) + key[index + 1 :])


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",  # wrong length, ID adjusted
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # unknown type, ID adjusted
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # key ID hex is lowercase
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_malformed_verifier_keys_are_rejected(vkey):
    with pytest.raises(NoteError):
        Verifier.from_key(vkey)


# --- round trips ---------------------------------------------------------------------------------------------------


def test_generated_keys_sign_and_verify():
    skey, vkey = generate_key("cmp.example/log")
    assert skey.startswith("PRIVATE+KEY+cmp.example/log+") and vkey.startswith("cmp.example/log+")
    signer, verifier = Signer.from_private(skey), Verifier.from_key(vkey)
    assert signer.key_id == verifier.key_id and signer.verifier_key == vkey
    note = sign_note("hello\n\nworld\n", signer)
    assert open_note(note, [verifier]).text == "hello\n\nworld\n"
    assert open_note(note.encode(), [verifier]).text == "hello\n\nworld\n"


def test_several_signers_each_add_a_line(log_signer):
    other = Signer.generate("mirror.example")
    note = sign_note("text\n", log_signer, other)
    opened = open_note(note, [log_signer.verifier(), other.verifier()])
    assert [s.name for s in opened.verified] == [ORIGIN, "mirror.example"]


@given(st.text(st.characters(min_codepoint=0x20, exclude_categories=("Cs",)) | st.just("\n")))
def test_any_valid_text_round_trips(body):
    signer = Signer.from_private(PETER_SKEY)
    text = body + "\n"
    note = sign_note(text, signer)
    assert parse_note(note).render() == note
    assert open_note(note, [signer.verifier()]).text == text


# --- rejections ----------------------------------------------------------------------------------------------------


def test_a_different_key_is_not_a_known_key(log_signer, checkpoint_note):
    stranger = Signer.generate(ORIGIN)
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_note(checkpoint_note, [stranger.verifier()])


def test_unknown_signers_only_are_rejected():
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_note(GO_NOTE, [Verifier.from_key(ENOCH_VKEY)])
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_note(GO_NOTE, [])


@pytest.mark.parametrize("index", [0, 10, len(GO_TEXT) - 2])
def test_altering_one_byte_of_the_text_is_caught(index):
    altered = GO_TEXT[:index] + chr(ord(GO_TEXT[index]) ^ 0x01) + GO_TEXT[index + 1 :]
    with pytest.raises(NoteError, match="PeterNeumann\\+c74f20a3 does not verify"):
        open_note(f"{altered}\n{PETER_SIG}\n", [Verifier.from_key(PETER_VKEY)])


@pytest.mark.parametrize("index", [4, 40, -1])
def test_altering_the_signature_is_caught(index):
    signature = parse_signature_line(PETER_SIG)
    altered = _line(signature.name, signature.key_id + _flip(signature.raw, index - 4 if index >= 4 else index))
    with pytest.raises(NoteError, match="does not verify"):
        open_note(f"{GO_TEXT}\n{altered}\n", [Verifier.from_key(PETER_VKEY)])


def test_a_bad_signature_from_a_known_key_fails_even_beside_a_good_one():
    bad = _line("PeterNeumann", bytes.fromhex("c74f20a3") + bytes(64))
    other = Signer.generate("other.example")
    note = add_signatures(sign_note(GO_TEXT, other), bad)
    with pytest.raises(NoteError, match="does not verify"):
        open_note(note, [other.verifier(), Verifier.from_key(PETER_VKEY)])


def test_ambiguous_verifiers_are_rejected():
    with pytest.raises(NoteError, match="two verifiers"):
        open_note(GO_NOTE, [Verifier.from_key(PETER_VKEY), Verifier.from_key(PETER_VKEY)])


@pytest.mark.parametrize(
    "note",
    [
        GO_TEXT,
        GO_TEXT + "\n",
        f"{GO_TEXT}\n{PETER_SIG}",
        f"\x01{GO_TEXT}\n{PETER_SIG}\n",
        f"{GO_TEXT}\r\n{PETER_SIG}\n",
        f"\ud800{GO_TEXT}\n{PETER_SIG}\n",
        f"{GO_TEXT}\n{PETER_SIG.replace('PeterNeumann', 'Peter Neumann')}\n",
        f"{GO_TEXT}\n{PETER_SIG.replace('PeterNeumann', 'Peter+Neumann')}\n",
        f"{GO_TEXT}\n{PETER_SIG.replace(chr(0x2014), '-')}\n",
        f"{GO_TEXT}\n{PETER_SIG.replace('PeterNeumann ', 'PeterNeumann')}\n",
        f"{GO_TEXT}\n{PETER_SIG}\nUnexpected line.\n",
        f"{GO_TEXT}\n{PETER_SIG}\n\n",
        f"{GO_TEXT}\n{PETER_SIG[:-1]}\n",  # padding missing
        f"{GO_TEXT}\n{PETER_SIG[:-2]}N=\n",  # "M=" with a trailing bit set: non-canonical base64
        f"{GO_TEXT}\n{PETER_SIG} \n",
        f"{GO_TEXT}\n\u2014 PeterNeumann {_b64(b'1234')}\n",  # key ID and nothing else
        f"{GO_TEXT}\n{PETER_SIG}\n{PETER_SIG}\n",  # the same line twice
        f"{GO_TEXT}\n{PETER_SIG}\n{_line('PeterNeumann', bytes.fromhex('c74f20a3') + bytes(64))}\n",  # one key twice
    ],
    ids=lambda note: repr(note[-30:]),
)
def test_malformed_notes_are_rejected(note):
    with pytest.raises(NoteError):
        parse_note(note)
    with pytest.raises(NoteError):
        open_note(note, [Verifier.from_key(PETER_VKEY)])


def test_invalid_utf8_bytes_are_rejected():
    with pytest.raises(NoteError, match="UTF-8"):
        parse_note(b"\xff" + GO_NOTE.encode())


def test_signature_count_is_bounded():
    signers = [Signer.generate(f"s{i}.example") for i in range(MAX_SIGNATURES + 1)]
    text = "many\n"
    lines = [s.sign(text) for s in signers]
    at_limit = text + "\n" + "".join(f"{line}\n" for line in lines[:MAX_SIGNATURES])
    assert len(open_note(at_limit, [signers[0].verifier()]).signatures) == MAX_SIGNATURES
    with pytest.raises(NoteError, match="at most"):
        parse_note(at_limit + lines[-1] + "\n")
    with pytest.raises(NoteError, match="at most"):
        add_signatures(at_limit, lines[-1])


@pytest.mark.parametrize("text", ["no newline", "", "tab\there\n", "cr\r\n"])
def test_sign_note_needs_a_valid_text(text):
    with pytest.raises(NoteError):
        sign_note(text, Signer.from_private(PETER_SKEY))


def test_sign_note_needs_a_signer_and_distinct_keys():
    with pytest.raises(NoteError, match="at least one signer"):
        sign_note("x\n")
    signer = Signer.from_private(PETER_SKEY)
    with pytest.raises(NoteError, match="two signatures"):
        sign_note("x\n", signer, signer)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u00a0b", "a\u2028b", "tab\t"])
def test_invalid_key_names_are_refused(name):
    with pytest.raises(NoteError, match="key name"):
        Signer.generate(name)


def test_add_signatures_appends_and_replaces_a_keys_older_line(log_signer):
    note = sign_note("text\n", log_signer)
    other = Signer.generate("other.example")
    with_other = add_signatures(note, other.sign("text\n"))
    assert [s.name for s in parse_note(with_other).signatures] == [ORIGIN, "other.example"]
    replacement = _line("other.example", other.key_id + bytes(64))
    replaced = parse_note(add_signatures(with_other, replacement))
    assert replaced.signatures[-1] == parse_signature_line(replacement)
    assert len(replaced.signatures) == 2
    with pytest.raises(NoteError, match="two signatures"):
        add_signatures(note, replacement, replacement)


# --- checkpoints ---------------------------------------------------------------------------------------------------


def test_checkpoint_body_round_trips():
    checkpoint = Checkpoint(ORIGIN, 7, ROOT, ("ext one", "ext two"))
    body = checkpoint.body()
    assert body == f"{ORIGIN}\n7\n{_b64(ROOT)}\next one\next two\n"
    assert Checkpoint.parse(body) == checkpoint
    assert Checkpoint.parse(Checkpoint("o", 0, ROOT).body()).size == 0


def test_checkpoint_in_a_signed_note_opens(log_signer, checkpoint_note):
    opened = open_note(checkpoint_note, [log_signer.verifier()])
    assert Checkpoint.parse(opened.text) == Checkpoint(ORIGIN, 42, ROOT)


@pytest.mark.parametrize("size", ["01", "00", "-1", "+1", "1.0", "1e3", "x", " 1", "1 ", "", "\u0661", str(2**64)])
def test_checkpoint_with_a_bad_size_is_rejected(size):
    with pytest.raises(NoteError, match="tree size"):
        Checkpoint.parse(f"{ORIGIN}\n{size}\n{_b64(ROOT)}\n")


@pytest.mark.parametrize(
    "root",
    ["not base64!", _b64(ROOT)[:-1], _b64(ROOT) + "=", _b64(ROOT[:31]), _b64(ROOT + b"\0"), ""],
    ids=["alphabet", "unpadded", "overpadded", "short", "long", "empty"],
)
def test_checkpoint_with_a_bad_root_is_rejected(root):
    with pytest.raises(NoteError, match="root hash"):
        Checkpoint.parse(f"{ORIGIN}\n1\n{root}\n")


@pytest.mark.parametrize(
    "body",
    [f"\n1\n{_b64(ROOT)}\n", f"{ORIGIN}\n1\n", f"{ORIGIN}\n1\n{_b64(ROOT)}", f"{ORIGIN}\n1\n{_b64(ROOT)}\n\n"],
    ids=["empty origin", "two lines", "no final newline", "empty extension"],
)
def test_malformed_checkpoints_are_rejected(body):
    with pytest.raises(NoteError):
        Checkpoint.parse(body)


@pytest.mark.parametrize(
    "fields",
    [("", 1, ROOT), ("a\nb", 1, ROOT), (ORIGIN, -1, ROOT), (ORIGIN, True, ROOT), (ORIGIN, 1, ROOT[:16])],
)
def test_checkpoints_are_checked_when_built(fields):
    with pytest.raises(NoteError):
        Checkpoint(*fields)


# --- cosignatures --------------------------------------------------------------------------------------------------


def _spec_message(body: str, timestamp: int) -> bytes:
    """tlog-cosignature's signed message, written out from the specification's text."""
    return b"cosignature/v1\n" + b"time " + str(timestamp).encode() + b"\n" + body.encode()


def test_cosignature_round_trip_keeps_its_timestamp(log_signer, witness, checkpoint_note):
    line = cosign(checkpoint_note, witness, 1_700_000_123)
    cosigned = add_signatures(checkpoint_note, line)
    note = open_note(cosigned, [log_signer.verifier()])
    assert verify_cosignature(note.text, line, witness.verifier()) == 1_700_000_123
    assert verify_cosignature(note.text, note.signatures[1], witness.verifier()) == 1_700_000_123
    both = open_note(cosigned, [log_signer.verifier(), witness.verifier()])
    assert [s.name for s in both.verified] == [ORIGIN, witness.name]


@pytest.mark.parametrize("timestamp", [0, 1, MAX_TIMESTAMP])
def test_cosignature_timestamps_at_the_edges(witness, checkpoint_note, timestamp):
    line = cosign(checkpoint_note, witness, timestamp)
    assert verify_cosignature(parse_note(checkpoint_note).text, line, witness.verifier()) == timestamp


@pytest.mark.parametrize("timestamp", [-1, MAX_TIMESTAMP + 1, 1.5, True])
def test_out_of_range_timestamps_are_refused(witness, checkpoint_note, timestamp):
    with pytest.raises(NoteError, match="timestamp"):
        cosign(checkpoint_note, witness, timestamp)


def test_cosignature_over_one_checkpoint_does_not_verify_over_another(log_signer, witness, checkpoint_note):
    line = cosign(checkpoint_note, witness, 1_700_000_000)
    for other in (Checkpoint(ORIGIN, 43, ROOT), Checkpoint(ORIGIN, 42, _flip(ROOT)), Checkpoint("x.example", 42, ROOT)):
        with pytest.raises(NoteError, match="does not verify"):
            verify_cosignature(other.body(), line, witness.verifier())
        with pytest.raises(NoteError, match="does not verify"):
            open_note(add_signatures(sign_note(other.body(), log_signer), line), [witness.verifier()])


def test_cosignature_with_a_changed_timestamp_does_not_verify(witness, checkpoint_note):
    signature = parse_signature_line(cosign(checkpoint_note, witness, 1_700_000_000))
    moved = (1_700_000_001).to_bytes(8, "big") + signature.raw[8:]
    with pytest.raises(NoteError, match="does not verify"):
        verify_cosignature(
            parse_note(checkpoint_note).text, Signature(witness.name, witness.key_id, moved), witness.verifier()
        )


def test_cosignature_by_another_cosigner_is_not_accepted(witness, checkpoint_note):
    line = cosign(checkpoint_note, CosignatureSigner.generate(witness.name), 1)
    with pytest.raises(NoteError, match="not by this cosigner"):
        verify_cosignature(parse_note(checkpoint_note).text, line, witness.verifier())


def test_plain_note_signature_is_not_a_cosignature(checkpoint_note):
    """The same Ed25519 key under type 0x01 and 0x04 has two key IDs, and the messages differ anyway."""
    seed = bytes(range(32))
    plain = Signer(ORIGIN, Ed25519PrivateKey.from_private_bytes(seed))
    cosigner = CosignatureSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(seed))
    assert plain.key_id != cosigner.key_id
    body = parse_note(checkpoint_note).text
    forged = Signature(ORIGIN, cosigner.key_id, bytes(8) + parse_signature_line(plain.sign(body)).raw)
    with pytest.raises(NoteError, match="does not verify"):
        verify_cosignature(body, forged, cosigner.verifier())


def test_cosignature_matches_the_specification_byte_layout(witness, checkpoint_note):
    """An independent check written from tlog-cosignature: key ID, timestamp bytes and signed message."""
    body = parse_note(checkpoint_note).text
    line = cosign(checkpoint_note, witness, SPEC_COSIGNATURE_TIME)
    name, encoded = line.removeprefix("\u2014 ").split(" ")
    data = base64.b64decode(encoded)
    vkey_name, vkey_id, vkey_material = witness.verifier_key.split("+", 2)
    material = base64.b64decode(vkey_material)
    assert (name, vkey_name, material[0], len(data)) == (witness.name, witness.name, 0x04, 4 + 8 + 64)
    assert data[:4] == hashlib.sha256(name.encode() + b"\n\x04" + material[1:]).digest()[:4] == bytes.fromhex(vkey_id)
    assert data[4:12] == SPEC_COSIGNATURE_TIME.to_bytes(8, "big")
    Ed25519PublicKey.from_public_bytes(material[1:]).verify(data[12:], _spec_message(body, SPEC_COSIGNATURE_TIME))


def test_a_cosignature_made_from_the_specification_verifies(checkpoint_note):
    private_key = Ed25519PrivateKey.generate()
    public = private_key.public_key().public_bytes_raw()
    name = "witness.example/hand"
    hand_key_id = hashlib.sha256(name.encode() + b"\n\x04" + public).digest()[:4]
    verifier = CosignatureVerifier.from_key(f"{name}+{hand_key_id.hex()}+{_b64(bytes([0x04]) + public)}")
    body = parse_note(checkpoint_note).text
    timestamp = 1_234_567_890
    raw = timestamp.to_bytes(8, "big") + private_key.sign(_spec_message(body, timestamp))
    assert verify_cosignature(body, _line(name, hand_key_id + raw), verifier) == timestamp

    beyond = 2**63
    raw = beyond.to_bytes(8, "big") + private_key.sign(_spec_message(body, beyond))
    with pytest.raises(NoteError, match="does not verify"):
        verify_cosignature(body, _line(name, hand_key_id + raw), verifier)


def test_cosigner_key_strings_round_trip():
    skey, vkey = generate_cosignature_key("witness.example/w2")
    signer, verifier = CosignatureSigner.from_private(skey), CosignatureVerifier.from_key(vkey)
    assert signer.verifier_key == vkey and signer.key_id == verifier.key_id
    assert base64.b64decode(skey.split("+", 4)[4])[0] == 0x04
    with pytest.raises(NoteError, match="type 0x01"):
        CosignatureSigner.from_private(PETER_SKEY)
    with pytest.raises(NoteError, match="type 0x04"):
        Signer.from_private(skey)


def test_cosigning_needs_a_checkpoint(witness):
    note = sign_note("just text\n", Signer.from_private(PETER_SKEY))
    with pytest.raises(NoteError, match="checkpoint"):
        cosign(note, witness, 1)


# --- entry statements ----------------------------------------------------------------------------------------------

EVENT_ID = "01HZX3V7K8Q9R2S4T6W8Y0A2C4"
EVENT_HASH = hashlib.sha256(b"event").digest()
RECEIVED_AT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def test_entry_statement_text_is_exact():
    assert entry_statement(ORIGIN, EVENT_ID, EVENT_HASH, RECEIVED_AT) == (
        f"{ORIGIN}\nentry/v1\n{EVENT_ID}\n{_b64(EVENT_HASH)}\n2024-05-06T07:08:09.123456Z\n"
    )


def test_entry_statement_round_trips_through_a_signed_note(log_signer):
    note = sign_note(entry_statement(ORIGIN, EVENT_ID, EVENT_HASH, RECEIVED_AT), log_signer)
    statement = parse_entry_statement(open_note(note, [log_signer.verifier()]).text)
    assert statement == EntryStatement(ORIGIN, EVENT_ID, EVENT_HASH, RECEIVED_AT)


def test_entry_statement_time_is_written_in_utc():
    paris = timezone(timedelta(hours=2))
    local = datetime(2024, 5, 6, 9, 8, 9, tzinfo=paris)
    text = entry_statement(ORIGIN, EVENT_ID, EVENT_HASH, local)
    assert text.endswith("\n2024-05-06T07:08:09.000000Z\n")
    assert parse_entry_statement(text).received_at == local
    assert format_received_at(local) == "2024-05-06T07:08:09.000000Z"


@pytest.mark.parametrize(
    "fields",
    [
        ("", EVENT_ID, EVENT_HASH, RECEIVED_AT),
        (ORIGIN, "", EVENT_HASH, RECEIVED_AT),
        (ORIGIN, "two words", EVENT_HASH, RECEIVED_AT),
        (ORIGIN, EVENT_ID, EVENT_HASH[:20], RECEIVED_AT),
        (ORIGIN, EVENT_ID, EVENT_HASH, RECEIVED_AT.replace(tzinfo=None)),
    ],
    ids=["empty origin", "empty id", "spaced id", "short hash", "naive time"],
)
def test_entry_statement_fields_are_checked(fields):
    with pytest.raises(NoteError):
        entry_statement(*fields)


@pytest.mark.parametrize(
    "text",
    [
        f"{ORIGIN}\nentry/v2\n{EVENT_ID}\n{_b64(EVENT_HASH)}\n2024-05-06T07:08:09.123456Z\n",
        f"{ORIGIN}\nentry/v1\n{EVENT_ID}\n{_b64(EVENT_HASH)}\n2024-05-06T07:08:09.123456Z\nextra\n",
        f"{ORIGIN}\nentry/v1\n{EVENT_ID}\n{_b64(EVENT_HASH)}\n2024-05-06T07:08:09Z\n",
        f"{ORIGIN}\nentry/v1\n{EVENT_ID}\n{_b64(EVENT_HASH)}\n2024-05-06T07:08:09.123456+00:00\n",
        f"{ORIGIN}\nentry/v1\n{EVENT_ID}\n{_b64(EVENT_HASH)}\n2024-02-30T07:08:09.123456Z\n",
        f"{ORIGIN}\nentry/v1\n{EVENT_ID}\n{EVENT_HASH.hex()}\n2024-05-06T07:08:09.123456Z\n",
        f"{ORIGIN}\nentry/v1\n{EVENT_ID}\n{_b64(EVENT_HASH)}\n2024-05-06T07:08:09.123456Z",
        Checkpoint(ORIGIN, 1, ROOT).body(),
    ],
    ids=["type", "extra line", "no fraction", "offset", "no such day", "hex hash", "no newline", "checkpoint"],
)
def test_malformed_entry_statements_are_rejected(text):
    with pytest.raises(NoteError):
        parse_entry_statement(text)
