"""RFC 9162 Merkle tree hashing and proofs over C2SP tlog-tiles storage.

A log of `size` entries is stored as tiles: the tile at tile level L, index N holds up to 256 consecutive hashes
of tree level 8L (level 0 being the leaf hashes), those with indices N*256 .. N*256+W-1. Only hashes of complete
subtrees are stored, so a stored hash never changes; a partial tile (W < 256) is replaced by a wider one as the
log grows. Any node of the tree at level l is a complete subtree whose hash is recomputed from at most 2^(l mod 8)
stored hashes of one tile, which keeps every proof to O(log n) tiles and a few hundred hash operations.

The functions here are pure: storage hands them tiles (through a `TileReader`, called once per operation, so a
database answers each request with one query) and stores the tiles `append` returns.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Mapping, Sequence

HASH_SIZE = 32
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_TILE_LEVEL = 63

EMPTY_TREE_HASH = hashlib.sha256(b"").digest()

TileKey = tuple[int, int]
"""(tile level, tile index)."""

TileReader = Callable[[Collection[TileKey]], Mapping[TileKey, bytes]]
"""Fetches the data of the given tiles; a tile may be wider than the caller needs."""

Node = tuple[int, int]
"""(tree level, index at that level): the complete subtree over leaves [index * 2^level, (index + 1) * 2^level)."""

Span = tuple[int, int]
"""Leaves [lo, hi) whose Merkle Tree Hash is one element of a proof."""


class TileError(ValueError):
    """A tile the operation needs is missing or malformed: never answered with a silently wrong hash."""


def leaf_hash(data: bytes) -> bytes:
    """The 0x00 prefix keeps a leaf from ever hashing like an interior node (RFC 9162, 2.1.1)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes, straight from the RFC's recursive definition: the reference the tiles must match."""
    if not leaves:
        return EMPTY_TREE_HASH
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root_of(leaves[:k]), root_of(leaves[k:]))


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1): where the RFC splits a tree of n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Combines the complete subtrees of a span, left to right, as the RFC's right-leaning tree does."""
    if not hashes:
        return EMPTY_TREE_HASH
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def _nodes(lo: int, hi: int) -> list[Node]:
    """The complete subtrees that make up the span [lo, hi), left to right, largest first."""
    nodes = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        if lo:
            level = min(level, (lo & -lo).bit_length() - 1)
        nodes.append((level, lo >> level))
        lo += 1 << level
    return nodes


def _inclusion_spans(index: int, lo: int, hi: int) -> list[Span]:
    """PATH(m, D[lo:hi]) of RFC 9162 2.1.3.1, as the spans whose hashes form it."""
    if hi - lo == 1:
        return []
    mid = lo + _split(hi - lo)
    if index < mid:
        return [*_inclusion_spans(index, lo, mid), (mid, hi)]
    return [*_inclusion_spans(index, mid, hi), (lo, mid)]


def _consistency_spans(old: int, lo: int, hi: int, known: bool) -> list[Span]:
    """SUBPROOF(m, D[lo:hi], b) of RFC 9162 2.1.4.1, as the spans whose hashes form it."""
    if old == hi:
        return [] if known else [(lo, hi)]
    mid = lo + _split(hi - lo)
    if old <= mid:
        return [*_consistency_spans(old, lo, mid, known), (mid, hi)]
    return [*_consistency_spans(old, mid, hi, False), (lo, mid)]


def _tile_of(node: Node) -> tuple[TileKey, int, int]:
    """The tile holding the stored hashes a node is computed from, and their offsets [start, end) in it."""
    level, index = node
    tile_level, height = divmod(level, TILE_HEIGHT)
    first = index << height
    tile_index = first >> TILE_HEIGHT
    start = first - (tile_index << TILE_HEIGHT)
    return (tile_level, tile_index), start, start + (1 << height)


def _subtree_hash(hashes: Sequence[bytes]) -> bytes:
    """The hash of a complete subtree from its 2^k bottom hashes."""
    while len(hashes) > 1:
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


