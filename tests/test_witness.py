"""A witness against the log: it follows a growing log, and refuses a rewritten history or a split view.

The witness reads the log through the Flask test client here (its HTTP side is passed in); the rewrite is done
as an operator with full database access could do it: every hash, tile, head and checkpoint recomputed and
re-signed with the real log key, so that the database verifies on its own. Only what the witness holds catches it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from cmp.extensions import db
from cmp.models import ChainHead, ConsentEvent, LogCheckpoint, LogCosignature, LogTile
from cmp.models.types import utcnow
from cmp.services import chain, merkle, notes, receipt_check, tlog
from cmp.services import witness as witnessing
from tests.helpers import receipt_paths

LOG = "/api/v1/sites/shop/log"
NOW = 1_700_000_000


def client_fetch(client) -> witnessing.Fetch:
    def fetch(path: str) -> bytes:
        response = client.get(f"{LOG}/{path}")
        if response.status_code != 200:
            raise witnessing.WitnessError(f"HTTP {response.status_code}")
        return response.data

    return fetch


def client_post(client) -> witnessing.Post:
    def post(path: str, body: dict) -> None:
        response = client.post(f"{LOG}/{path}", json=body)
        if response.status_code != 201:
            raise witnessing.WitnessError(f"HTTP {response.status_code}: {response.json}")

    return post


def serving(note: str, fetch: witnessing.Fetch) -> witnessing.Fetch:
    """The log as it would look to a witness it shows `note` as its latest checkpoint."""
    return lambda path: note.encode() if path == "checkpoint" else fetch(path)


@pytest.fixture
def signer(site) -> notes.CosignatureSigner:
    private, public = notes.generate_cosignature_key("witness.example")
    tlog.add_witness(site, public)
    db.session.commit()
    return notes.CosignatureSigner.from_private(private)


@pytest.fixture
def state(tmp_path) -> Path:
    return tmp_path / "witness" / "state.json"


def run_witness(client, signer, state, fetch=None, *, post=True) -> witnessing.Accepted:
    return witnessing.witness(
        fetch or client_fetch(client),
        tlog.log_key().verifier,
        signer,
        state,
        NOW,
        client_post(client) if post else None,
    )


def test_a_witness_follows_a_growing_log_and_the_log_serves_its_cosignatures(client, site, signer, state):
    sizes, receipts = [], []
    for grow in (1, 2, 3):
        receipts += receipt_paths(client, grow)
        accepted = run_witness(client, signer, state)
        sizes.append((accepted.previous_size, accepted.checkpoint.size))

    assert sizes == [(None, 1), (1, 3), (3, 6)]
    assert witnessing.load_state(state) == accepted.checkpoint
    db.session.expire_all()
    for size in (1, 3, 6):
        served = client.get(f"{LOG}/checkpoints/{size}").text
        body = notes.parse_note(served).text
        [line] = [s.line for s in notes.parse_note(served).signatures if s.name == "witness.example"]
        assert notes.verify_cosignature(body, line, signer.verifier()) == NOW
    receipt = client.get(receipts[1]).json
    assert receipt["log"]["status"] == "integrated" and receipt["log"]["treeSize"] == 6
    notes.open_note(receipt["log"]["checkpoint"], [signer.verifier()])
    assert receipt_check.check_receipt(receipt, tlog.log_key().verifier_key).tree_size == 6


def rewrite_history(site) -> notes.Checkpoint:
    """Change the first event's decisions and rebuild the whole tree over it, re-signed with the real log key.

    The event's hash, every tile, the head and a checkpoint of the whole log are recomputed, as someone holding the
    database and the log key could; the checkpoints signed before are replaced.
    """
    events = ConsentEvent.__table__
    first = db.session.scalars(
        sa.select(ConsentEvent).where(ConsentEvent.site_id == site.id).order_by(ConsentEvent.seq).limit(1)
    ).one()
    forged = {purpose: "denied" for purpose in first.decisions} | {"necessary": "granted"}
    assert forged != first.decisions
    db.session.execute(sa.update(events).where(events.c.id == first.id).values(decisions=forged))
    db.session.expire_all()
    first = db.session.get(ConsentEvent, first.id)
    db.session.execute(sa.update(events).where(events.c.id == first.id).values(hash=chain.event_hash(first, site.key)))
    hashes = db.session.scalars(
        sa.select(events.c.hash).where(events.c.site_id == site.id).order_by(events.c.seq)
    ).all()
    tiles, root = merkle.append(0, {}, [merkle.leaf_hash(bytes.fromhex(h)) for h in hashes])
    db.session.execute(sa.delete(LogTile).where(LogTile.site_id == site.id))
    for (level, index), data in tiles.items():
        db.session.add(LogTile(site_id=site.id, level=level, idx=index, hashes=data))
    db.session.execute(
        sa.update(ChainHead).where(ChainHead.site_id == site.id).values(seq=len(hashes), hash=root.hex())
    )
    db.session.execute(sa.delete(LogCosignature))
    db.session.execute(sa.delete(LogCheckpoint).where(LogCheckpoint.site_id == site.id))
    key = tlog.log_key()
    checkpoint = notes.Checkpoint(key.origin(site.key), len(hashes), root)
    db.session.add(
        LogCheckpoint(
            site_id=site.id,
            size=checkpoint.size,
            root=checkpoint.root.hex(),
            note=notes.sign_note(checkpoint.body(), key.signer),
            created_at=utcnow(),
        )
    )
    db.session.commit()
    return checkpoint


def integrated_rows(site) -> list:
    events = ConsentEvent.__table__
    return db.session.execute(
        sa.select(events).where(events.c.site_id == site.id, events.c.seq.is_not(None)).order_by(events.c.seq)
    ).all()


def check_against(site, held: notes.Checkpoint) -> chain.Verification:
    head = db.session.get(ChainHead, site.id)
    return chain.check_events(
        integrated_rows(site), site.key, head.seq, head.hash, checkpoint=(held.size, held.root.hex())
    )


def test_a_rewritten_history_of_the_same_size_is_refused_as_a_split_view(client, site, signer, state):
    receipt_paths(client, 4)
    held = run_witness(client, signer, state).checkpoint
    assert check_against(site, held).ok

    rewrite_history(site)

    assert chain.verify_site(site).ok  # the database agrees with itself and with the re-signed checkpoint
    with pytest.raises(witnessing.SplitView, match="split view: two different trees of size 4"):
        run_witness(client, signer, state)
    assert witnessing.load_state(state) == held
    verification = check_against(site, held)
    assert not verification.ok and "the log was rewritten" in verification.reason


def test_a_rewritten_history_grown_larger_fails_the_consistency_proof(client, site, signer, state):
    receipt_paths(client, 3)
    held = run_witness(client, signer, state).checkpoint
    receipt_paths(client, 2)

    rewritten = rewrite_history(site)

    assert rewritten.size == 5 and chain.verify_site(site).ok
    with pytest.raises(witnessing.Inconsistent, match="does not extend the accepted tree of 3"):
        run_witness(client, signer, state)
    assert witnessing.load_state(state) == held
    verification = check_against(site, held)
    assert not verification.ok and "the log was rewritten" in verification.reason
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LogCosignature)) == 0


def test_two_checkpoints_of_the_same_size_are_a_split_view(client, site, signer, state):
    receipt_paths(client, 2)
    key = tlog.log_key()
    real = client.get(f"{LOG}/checkpoint").text
    other = notes.sign_note(notes.Checkpoint(key.origin("shop"), 2, b"\x07" * 32).body(), key.signer)
    fetch = client_fetch(client)

    run_witness(client, signer, state, serving(real, fetch), post=False)
    with pytest.raises(witnessing.SplitView):
        run_witness(client, signer, state, serving(other, fetch), post=False)

    assert witnessing.load_state(state).root == notes.Checkpoint.parse(notes.parse_note(real).text).root


def test_the_witness_refuses_a_rollback_and_a_checkpoint_the_log_did_not_sign(client, site, signer, state):
    receipt_paths(client, 3)
    fetch = client_fetch(client)
    run_witness(client, signer, state, post=False)
    older = client.get(f"{LOG}/checkpoints/2").text
    forger = notes.Signer.generate(tlog.log_key().name)
    forged = notes.sign_note(notes.Checkpoint(tlog.log_key().origin("shop"), 4, b"\x01" * 32).body(), forger)

    with pytest.raises(witnessing.Rollback, match="tree of 2 entries after one of 3"):
        run_witness(client, signer, state, serving(older, fetch), post=False)
    with pytest.raises(witnessing.WitnessError, match="does not verify under the log key"):
        run_witness(client, signer, state, serving(forged, fetch), post=False)
    assert witnessing.load_state(state).size == 3


def test_a_state_file_that_is_not_a_witness_state_is_refused(client, site, signer, state):
    receipt_paths(client)
    state.parent.mkdir(parents=True)
    state.write_text("{}")

    with pytest.raises(witnessing.WitnessError, match="is not a witness state"):
        run_witness(client, signer, state, post=False)
    assert state.read_text() == "{}"


def test_a_state_that_cannot_be_replaced_stays_as_it_was(client, site, signer, state, monkeypatch):
    receipt_paths(client)
    held = run_witness(client, signer, state, post=False).checkpoint
    receipt_paths(client)

    def interrupted(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(witnessing.os, "replace", interrupted)
    with pytest.raises(OSError, match="disk full"):
        run_witness(client, signer, state, post=False)

    assert witnessing.load_state(state) == held
    assert sorted(path.name for path in state.parent.iterdir()) == [state.name]
