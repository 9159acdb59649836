"""The transparency log over HTTP, checked as an outside verifier would: signatures with the public key, proofs with
RFC 9162's verification, tiles against the tree the database holds."""

from __future__ import annotations

import base64

import pytest
import sqlalchemy as sa

from cmp.extensions import db
from cmp.models import ChainHead, LogCosignature, LogTile
from cmp.services import merkle, notes, tlog
from tests.helpers import post_consent

LOG = "/api/v1/sites/shop/log"
DECISIONS = 5


@pytest.fixture
def logged(client, site):
    """Five decisions, each integrated by its own request: checkpoints of sizes 1 to 5."""
    for number in range(DECISIONS):
        action = "accept_all" if number % 2 == 0 else "reject_all"
        assert post_consent(client, action=action).status_code == 201
    db.session.expire_all()
    return site


def opened(note: str) -> notes.Checkpoint:
    return notes.Checkpoint.parse(notes.open_note(note, [tlog.log_key().verifier]).text)


def roots(client) -> dict[int, bytes]:
    return {size: opened(client.get(f"{LOG}/checkpoints/{size}").text).root for size in range(1, DECISIONS + 1)}


def stored_leaves(site_id: int) -> list[bytes]:
    data = db.session.scalar(sa.select(LogTile.hashes).where(LogTile.site_id == site_id, LogTile.level == 0))
    return [data[i : i + merkle.HASH_SIZE] for i in range(0, len(data), merkle.HASH_SIZE)]


def test_the_latest_checkpoint_is_signed_by_the_log_and_matches_the_head(client, logged):
    response = client.get(f"{LOG}/checkpoint")

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.headers["Cache-Control"] == "no-store"
    checkpoint = opened(response.text)
    head = db.session.get(ChainHead, logged.id)
    assert checkpoint.origin == tlog.log_key().origin("shop")
    assert (checkpoint.size, checkpoint.root.hex()) == (head.seq, head.hash) == (DECISIONS, head.hash)


def test_every_checkpoint_is_kept_and_grows_the_same_tree(client, logged):
    leaves = stored_leaves(logged.id)

    for size, root in roots(client).items():
        assert root == merkle.root_of(leaves[:size])


@pytest.mark.parametrize(
    "path",
    ["/api/v1/sites/nowhere/log/checkpoint", f"{LOG}/checkpoints/{DECISIONS + 1}", f"{LOG}/checkpoints/0"],
)
def test_unknown_sites_and_sizes_are_404(client, logged, path):
    assert client.get(path).status_code == 404


def test_a_log_without_events_has_no_checkpoint(client, site):
    response = client.get(f"{LOG}/checkpoint")

    assert response.status_code == 404
    assert response.json["error"]["code"] == "empty_log"


def test_tiles_are_byte_identical_to_the_stored_tree(client, logged):
    stored = db.session.scalar(sa.select(LogTile.hashes).where(LogTile.site_id == logged.id, LogTile.level == 0))

    whole = client.get(f"{LOG}/{merkle.tile_path(0, 0, DECISIONS)}")
    narrower = client.get(f"{LOG}/{merkle.tile_path(0, 0, 2)}")

    assert whole.status_code == 200 and whole.mimetype == "application/octet-stream"
    assert whole.data == bytes(stored) and len(whole.data) == DECISIONS * merkle.HASH_SIZE
    assert narrower.data == bytes(stored)[: 2 * merkle.HASH_SIZE]
    assert merkle.root_of(stored_leaves(logged.id)) == opened(client.get(f"{LOG}/checkpoint").text).root


@pytest.mark.parametrize(
    "path",
    [
        merkle.tile_path(0, 0, DECISIONS + 1),  # wider than the tree
        merkle.tile_path(0, 1, 1),  # a tile the tree has not reached
        merkle.tile_path(1, 0, 1),  # a level the tree has not reached
        "tile/0/000",  # full width: this tile is partial
        "tile/zero/000",
    ],
)
def test_tiles_the_tree_does_not_hold_are_404(client, logged, path):
    assert client.get(f"{LOG}/{path}").status_code == 404


def test_inclusion_proofs_verify_for_every_leaf_of_every_checkpoint(client, logged):
    leaves = stored_leaves(logged.id)

    for size, root in roots(client).items():
        for index in range(size):
            proof = client.get(f"{LOG}/proofs/inclusion?index={index}&size={size}").json
            hashes = [base64.b64decode(h) for h in proof["hashes"]]
            assert proof["tree_size"] == size and base64.b64decode(proof["leaf_hash"]) == leaves[index]
            assert merkle.verify_inclusion(leaves[index], index, size, hashes, root)
            assert opened(proof["checkpoint"]).root == root
            assert proof["removed"] is False


def test_an_inclusion_proof_defaults_to_the_latest_checkpoint(client, logged):
    proof = client.get(f"{LOG}/proofs/inclusion?index=0").json

    assert proof["tree_size"] == DECISIONS