def _tile_hashes(key: TileKey, data: bytes | None, start: int, end: int) -> list[bytes]:
    """Hashes [start, end) of a tile, refusing a tile that is absent, torn or too narrow."""
    if data is None:
        raise TileError(f"tile level {key[0]} index {key[1]} is missing")
    if len(data) % HASH_SIZE or len(data) > TILE_WIDTH * HASH_SIZE:
        raise TileError(f"tile level {key[0]} index {key[1]} is malformed ({len(data)} bytes)")
    if len(data) < end * HASH_SIZE:
        raise TileError(f"tile level {key[0]} index {key[1]} holds {len(data) // HASH_SIZE} hashes, {end} needed")
    return [data[i : i + HASH_SIZE] for i in range(start * HASH_SIZE, end * HASH_SIZE, HASH_SIZE)]


def _span_hashes(spans: Sequence[Span], read: TileReader) -> list[bytes]:
    """The Merkle Tree Hash of each span, from a single read of the tiles they need.

    Every node read is a complete subtree inside the spans, so no hash beyond the tree's size is ever used,
    whatever the width of the tiles returned.
    """
    nodes = {node: _tile_of(node) for lo, hi in spans for node in _nodes(lo, hi)}
    tiles = read({key for key, _, _ in nodes.values()})
    computed = {}
    for node, (key, start, end) in nodes.items():
        computed[node] = _subtree_hash(_tile_hashes(key, tiles.get(key), start, end))
    return [_fold([computed[node] for node in _nodes(lo, hi)]) for lo, hi in spans]


def subtree_hashes(size: int, read: TileReader) -> list[bytes]:
    """The hashes of the complete subtrees that make up the first `size` leaves, largest first: O(log n) hashes
    from which the tree's root, and any tree grown from it, can be computed without the leaves themselves."""
    _check_size(size)
    spans = [(index << level, (index + 1) << level) for level, index in _nodes(0, size)]
    return _span_hashes(spans, read)


def _check_size(size: int) -> None:
    if size < 0:
        raise ValueError(f"tree size {size} is negative")


def tree_hash(size: int, read: TileReader) -> bytes:
    """MTH of the first `size` leaves (RFC 9162 2.1.1); SHA-256 of nothing for the empty tree."""
    _check_size(size)
    return _span_hashes([(0, size)], read)[0]


def inclusion_proof(index: int, size: int, read: TileReader) -> list[bytes]:
    """The audit path of leaf `index` in the tree of `size` leaves (RFC 9162 2.1.3.1), defined for index < size."""
    _check_size(size)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of {size} leaves")
    return _span_hashes(_inclusion_spans(index, 0, size), read)


def consistency_proof(old: int, new: int, read: TileReader) -> list[bytes]:
    """The proof that the tree of `old` leaves is a prefix of the tree of `new` (RFC 9162 2.1.4.1).

    The RFC defines it for 0 < old; for old == new there is nothing to prove and the proof is empty.
    """
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from size {old} to size {new}: it needs 0 < old <= new")
    return _span_hashes(_consistency_spans(old, 0, new, True), read)


def _is_hash(value: bytes) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2: `leaf` (a leaf hash) is entry `index` of the tree of `size` leaves whose hash is `root`."""
    if not 0 <= index < size or not all(_is_hash(h) for h in (leaf, root, *proof)):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 2.1.4.2: the tree of `old` leaves (`old_root`) is a prefix of the tree of `new` (`new_root`).

    Equal sizes are consistent exactly when the roots are equal and the proof is empty; an old size of zero is
    outside the RFC's 0 < first and is refused, as is an old size beyond the new one.
    """
    if not all(_is_hash(h) for h in (old_root, new_root, *proof)):
        return False
    if 0 < old == new:
        return not proof and old_root == new_root
    if not 0 < old < new or not proof:
        return False
    path = [old_root, *proof] if old & (old - 1) == 0 else list(proof)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


