"""The tiled Merkle tree against RFC 9162's own definitions, and its storage against C2SP tlog-tiles."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Collection, Mapping
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmp.services import merkle
from cmp.services.merkle import TileKey

LEAVES = [merkle.leaf_hash(b"consent event %d" % i) for i in range(70_000)]
SMALL = 300


@cache
def mth(lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) over LEAVES, by the RFC's recursion, remembered so every size and index stays cheap."""
    if hi - lo == 1:
        return LEAVES[lo]
    k = 1 << ((hi - lo - 1).bit_length() - 1)
    return merkle.node_hash(mth(lo, lo + k), mth(lo + k, hi))


def rfc_path(m: int, lo: int, hi: int) -> list[bytes]:
    """PATH(m, D[lo:hi]), RFC 9162 2.1.3.1."""
    if hi - lo == 1:
        return []
    k = 1 << ((hi - lo - 1).bit_length() - 1)
    if m < lo + k:
        return [*rfc_path(m, lo, lo + k), mth(lo + k, hi)]
    return [*rfc_path(m, lo + k, hi), mth(lo, lo + k)]


def rfc_subproof(m: int, lo: int, hi: int, b: bool) -> list[bytes]:
    """SUBPROOF(m, D[lo:hi], b), RFC 9162 2.1.4.1, with m counted from the start of the log."""
    if m == hi:
        return [] if b else [mth(lo, hi)]
    k = 1 << ((hi - lo - 1).bit_length() - 1)
    if m <= lo + k:
        return [*rfc_subproof(m, lo, lo + k, b), mth(lo + k, hi)]
    return [*rfc_subproof(m, lo + k, hi, False), mth(lo, lo + k)]


class Reader:
    """A tile store that records every call, so tests can count reads and the tiles each one asks for."""

    def __init__(self, tiles: Mapping[TileKey, bytes]):
        self.tiles = tiles
        self.calls: list[set[TileKey]] = []

    def __call__(self, keys: Collection[TileKey]) -> dict[TileKey, bytes]:
        self.calls.append(set(keys))
        return {key: self.tiles[key] for key in keys if key in self.tiles}


def build(leaves, batches=None) -> dict[TileKey, bytes]:
    """Tiles for `leaves`, appended in the given batch sizes (all at once by default), passing only the edge."""
    tiles: dict[TileKey, bytes] = {}
    size = 0
    for batch in batches or [len(leaves)]:
        edge = {key: tiles[key] for key in merkle.edge_tiles(size)}
        changed, root = merkle.append(size, edge, leaves[size : size + batch])
        tiles.update(changed)
        size += batch
        assert root == mth(0, size)
    return tiles


@pytest.fixture(scope="module")
def small_tiles():
    return build(LEAVES[:SMALL])


@pytest.fixture(scope="module")
def big_tiles():
    return build(LEAVES)


def test_hashes_match_the_certificate_transparency_vectors():
    """The roots for the classic eight-entry RFC 6962 test log, sizes 1 to 8."""
    entries = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43", bytes(range(0x50, 0x58))]
    entries.append(bytes(range(0x60, 0x70)))
    roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
    leaves = [merkle.leaf_hash(entry) for entry in entries]
    assert [merkle.root_of(leaves[:n]).hex() for n in range(1, 9)] == roots
    assert merkle.leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert merkle.node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()


def test_the_empty_tree_hashes_to_sha256_of_nothing():
    reader = Reader({})
    assert merkle.tree_hash(0, reader) == merkle.root_of([]) == hashlib.sha256(b"").digest()
    assert merkle.append(0, {}, []) == ({}, hashlib.sha256(b"").digest())
    assert merkle.edge_tiles(0) == []
    assert reader.calls == [set()]


def test_every_size_to_300_grown_leaf_by_leaf_has_the_reference_root(small_tiles):
    """Each append returns the new root; its tiles, and the wider final ones, give the same root back."""
    tiles: dict[TileKey, bytes] = {}
    for size in range(1, SMALL + 1):
        changed, root = merkle.append(size - 1, {k: tiles[k] for k in merkle.edge_tiles(size - 1)}, [LEAVES[size - 1]])
        tiles.update(changed)
        reference = merkle.root_of(LEAVES[:size])
        assert root == reference
        assert merkle.tree_hash(size, Reader(tiles)) == reference
        assert merkle.tree_hash(size, Reader(small_tiles)) == reference
    assert tiles == small_tiles


