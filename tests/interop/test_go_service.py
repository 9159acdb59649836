"""What a running service publishes, judged by Go's reference packages: its signed checkpoints and entry
statements open with golang.org/x/mod/sumdb/note, and the tree Go builds from the log's event hashes has the
checkpoint's root and accepts the inclusion and consistency proofs the API serves."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from cmp.services import notes, sites, tlog
from tests.helpers import bearer, events
from tests.interop import GoCall, go_program

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def go_note(tmp_path_factory) -> GoCall:
    return go_program(HERE / "note_check.go", "note", tmp_path_factory.mktemp("service-note"))


@pytest.fixture(scope="module")
def go_tlog(tmp_path_factory) -> GoCall:
    return go_program(HERE / "tlog_check.go", "tlog", tmp_path_factory.mktemp("service-tlog"))


def _decode(proof: list[str]) -> list[str]:
    # Go's JSON reads []byte from base64: the API's base64 hashes pass through as they are.
    assert all(len(base64.b64decode(h)) == 32 for h in proof)
    return proof


def test_the_services_checkpoints_entries_and_proofs_verify_with_go(site, client, go_note, go_tlog):
    writer = bearer("consent:write")
    first = None
    sizes = []
    for n in range(11):
        response = client.post(
            "/api/v1/sites/shop/consents",
            json={"subject": f"user:{n % 4}", "action": "accept_all" if n % 3 else "reject_all"},
            headers=writer,
        )
        assert response.status_code == 201
        first = first or response.json
        sizes.append(tlog.latest_checkpoint(sites.get_site("shop").id).size)
    verifier_key = tlog.log_key().verifier_key

    statement = go_note({"op": "open", "note": first["signed_entry"], "vkeys": [verifier_key]})
    assert statement["ok"], statement
    assert notes.parse_entry_statement(statement["text"]).event_id == first["event_id"]

    checkpoint = client.get("/api/v1/sites/shop/log/checkpoint").text
    opened = go_note({"op": "open", "note": checkpoint, "vkeys": [verifier_key]})
    assert opened["ok"], opened
    signed = notes.Checkpoint.parse(opened["text"])
    assert signed.size == 11

    records = [base64.b64encode(bytes.fromhex(event.hash)).decode() for event in sorted(events(), key=lambda e: e.seq)]
    inclusion = [
        {
            "index": index,
            "proof": _decode(client.get(f"/api/v1/sites/shop/log/proofs/inclusion?index={index}").json["hashes"]),
        }
        for index in range(signed.size)
    ]
    consistency = [
        {
            "old": old,
            "proof": _decode(client.get(f"/api/v1/sites/shop/log/proofs/consistency?old={old}&new=11").json["hashes"]),
        }
        for old in sorted(set(sizes) - {11})
    ]
    judged = go_tlog(
        {"records": records, "trees": [{"size": 11, "inclusion": inclusion, "consistency": consistency}], "tiles": []}
    )
    (tree,) = judged["trees"]
    assert base64.b64decode(tree["hash"]) == signed.root
    assert tree["inclusion"] == [""] * 11
    assert tree["consistency"] == [""] * len(consistency) and consistency

    # And Go refuses what does not hold: an altered checkpoint.
    altered = checkpoint.replace("\n11\n", "\n12\n", 1)
    assert not go_note({"op": "open", "note": altered, "vkeys": [verifier_key]})["ok"]