@pytest.mark.parametrize(
    ("query", "status"),
    [(f"index={DECISIONS}", 404), (f"index=0&size={DECISIONS + 1}", 404), ("", 422), ("index=-1", 422)],
)
def test_inclusion_past_the_tree_or_unreadable_is_refused(client, logged, query, status):
    assert client.get(f"{LOG}/proofs/inclusion?{query}").status_code == status


def test_consistency_proofs_verify_between_every_pair_of_checkpoints(client, logged):
    known = roots(client)

    for old in known:
        for new in known:
            if old > new:
                continue
            proof = client.get(f"{LOG}/proofs/consistency?old={old}&new={new}").json
            hashes = [base64.b64decode(h) for h in proof["hashes"]]
            assert (proof["old"], proof["new"]) == (old, new)
            assert merkle.verify_consistency(old, new, known[old], known[new], hashes)


@pytest.mark.parametrize("query", ["old=3&new=2", f"old=1&new={DECISIONS + 1}", "old=0&new=2", "new=2"])
def test_impossible_consistency_questions_are_refused(client, logged, query):
    assert client.get(f"{LOG}/proofs/consistency?{query}").status_code == 422


def test_a_site_that_does_not_exist_has_no_proofs(client, logged):
    assert client.get("/api/v1/sites/nowhere/log/proofs/inclusion?index=0").status_code == 404
    assert client.get("/api/v1/sites/nowhere/log/proofs/consistency?old=1&new=1").status_code == 404


@pytest.fixture
def witness_key(logged):
    private, public = notes.generate_cosignature_key("witness.example")
    tlog.add_witness(logged, public)
    db.session.commit()
    return notes.CosignatureSigner.from_private(private)


def cosign(client, size: int, signer: notes.CosignatureSigner, timestamp: int = 1_700_000_000):
    line = notes.cosign(client.get(f"{LOG}/checkpoints/{size}").text, signer, timestamp)
    return line, client.post(f"{LOG}/cosignatures", json={"size": size, "cosignature": line})


def cosignature_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(LogCosignature))


def test_a_registered_witness_cosignature_is_accepted_once_and_served(client, witness_key):
    first, accepted = cosign(client, DECISIONS, witness_key, 1_700_000_000)
    _, repeated = cosign(client, DECISIONS, witness_key, 1_700_000_999)

    assert accepted.status_code == 201
    assert accepted.json == {"size": DECISIONS, "witness": "witness.example", "timestamp": 1_700_000_000}
    assert repeated.status_code == 201 and repeated.json["timestamp"] == 1_700_000_000
    assert cosignature_count() == 1
    served = client.get(f"{LOG}/checkpoint").text
    assert served.endswith(first + "\n")
    notes.open_note(served, [witness_key.verifier()])


def test_a_cosignature_by_an_unknown_witness_is_refused(client, witness_key):
    stranger = notes.CosignatureSigner.generate("stranger.example")

    _, response = cosign(client, DECISIONS, stranger)

    assert response.status_code == 409
    assert response.json["error"]["code"] == "unknown_witness"
    assert cosignature_count() == 0


def test_a_cosignature_over_another_checkpoint_is_refused(client, witness_key):
    line = notes.cosign(client.get(f"{LOG}/checkpoints/2").text, witness_key, 1_700_000_000)

    response = client.post(f"{LOG}/cosignatures", json={"size": 3, "cosignature": line})

    assert response.status_code == 409
    assert cosignature_count() == 0


def test_a_cosignature_of_a_size_never_signed_is_404(client, witness_key):
    line = notes.cosign(client.get(f"{LOG}/checkpoints/2").text, witness_key, 1_700_000_000)

    response = client.post(f"{LOG}/cosignatures", json={"size": DECISIONS + 1, "cosignature": line})

    assert response.status_code == 404
    assert cosignature_count() == 0


def test_an_inclusion_proof_carries_every_cosignature_in_three_statements(client, logged, witness_key):
    private, public = notes.generate_cosignature_key("second.example")
    tlog.add_witness(logged, public)
    db.session.commit()
    second = notes.CosignatureSigner.from_private(private)
    first_line, _ = cosign(client, DECISIONS, witness_key, 1_700_000_000)
    second_line, _ = cosign(client, DECISIONS, second, 1_700_000_001)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        latest = client.get(f"{LOG}/proofs/inclusion?index=2")
        sized = client.get(f"{LOG}/proofs/inclusion?index=2&size={DECISIONS}")
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)

    # The site; the checkpoint with its cosignatures; the tiles with whether an event holds the leaf.
    assert len(statements) <= 2 * 3
    assert latest.json == sized.json
    note = latest.json["checkpoint"]
    assert note == client.get(f"{LOG}/checkpoint").text
    assert note.endswith(f"{first_line}\n{second_line}\n")
    notes.open_note(note, [witness_key.verifier(), second.verifier()])