def test_every_inclusion_proof_to_300_is_the_rfc_path_and_verifies(small_tiles):
    for size in range(1, SMALL + 1):
        root = mth(0, size)
        for index in range(size):
            reader = Reader(small_tiles)
            proof = merkle.inclusion_proof(index, size, reader)
            assert proof == rfc_path(index, 0, size), (index, size)
            assert len(reader.calls) == 1
            assert merkle.verify_inclusion(LEAVES[index], index, size, proof, root)


def test_every_consistency_proof_to_300_is_the_rfc_proof_and_verifies(small_tiles):
    for new in range(1, SMALL + 1):
        new_root = mth(0, new)
        for old in range(1, new + 1):
            reader = Reader(small_tiles)
            proof = merkle.consistency_proof(old, new, reader)
            assert proof == rfc_subproof(old, 0, new, True), (old, new)
            assert len(reader.calls) == 1
            assert merkle.verify_consistency(old, new, mth(0, old), new_root, proof)


def test_appending_in_random_batches_stores_the_same_tiles_as_one_batch(big_tiles):
    rng = random.Random(9162)
    batches = []
    while (left := len(LEAVES) - sum(batches)) > 0:
        batches.append(min(left, rng.choice([1, 2, 255, 256, 257, rng.randrange(1, 3000)])))
    assert build(LEAVES, batches) == big_tiles


def test_random_spots_up_to_70000_leaves_match_the_rfc(big_tiles):
    rng = random.Random(6962)
    sizes = [256, 257, 65535, 65536, 65537, 69999, 70_000, *(rng.randrange(1, 70_001) for _ in range(25))]
    for size in sizes:
        root = mth(0, size)
        assert merkle.tree_hash(size, Reader(big_tiles)) == root
        for index in {0, size - 1, *(rng.randrange(size) for _ in range(8))}:
            proof = merkle.inclusion_proof(index, size, Reader(big_tiles))
            assert proof == rfc_path(index, 0, size)
            assert merkle.verify_inclusion(LEAVES[index], index, size, proof, root)
        for old in {1, size, *(rng.randrange(1, size + 1) for _ in range(8))}:
            proof = merkle.consistency_proof(old, size, Reader(big_tiles))
            assert proof == rfc_subproof(old, 0, size, True)
            assert merkle.verify_consistency(old, size, mth(0, old), root, proof)


