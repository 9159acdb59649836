"""Go's transparency log package (golang.org/x/mod/sumdb/tlog) judges our tree hashes, proofs and tiles.

The Go side lives in tlog_check.go next to this file; it is built offline from the Go sources installed on the
machine and talks JSON over stdin and stdout.
"""

from __future__ import annotations

import base64
import random
from pathlib import Path

import pytest

from cmp.services import merkle
from tests.interop import GoCall, go_program

CHECKER = Path(__file__).with_name("tlog_check.go")

SIZES = [1, 2, 3, 7, 256, 257, 1000, 65537, 70_001]
RECORDS = [b"consent event %d" % i for i in range(max(SIZES))]
LEAVES = [merkle.leaf_hash(record) for record in RECORDS]
CORRUPTED_SIZE = 1000


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def encoded(proof: list[bytes]) -> list[str]:
    return [b64(h) for h in proof]


def corrupt(proof: list[bytes]) -> list[bytes]:
    """The same proof with one bit of its middle hash flipped."""
    middle = len(proof) // 2
    return [*proof[:middle], bytes([proof[middle][0] ^ 1]) + proof[middle][1:], *proof[middle + 1 :]]


@pytest.fixture(scope="module")
def go_checker(tmp_path_factory) -> GoCall:
    """Runs tlog_check.go on a request; skips (fails in CI) without Go or the tlog sources."""
    return go_program(CHECKER, "tlog", tmp_path_factory.mktemp("tlog"))


@pytest.fixture(scope="module")
def tiles():
    """Our tiles, grown by `append` from one checked size to the next."""
    store: dict[merkle.TileKey, bytes] = {}
    size = 0
    for target in SIZES:
        changed, _ = merkle.append(size, {key: store[key] for key in merkle.edge_tiles(size)}, LEAVES[size:target])
        store.update(changed)
        size = target
    return store


def read_from(store):
    return lambda keys: {key: store[key] for key in keys if key in store}


def proofs_request(store) -> tuple[dict, dict[int, str]]:
    """Our roots and proofs for every size, plus one corrupted inclusion and consistency proof."""
    rng = random.Random(9162)
    read = read_from(store)
    trees, roots = [], {}
    for size in SIZES:
        roots[size] = b64(merkle.tree_hash(size, read))
        indexes = sorted({0, size // 2, size - 1, *(rng.randrange(size) for _ in range(5))})
        olds = sorted({1, max(1, size // 3), max(1, size - 1), size, *(rng.randrange(1, size + 1) for _ in range(5))})
        inclusion = [{"index": i, "proof": encoded(merkle.inclusion_proof(i, size, read))} for i in indexes]
        consistency = [{"old": old, "proof": encoded(merkle.consistency_proof(old, size, read))} for old in olds]
        if size == CORRUPTED_SIZE:
            inclusion.append({"index": 500, "proof": encoded(corrupt(merkle.inclusion_proof(500, size, read)))})
            consistency.append({"old": 300, "proof": encoded(corrupt(merkle.consistency_proof(300, size, read)))})
        trees.append({"size": size, "inclusion": inclusion, "consistency": consistency})
    return {"records": [b64(record) for record in RECORDS], "trees": trees, "tiles": []}, roots


def tile_requests(store) -> list[tuple[int, int, int, bytes | None]]:
    """Every tile of every checked size at that size's width, with our data, and far-off tiles for paths alone."""
    wanted = {}
    for size in SIZES:
        for key, data in store.items():
            if width := merkle.tile_width(size, *key):
                wanted[(*key, width)] = data[: width * merkle.HASH_SIZE]
    far = {(0, 1234067, 5): None, (0, 1234, 256): None, (3, 999, 1): None, (63, 10**12, 255): None}
    return [(*key, data) for key, data in {**wanted, **far}.items()]


def test_go_accepts_our_tree_hashes_proofs_and_tiles(go_checker, tiles):
    request, roots = proofs_request(tiles)
    requested_tiles = tile_requests(tiles)
    request["tiles"] = [{"level": level, "index": index, "width": width} for level, index, width, _ in requested_tiles]
    response = go_checker(request)

    for sent, checked in zip(request["trees"], response["trees"], strict=True):
        size = sent["size"]
        assert checked["hash"] == roots[size], f"tree hash of size {size}"
        corrupted = 1 if size == CORRUPTED_SIZE else 0
        good_inclusion = checked["inclusion"][: len(checked["inclusion"]) - corrupted]
        good_consistency = checked["consistency"][: len(checked["consistency"]) - corrupted]
        assert good_inclusion == [""] * (len(sent["inclusion"]) - corrupted), f"inclusion proofs of size {size}"
        assert good_consistency == [""] * (len(sent["consistency"]) - corrupted), f"consistency of size {size}"
        if corrupted:
            assert "invalid transparency proof" in checked["inclusion"][-1]
            assert "invalid transparency proof" in checked["consistency"][-1]

    assert len(response["tiles"]) == len(requested_tiles)
    for (level, index, width, data), checked in zip(requested_tiles, response["tiles"], strict=True):
        # Go's tile paths carry the tile height (always 8 in C2SP tlog-tiles), which C2SP paths leave out.
        ours = merkle.tile_path(level, index, width)
        assert checked["path"] == "tile/8/" + ours.removeprefix("tile/")
        assert merkle.parse_tile_path(ours) == (level, index, width)
        if data is not None:
            assert checked["error"] == "" and base64.b64decode(checked["data"]) == data, ours