def tile_width(size: int, tile_level: int, tile_index: int) -> int:
    """How many hashes of a tile the tree of `size` leaves covers (0 when the tile does not exist yet)."""
    count = size >> (TILE_HEIGHT * tile_level)
    return max(0, min(TILE_WIDTH, count - (tile_index << TILE_HEIGHT)))


def edge_tiles(size: int) -> list[TileKey]:
    """The partial tiles of the tree of `size` leaves, bottom level first: all that `append` needs to read."""
    _check_size(size)
    keys = []
    tile_level = 0
    while count := size >> (TILE_HEIGHT * tile_level):
        if count % TILE_WIDTH:
            keys.append((tile_level, count >> TILE_HEIGHT))
        tile_level += 1
    return keys


def append(size: int, edge: Mapping[TileKey, bytes], leaves: Sequence[bytes]) -> tuple[dict[TileKey, bytes], bytes]:
    """Appends leaf hashes to the tree of `size` leaves whose edge tiles are `edge`.

    Returns every tile created or widened, with its full new data, and the new tree's hash. Each completed tile
    contributes its subtree hash to the level above; the partial tiles are the only earlier hashes that change
    place, so the edge is all that is read.
    """
    _check_size(size)
    if not all(_is_hash(leaf) for leaf in leaves):
        raise ValueError(f"leaves must be {HASH_SIZE}-byte leaf hashes")
    changed: dict[TileKey, bytes] = {}
    pending = list(leaves)
    tile_level = 0
    while pending:
        count = size >> (TILE_HEIGHT * tile_level)
        key = (tile_level, count >> TILE_HEIGHT)
        width = count % TILE_WIDTH
        hashes = _tile_hashes(key, edge.get(key), 0, width) if width else []
        completed = []
        for value in pending:
            hashes.append(value)
            if len(hashes) == TILE_WIDTH:
                changed[key] = b"".join(hashes)
                completed.append(_subtree_hash(hashes))
                key, hashes = (tile_level, key[1] + 1), []
        if hashes:
            changed[key] = b"".join(hashes)
        pending = completed
        tile_level += 1

    def current(keys: Collection[TileKey]) -> dict[TileKey, bytes]:
        return {key: changed[key] if key in changed else edge[key] for key in keys if key in changed or key in edge}

    return changed, tree_hash(size + len(leaves), current)


_LEVEL = r"0|[1-9][0-9]?"
_WIDTH = r"[1-9][0-9]{0,2}"
_TILE_PATH = re.compile(rf"tile/(?P<level>{_LEVEL})/(?P<index>(?:x[0-9]{{3}}/)*[0-9]{{3}})(?:\.p/(?P<width>{_WIDTH}))?")


def tile_path(level: int, index: int, width: int) -> str:
    """The C2SP tlog-tiles path tile/<L>/<N>[.p/<W>]: N in 3-digit groups, all but the last prefixed with x."""
    if not 0 <= level <= MAX_TILE_LEVEL or index < 0 or not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"no tile at level {level}, index {index}, width {width}")
    groups = [f"{index % 1000:03d}"]
    while index >= 1000:
        index //= 1000
        groups.append(f"x{index % 1000:03d}")
    partial = f".p/{width}" if width < TILE_WIDTH else ""
    return f"tile/{level}/{'/'.join(reversed(groups))}{partial}"


def parse_tile_path(path: str) -> tuple[int, int, int]:
    """(level, index, width) of a canonical tile path; anything else (entry bundles included) is a ValueError."""
    match = _TILE_PATH.fullmatch(path)
    if match is None:
        raise ValueError(f"not a tile path: {path!r}")
    level = int(match["level"])
    index = int(match["index"].replace("x", "").replace("/", ""))
    width = int(match["width"]) if match["width"] else TILE_WIDTH
    if tile_path(level, index, width) != path:
        raise ValueError(f"not a canonical tile path: {path!r}")
    return level, index, width