def test_tiles_follow_the_c2sp_example_of_70000_and_256_leaves(big_tiles):
    """C2SP tlog-tiles: 70,000 leaves make 273 full level-0 tiles, a level-0 tile of 112, one full level-1 tile,
    a level-1 tile of 17 and a level-2 tile of 1; 256 leaves make one full tile and a level-1 tile of 1."""
    widths = {key: len(data) // merkle.HASH_SIZE for key, data in big_tiles.items()}
    assert widths == {(0, n): 256 for n in range(273)} | {(0, 273): 112, (1, 0): 256, (1, 1): 17, (2, 0): 1}
    assert merkle.edge_tiles(70_000) == [(0, 273), (1, 1), (2, 0)]
    assert big_tiles[(0, 5)] == b"".join(LEAVES[5 * 256 : 6 * 256])
    assert big_tiles[(1, 1)][:32] == mth(256 * 256, 257 * 256)
    assert big_tiles[(2, 0)] == mth(0, 65536)
    changed, _ = merkle.append(0, {}, LEAVES[:256])
    assert {key: len(data) // 32 for key, data in changed.items()} == {(0, 0): 256, (1, 0): 1}
    assert merkle.edge_tiles(256) == [(1, 0)]


class EdgeOnly(dict):
    """The edge tiles, refusing and remembering any request for another tile."""

    def __init__(self, tiles, size):
        super().__init__({key: tiles[key] for key in merkle.edge_tiles(size)})
        self.asked: set[TileKey] = set()

    def get(self, key, default=None):
        self.asked.add(key)
        assert key in self, f"append asked for {key}, not an edge tile"
        return super().get(key, default)

    def __getitem__(self, key):
        self.asked.add(key)
        assert key in self, f"append asked for {key}, not an edge tile"
        return super().__getitem__(key)


@pytest.mark.parametrize("size", [0, 1, 255, 256, 300, 65535, 65536, 65790, 69_000])
@pytest.mark.parametrize("count", [1, 255, 256, 1000])
def test_append_needs_only_the_edge_and_returns_exactly_what_changed(big_tiles, size, count):
    """Stored hashes never change: each returned tile is new or extends the old one, and nothing else moved."""
    before = {key: data[: merkle.tile_width(size, *key) * 32] for key, data in big_tiles.items()}
    before = {key: data for key, data in before.items() if data}
    after = {key: data[: merkle.tile_width(size + count, *key) * 32] for key, data in big_tiles.items()}
    after = {key: data for key, data in after.items() if data}
    edge = EdgeOnly(before, size)
    changed, root = merkle.append(size, edge, LEAVES[size : size + count])
    assert edge.asked <= set(merkle.edge_tiles(size))
    assert changed == {key: data for key, data in after.items() if before.get(key) != data}
    assert all(data.startswith(before.get(key, b"")) for key, data in changed.items())
    assert root == mth(0, size + count)


def test_a_wider_tile_than_the_edge_needs_is_cut_to_the_tree(big_tiles):
    """An edge tile already holding later hashes (a retried append) is read only up to the tree's size."""
    edge = {key: big_tiles[key] for key in merkle.edge_tiles(1000)}
    changed, root = merkle.append(1000, edge, LEAVES[1000:1010])
    assert changed == {(0, 3): b"".join(LEAVES[768:1010])}
    assert root == mth(0, 1010)


def test_proofs_never_read_a_hash_beyond_the_tree(big_tiles):
    """Hashes past the tree's size are garbage here; the proofs come out right all the same."""
    rng = random.Random(1)
    for size in (1, 3, 256, 257, 1000, 65536, 65537, 66_000):
        noisy = {}
        for key, data in big_tiles.items():
            keep = merkle.tile_width(size, *key) * 32
            noisy[key] = data[:keep] + rng.randbytes(len(data) - keep)
        root = mth(0, size)
        assert merkle.tree_hash(size, Reader(noisy)) == root
        for index in (0, size // 2, size - 1):
            assert merkle.inclusion_proof(index, size, Reader(noisy)) == rfc_path(index, 0, size)
        for old in (1, (size + 1) // 2, size):
            assert merkle.consistency_proof(old, size, Reader(noisy)) == rfc_subproof(old, 0, size, True)


@pytest.mark.parametrize("size", [1, 2, 255, 256, 257, 65536, 70_000])
def test_each_operation_reads_once_and_few_tiles(big_tiles, size):
    tile_levels = len({level for level, _ in big_tiles if merkle.tile_width(size, level, 0)})
    operations = [
        lambda read: merkle.tree_hash(size, read),
        lambda read: merkle.inclusion_proof(0, size, read),
        lambda read: merkle.inclusion_proof(size // 3, size, read),
        lambda read: merkle.inclusion_proof(size - 1, size, read),
        lambda read: merkle.consistency_proof(1, size, read),
        lambda read: merkle.consistency_proof(max(1, size // 3), size, read),
    ]
    for operation in operations:
        reader = Reader(big_tiles)
        operation(reader)
        assert len(reader.calls) == 1
        assert len(reader.calls[0]) <= 2 * tile_levels


@pytest.mark.parametrize("operation", ["tree_hash", "inclusion_proof", "consistency_proof"])
def test_a_missing_or_torn_tile_is_an_error_naming_it(big_tiles, operation):
    call = {
        "tree_hash": lambda read: merkle.tree_hash(70_000, read),
        "inclusion_proof": lambda read: merkle.inclusion_proof(1234, 70_000, read),
        "consistency_proof": lambda read: merkle.consistency_proof(1234, 70_000, read),
    }[operation]
    needed = Reader(big_tiles)
    call(needed)
    for key in needed.calls[0]:
        without = {k: v for k, v in big_tiles.items() if k != key}
        with pytest.raises(merkle.TileError, match=f"tile level {key[0]} index {key[1]} is missing"):
            call(Reader(without))
        torn = {**big_tiles, key: big_tiles[key][:-1]}
        with pytest.raises(ValueError, match=f"tile level {key[0]} index {key[1]} is malformed"):
            call(Reader(torn))
        narrow = {**big_tiles, key: big_tiles[key][:32]} if len(big_tiles[key]) > 32 else {}
        if narrow:
            with pytest.raises(ValueError, match=f"tile level {key[0]} index {key[1]} holds 1 hashes"):
                call(Reader(narrow))


def test_a_missing_edge_tile_stops_an_append(big_tiles):
    edge = {key: big_tiles[key] for key in merkle.edge_tiles(70_000) if key != (1, 1)}
    with pytest.raises(merkle.TileError, match="tile level 1 index 1 is missing"):
        merkle.append(70_000, edge, LEAVES[:256])
    with pytest.raises(ValueError, match="32-byte leaf hashes"):
        merkle.append(0, {}, [b"short"])


def million_tile_reader(size: int):
    """Stand-in tiles of the right widths for a tree of `size` leaves, made up on request."""

    def read(keys):
        return {key: hashlib.sha256(repr(key).encode()).digest() * merkle.tile_width(size, *key) for key in keys}

    return read


def test_proofs_for_a_million_leaves_take_a_few_hundred_hash_operations(monkeypatch):
    """A proof has at most two subtrees per level, each hashed from at most 2^(level mod 8) stored hashes."""
    size = 1_000_000
    counted = 0
    hash_pair = merkle.node_hash

    def counting(left, right):
        nonlocal counted
        counted += 1
        return hash_pair(left, right)

    monkeypatch.setattr(merkle, "node_hash", counting)
    rng = random.Random(10**6)
    operations = [lambda read: merkle.tree_hash(size, read)]
    for index in (0, 255, 65535, 65536, 999_999, *(rng.randrange(size) for _ in range(40))):
        operations.append(lambda read, index=index: merkle.inclusion_proof(index, size, read))
    for old in (1, 256, 65536, 999_999, *(rng.randrange(1, size) for _ in range(40))):
        operations.append(lambda read, old=old: merkle.consistency_proof(old, size, read))
    worst = 0
    for operation in operations:
        counted = 0
        operation(million_tile_reader(size))
        worst = max(worst, counted)
    assert 0 < worst <= 700


def test_tampered_inclusion_proofs_fail(small_tiles):
    size, index = 300, 150
    root = mth(0, size)
    proof = merkle.inclusion_proof(index, size, Reader(small_tiles))
    assert merkle.verify_inclusion(LEAVES[index], index, size, proof, root)
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
        assert not merkle.verify_inclusion(LEAVES[index], index, size, bad, root)
    assert not merkle.verify_inclusion(LEAVES[index], index + 1, size, proof, root)
    assert not merkle.verify_inclusion(LEAVES[index], index - 1, size, proof, root)
    assert not merkle.verify_inclusion(LEAVES[index + 1], index, size, proof, root)
    # The size fixes the shape of the path; every size of another shape fails.
    for wrong_size in (151, 255, 256, 513, 1024):
        assert not merkle.verify_inclusion(LEAVES[index], index, wrong_size, proof, root)
    assert not merkle.verify_inclusion(LEAVES[index], index, size, proof[:-1], root)
    assert not merkle.verify_inclusion(LEAVES[index], index, size, [*proof, root], root)
    assert not merkle.verify_inclusion(LEAVES[index], index, size, proof, mth(0, size - 1))
    assert not merkle.verify_inclusion(LEAVES[index][:31], index, size, proof, root)


def test_tampered_consistency_proofs_fail(small_tiles):
    old, new = 100, 300
    old_root, new_root = mth(0, old), mth(0, new)
    proof = merkle.consistency_proof(old, new, Reader(small_tiles))
    assert merkle.verify_consistency(old, new, old_root, new_root, proof)
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
        assert not merkle.verify_consistency(old, new, old_root, new_root, bad)
    assert not merkle.verify_consistency(old + 1, new, old_root, new_root, proof)
    for wrong_new in (101, 255, 256, 513, 1024):
        assert not merkle.verify_consistency(old, wrong_new, old_root, new_root, proof)
    assert not merkle.verify_consistency(old, new, mth(0, old + 1), new_root, proof)
    assert not merkle.verify_consistency(old, new, old_root, mth(0, new - 1), proof)
    assert not merkle.verify_consistency(old, new, old_root, new_root, proof[:-1])
    assert not merkle.verify_consistency(old, new, old_root, new_root, [*proof, new_root])
    assert not merkle.verify_consistency(old, new, old_root, new_root, [])
    assert not merkle.verify_consistency(new, old, new_root, old_root, proof)


def test_the_rfc_edge_cases(small_tiles):
    """index >= size has no proof; old == new is consistent by an empty proof; RFC proofs need 0 < old."""
    reader = Reader(small_tiles)
    for index, size in [(5, 5), (6, 5), (-1, 5), (0, 0)]:
        with pytest.raises(ValueError, match="outside a tree"):
            merkle.inclusion_proof(index, size, reader)
        assert not merkle.verify_inclusion(LEAVES[0], index, size, [], mth(0, 1))
    assert merkle.inclusion_proof(0, 1, reader) == []
    assert merkle.verify_inclusion(LEAVES[0], 0, 1, [], LEAVES[0])
    assert not merkle.verify_inclusion(LEAVES[0], 1, 1, [], LEAVES[0])

    assert merkle.consistency_proof(7, 7, reader) == []
    assert merkle.verify_consistency(7, 7, mth(0, 7), mth(0, 7), [])
    assert not merkle.verify_consistency(7, 7, mth(0, 7), mth(0, 6), [])
    assert not merkle.verify_consistency(7, 7, mth(0, 7), mth(0, 7), [mth(0, 7)])
    for old, new in [(0, 5), (0, 0), (6, 5), (-1, 5)]:
        with pytest.raises(ValueError, match="needs 0 < old <= new"):
            merkle.consistency_proof(old, new, reader)
    empty = merkle.root_of([])
    assert not merkle.verify_consistency(0, 5, empty, mth(0, 5), [])
    assert not merkle.verify_consistency(0, 0, empty, empty, [])
    with pytest.raises(ValueError, match="negative"):
        merkle.tree_hash(-1, reader)


@pytest.mark.parametrize(
    ("args", "path"),
    [
        ((0, 1234, 256), "tile/0/x001/234"),
        ((0, 5, 17), "tile/0/005.p/17"),
        ((3, 1234067, 256), "tile/3/x001/x234/067"),
        ((3, 1234067, 1), "tile/3/x001/x234/067.p/1"),
        ((63, 0, 255), "tile/63/000.p/255"),
        ((1, 1000, 256), "tile/1/x001/000"),
        ((0, 999, 256), "tile/0/999"),
    ],
)
def test_tile_paths_are_c2sp_paths(args, path):
    assert merkle.tile_path(*args) == path
    assert merkle.parse_tile_path(path) == args


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 63), st.integers(0, 10**15), st.integers(1, 256))
def test_tile_paths_round_trip(level, index, width):
    assert merkle.parse_tile_path(merkle.tile_path(level, index, width)) == (level, index, width)


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/1234",
        "tile/0/01",
        "tile/00/001",
        "tile/01/001",
        "tile/64/000",
        "tile/0/x000/001",
        "tile/0/001/x234",
        "tile/0/001.p/0",
        "tile/0/001.p/256",
        "tile/0/001.p/017",
        "tile/0/001.p/",
        "tile/8/0/000",
        "tile/entries/000",
        "tile/data/000",
        "/tile/0/000",
        "tile/0/000/",
        "tile/0/\u0661\u0662\u0663",
        "tile/-1/000",
        "tile/+1/000",
        "",
    ],
)
def test_anything_but_a_canonical_tile_path_is_refused(path):
    with pytest.raises(ValueError):
        merkle.parse_tile_path(path)


@pytest.mark.parametrize("args", [(64, 0, 256), (-1, 0, 256), (0, -1, 256), (0, 0, 0), (0, 0, 257)])
def test_impossible_tiles_have_no_path(args):
    with pytest.raises(ValueError):
        merkle.tile_path(*args)
