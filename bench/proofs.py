"""Transparency-log proofs: server time and size of inclusion and consistency proofs at 10^3 to 10^6 leaves.

On a fresh PostgreSQL database (`cmp db upgrade`, `cmp demo`), the demo site's tree is grown to each `--sizes`
in turn with random leaf hashes, as the sequencer leaves a tree: `merkle.append` writes its tiles into `log_tiles`,
the head moves and a checkpoint of the new tree is signed with the log's key. It is grown in chunks of random
length, so that older checkpoints of sizes on no tile boundary exist too. No event rows are written: the proofs are
asked by leaf index, and the answer says the position holds no event (as for a purged one).

At each size, through the app's WSGI stack (Flask's test client, in one process: routing, the site, the query's
validation, the tile reads, the JSON answer), `--proofs` inclusion proofs of random leaves are asked with
`GET /api/v1/sites/demo/log/proofs/inclusion?index=N`, then as many consistency proofs from a random older
checkpoint with `GET /api/v1/sites/demo/log/proofs/consistency?old=M&new=SIZE`. Every proof is checked: the
answer's checkpoint against the log's verifier key, the leaf hash against the one stored, and the proof against
the roots (`merkle.verify_inclusion`, `merkle.verify_consistency`). Server time is the request's time through the
test client, which adds no network; size is the proof's hashes (32 bytes each) and the answer's bytes; statements
are those the app sent to the database for the answer (a SQLAlchemy engine event, in the requests' thread).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from bench import BenchError, summary
from bench.databases import Unavailable, postgres_database
from bench.options import add_postgres_option, machine, positive, progress
from bench.server import PROJECT, app_environment, cmp

SITE = "demo"
SIZES = (1_000, 10_000, 100_000, 1_000_000)
# The target for an inclusion proof's server time, among 1,000,000 leaves.
TARGET_MS = 5.0
TARGET_SIZE = 1_000_000
SEED = 9162
COLUMNS = (
    ("leaves", 10),
    ("proof", 12),
    ("proofs", 7),
    ("p50 ms", 7),
    ("p99 ms", 7),
    ("max ms", 7),
    ("hashes", 10),
    ("statements", 11),
    ("proof bytes", 12),
    ("answer bytes", 13),
    ("verified", 9),
)


def configure(parser: argparse.ArgumentParser) -> None:
    add_postgres_option(parser)
    parser.add_argument(
        "--sizes",
        type=sizes,
        default=list(SIZES),
        metavar="LIST",
        help=f"comma-separated tree sizes, grown in turn (default: {','.join(map(str, SIZES))})",
    )
    parser.add_argument(
        "--proofs", type=positive, default=300, help="proofs of each kind asked at each size (%(default)s)"
    )


def sizes(text: str) -> list[int]:
    try:
        values = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"a comma-separated list of tree sizes, got {text!r}") from None
    if not values or values[0] < 2:
        raise argparse.ArgumentTypeError(f"tree sizes must be at least 2, got {text!r}")
    return values


@dataclass(frozen=True)
class Row:
    leaves: int
    proof: str
    times_ms: list[float]
    hashes: list[int]
    answer_bytes: list[int]
    statements: list[int]
    failed: int


def run(args: argparse.Namespace) -> int:
    print(machine(), flush=True)
    try:
        with postgres_database(args.postgres_url) as database:
            progress("postgres", f"{database.version}: migrating, seeding the demo site")
            env = app_environment(database.url)
            cmp(env, "db", "upgrade")
            cmp(env, "demo")
            command = [sys.executable, "-m", "bench.proofs", ",".join(map(str, args.sizes)), str(args.proofs)]
            # A fresh interpreter with the app's settings, as the server would have them.
            done = subprocess.run(command, cwd=PROJECT, env=env, stdout=subprocess.PIPE, text=True, timeout=3600)
            if done.returncode != 0:
                raise BenchError(f"the proofs worker exited {done.returncode}")
            rows = [Row(**row) for row in json.loads(done.stdout.strip().splitlines()[-1])]
    except Unavailable as exc:
        print(f"postgres: skipped: {exc}")
        return 0
    print_report(rows, database.version)
    return 1 if any(row.failed for row in rows) else 0


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile: a value that was measured."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))]


def spread(values: list[int]) -> str:
    return f"{min(values)}-{max(values)}" if min(values) != max(values) else str(values[0])


def print_report(rows: list[Row], version: str) -> None:
    print("  ".join(name.ljust(width) for name, width in COLUMNS))
    for row in rows:
        cells = (
            f"{row.leaves:,}",
            row.proof,
            len(row.times_ms),
            f"{statistics.median(row.times_ms):.2f}",
            f"{percentile(row.times_ms, 0.99):.2f}",
            f"{max(row.times_ms):.2f}",
            spread(row.hashes),
            spread(row.statements),
            f"{32 * statistics.mean(row.hashes):.0f}",
            f"{statistics.mean(row.answer_bytes):.0f}",
            "ok" if not row.failed else f"{row.failed} FAILED",
        )
        print("  ".join(str(cell).ljust(width) for cell, (_, width) in zip(cells, COLUMNS, strict=True)))
    print(
        f"postgres: {version}; one process, Flask's test client; random leaf indexes; consistency from a random "
        "older checkpoint to the tree's size; proof bytes are the mean of 32 per hash"
    )
    largest = max(row.leaves for row in rows)
    for row in rows:
        if row.proof != "inclusion" or row.leaves != largest:
            continue
        p50 = statistics.median(row.times_ms)
        verdict = f"<= {TARGET_MS:g} ms at {TARGET_SIZE:,} ({'met' if p50 <= TARGET_MS else 'NOT met'})"
        summary.record(
            f"inclusion proof server ms p50, {row.leaves:,} leaves (postgres)",
            f"{p50:.2f}",
            f"p99 {percentile(row.times_ms, 0.99):.2f}, {statistics.mean(row.hashes):.0f} hashes",
            "",
            verdict if row.leaves >= TARGET_SIZE else "",
        )


# --- the worker: runs with the app's settings in a fresh interpreter ----------------------------------------------


class Statements:
    """Counts the statements this thread sends to the database (a SQLAlchemy engine event): the test client's
    requests, not the background sequencer's rounds."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.count = 0
        self.thread = threading.get_ident()
        event.listen(engine, "before_cursor_execute", self._sent)

    def _sent(self, *args) -> None:
        if threading.get_ident() == self.thread:
            self.count += 1


class Tree:
    """The demo site's tree, grown as the sequencer grows one, with every leaf and every signed root kept."""

    def __init__(self, site, key, rng: random.Random):
        self.site, self.key, self.rng = site, key, rng
        self.leaves: list[bytes] = []
        self.roots: dict[int, bytes] = {}

    def grow(self, size: int) -> None:
        from sqlalchemy import update

        from cmp.extensions import db
        from cmp.models import ChainHead
        from cmp.services import merkle, tlog

        while len(self.leaves) < size:
            old = len(self.leaves)
            new = min(size, old + self.rng.randint(1, max(1, size // 8)))
            leaves = [self.rng.randbytes(merkle.HASH_SIZE) for _ in range(new - old)]
            written, root = merkle.append(old, tlog.read_tiles(self.site.id, merkle.edge_tiles(old)), leaves)
            self._write_tiles(written)
            moved = db.session.execute(
                update(ChainHead)
                .where(ChainHead.site_id == self.site.id, ChainHead.seq == old)
                .values(seq=new, hash=root.hex())
            )
            if moved.rowcount != 1:
                raise BenchError("the demo site's log head is not where the benchmark left it")
            self._sign(new, root)
            db.session.commit()
            self.leaves.extend(leaves)
            self.roots[new] = root

    def _write_tiles(self, tiles: dict[tuple[int, int], bytes]) -> None:
        from cmp.extensions import db, insert_or_merge
        from cmp.models import LogTile

        statement = insert_or_merge(LogTile)
        statement = statement.on_conflict_do_update(
            index_elements=["site_id", "level", "idx"], set_={"hashes": statement.excluded.hashes}
        )
        rows = [
            {"site_id": self.site.id, "level": level, "idx": idx, "hashes": data}
            for (level, idx), data in tiles.items()
        ]
        for start in range(0, len(rows), 1000):
            db.session.execute(statement, rows[start : start + 1000])

    def _sign(self, size: int, root: bytes) -> None:
        from cmp.extensions import db
        from cmp.models import LogCheckpoint
        from cmp.models.types import utcnow
        from cmp.services import notes

        body = notes.Checkpoint(self.key.origin(self.site.key), size, root).body()
        note = notes.sign_note(body, self.key.signer)
        db.session.add(LogCheckpoint(site_id=self.site.id, size=size, root=root.hex(), note=note, created_at=utcnow()))


def _signed_root(note: str, key, origin: str) -> tuple[int, bytes]:
    from cmp.services import notes

    checkpoint = notes.Checkpoint.parse(notes.open_note(note, [key.verifier]).text)
    if checkpoint.origin != origin:
        raise ValueError(f"checkpoint of {checkpoint.origin!r}")
    return checkpoint.size, checkpoint.root


def _timed_get(client, url: str, sent: Statements, times: list[float], statements: list[int]):
    """GET `url`, adding its time (ms) to `times` and the statements it sent to `statements`."""
    before = sent.count
    started = time.perf_counter()
    response = client.get(url)
    times.append((time.perf_counter() - started) * 1000)
    statements.append(sent.count - before)
    return response


def measure_inclusion(client, tree: Tree, sent: Statements, count: int) -> Row:
    from cmp.services import merkle

    size = len(tree.leaves)
    times, hashes, answer_bytes, statements, failed = [], [], [], [], 0
    for _ in range(count):
        index = tree.rng.randrange(size)
        url = f"/api/v1/sites/{SITE}/log/proofs/inclusion?index={index}"
        response = _timed_get(client, url, sent, times, statements)
        body = response.get_json()
        proof = [base64.b64decode(h) for h in body["hashes"]] if response.status_code == 200 else []
        try:
            signed_size, root = _signed_root(body["checkpoint"], tree.key, tree.key.origin(SITE))
            leaf = base64.b64decode(body["leaf_hash"])
            ok = (
                signed_size == size == body["tree_size"]
                and root == tree.roots[size]
                and leaf == tree.leaves[index]
                and merkle.verify_inclusion(leaf, index, size, proof, root)
            )
        except (KeyError, TypeError, ValueError):
            ok = False
        failed += not ok
        hashes.append(len(proof))
        answer_bytes.append(len(response.data))
    return Row(size, "inclusion", times, hashes, answer_bytes, statements, failed)


def measure_consistency(client, tree: Tree, sent: Statements, count: int) -> Row:
    from cmp.services import merkle

    size = len(tree.leaves)
    older = [old for old in tree.roots if old < size]
    times, hashes, answer_bytes, statements, failed = [], [], [], [], 0
    for _ in range(count):
        old = tree.rng.choice(older)
        url = f"/api/v1/sites/{SITE}/log/proofs/consistency?old={old}&new={size}"
        response = _timed_get(client, url, sent, times, statements)
        proof = [base64.b64decode(h) for h in response.get_json()["hashes"]] if response.status_code == 200 else []
        failed += not (
            response.status_code == 200
            and merkle.verify_consistency(old, size, tree.roots[old], tree.roots[size], proof)
        )
        hashes.append(len(proof))
        answer_bytes.append(len(response.data))
    return Row(size, "consistency", times, hashes, answer_bytes, statements, failed)


def _worker(tree_sizes: list[int], count: int) -> list[dict]:
    from sqlalchemy import func, select

    from cmp import create_app
    from cmp.extensions import db
    from cmp.models import ChainHead, ConsentEvent, Site
    from cmp.services import tlog

    app = create_app()
    rows = []
    with app.app_context():
        site = db.session.scalars(select(Site).where(Site.key == SITE)).one()
        events = db.session.scalar(select(func.count()).where(ConsentEvent.site_id == site.id))
        if events or db.session.get(ChainHead, site.id).seq:
            raise BenchError(f"the demo site's log is not empty ({events} events)")
        tree = Tree(site, tlog.log_key(), random.Random(SEED))
        client = app.test_client()
        sent = Statements(db.engine)
        for size in tree_sizes:
            progress("postgres", f"growing the tree to {size:,} leaves")
            tree.grow(size)
            progress("postgres", f"{size:,} leaves: {count} inclusion and {count} consistency proofs")
            # Warm: the first requests pay for imports, the connection and statement caches.
            measure_inclusion(client, tree, sent, 10)
            rows.append(measure_inclusion(client, tree, sent, count))
            rows.append(measure_consistency(client, tree, sent, count))
    return [row.__dict__ for row in rows]


if __name__ == "__main__":
    os.environ.setdefault("CMP_LOG_LEVEL", "WARNING")
    print(json.dumps(_worker(sizes(sys.argv[1]), int(sys.argv[2]))))
