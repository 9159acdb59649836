"""Consent writes per second against a plain durable insert of the same app, and how soon the log covers them.

For each backend: a fresh database, `cmp db upgrade`, `cmp demo`, the benchmark's own table for plain inserts,
then gunicorn on loopback serving `bench.insert_ceiling:app` (the product's app plus POST /bench/plain-insert),
with its sequencer thread on as in production. Concurrent clients alternate rounds of GET /healthz (the same app,
server and client doing no work), POST /bench/plain-insert (the same body read and validated, one row inserted
and committed: the ceiling of a durable write) and banner-style POST /api/v1/sites/demo/consents. The table
reports the best round of each and the ratios. Meanwhile the benchmark polls the database for events the
sequencer has placed: the integration lag of a write is the time from its acknowledgement to the first poll that
sees it placed (placed and checkpointed are one transaction). Afterwards `cmp verify` checks the log and the event
count is compared with the number of 201 responses.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa

from bench import BenchError, cpu, summary
from bench.load import Call, Limit, Round, drive
from bench.options import add_load_options, machine, per_backend, prepared_demo, progress
from bench.server import HOST, cmp, gunicorn

SITE = "demo"
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
COLUMNS = (
    ("backend", 9),
    ("workers", 7),
    ("clients", 7),
    ("healthz req/s", 13),
    ("plain insert/s", 14),
    ("writes/s", 9),
    ("vs plain", 8),
    ("vs healthz", 10),
    ("lag p50 ms", 10),
    ("lag p99 ms", 10),
    ("errors", 6),
    ("201s", 6),
    ("events", 6),
    ("verify", 8),
)
CPU_COLUMNS = (
    ("cpu µs/req", 10),
    ("request", 12),
    ("server", 7),
    ("database", 8),
    ("client", 7),
    ("total", 7),
    ("vs plain insert", 15),
)
# Issue 15: consent writes on PostgreSQL at 16 clients reach at least this share of the plain insert.
TARGET = 0.8
# The benchmark's own table for POST /bench/plain-insert: the columns a banner's body gives, and a time.
PLAIN_INSERTS = sa.Table(
    "bench_plain_inserts",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("notice_version", sa.Integer),
    sa.Column("locale", sa.String(35)),
    sa.Column("page_url", sa.String(2048)),
    sa.Column("gpc", sa.Boolean, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)


def configure(parser: argparse.ArgumentParser) -> None:
    add_load_options(parser, "plain inserts and writes")
    parser.add_argument(
        "--poll-ms",
        type=float,
        default=10.0,
        help="how often the benchmark asks the database which events are placed; the lag's resolution (%(default)s)",
    )


@dataclass
class Outcome:
    """One backend's figures, and what the consent log says afterwards."""

    backend: str
    workers: int
    clients: int
    poll_ms: float = 10.0
    version: str = ""
    healthz: list[Round] = field(default_factory=list)
    plain: list[Round] = field(default_factory=list)
    writes: list[Round] = field(default_factory=list)
    warmup: list[Round] = field(default_factory=list)
    # Seconds from each timed write's acknowledgement to the first poll that saw it placed in the tree.
    lags: list[float] = field(default_factory=list)
    # Acknowledged writes no poll saw placed before the benchmark stopped waiting.
    unplaced: int = 0
    plain_rows: int | None = None
    events: int | None = None
    chain_ok: bool = False
    chain_report: str = ""

    @property
    def rounds(self) -> list[Round]:
        return [*self.warmup, *self.healthz, *self.plain, *self.writes]

    @property
    def created(self) -> int:
        return sum(r.ok for r in self.rounds if r.call == "writes")

    @property
    def errors(self) -> int:
        return sum(self.error_counts().values())

    def error_counts(self) -> Counter:
        return sum((r.errors for r in self.rounds), Counter())

    @property
    def verified(self) -> bool:
        return self.chain_ok and self.events == self.created and self.unplaced == 0

    @property
    def inserted(self) -> int:
        return sum(r.ok for r in self.rounds if r.call == "plain insert")


def run(args: argparse.Namespace) -> int:
    print(machine(), flush=True)
    outcomes, skipped = per_backend(args, bench_backend)
    print_report(outcomes, skipped)
    return 0 if all(o.errors == 0 and o.verified for o in outcomes) else 1


def bench_backend(backend: str, args: argparse.Namespace) -> Outcome:
    outcome = Outcome(backend, args.workers, args.clients, args.poll_ms)
    with prepared_demo(backend, args) as service:
        outcome.version = service.database.version
        engine = sa.create_engine(service.database.url)
        try:
            PLAIN_INSERTS.create(engine)
            log = service.directory / "gunicorn.log"
            with (
                gunicorn(service.env, args.workers, service.port, log, app="bench.insert_ceiling:app") as server,
                _placements(engine, args.poll_ms / 1000) as placed,
            ):
                _measure(outcome, server.pid, service.port, args)
                _collect_lags(outcome, placed)
            with engine.connect() as connection:
                outcome.plain_rows = connection.scalar(sa.select(sa.func.count()).select_from(PLAIN_INSERTS))
        finally:
            engine.dispose()
        _check_log(outcome, service.env)
    return outcome


def calls(port: int) -> tuple[Call, Call, Call]:
    """GET /healthz, a first visit's "accept all" as the demo banner posts it, and the same body inserted plainly."""
    origin = f"http://{HOST}:{port}"
    body = {"action": "accept_all", "notice_version": 1, "page_url": f"{origin}/demo", "locale": "en"}
    headers = {"Origin": origin, "Content-Type": "application/json", "User-Agent": USER_AGENT}
    encoded = json.dumps(body).encode()
    healthz = Call("healthz", "GET", "/healthz", 200, headers={"User-Agent": USER_AGENT})
    plain = Call("plain insert", "POST", "/bench/plain-insert", 201, encoded, headers)
    writes = Call("writes", "POST", f"/api/v1/sites/{SITE}/consents", 201, encoded, headers, keep=True)
    return healthz, plain, writes


def _measure(outcome: Outcome, server: int, port: int, args: argparse.Namespace) -> None:
    healthz, plain, writes = calls(port)
    # Every worker imports, connects and fills its caches before anything is timed.
    warmup = Limit(requests=4 * args.clients)
    for call in (healthz, plain, writes):
        outcome.warmup.append(drive(HOST, port, call, args.clients, warmup))
    limit = Limit(requests=args.requests) if args.requests else Limit(seconds=args.seconds)
    for number in range(1, args.rounds + 1):
        for call, rounds in ((healthz, outcome.healthz), (plain, outcome.plain), (writes, outcome.writes)):
            before = cpu.snapshot(server)
            result = drive(HOST, port, call, args.clients, limit)
            after = cpu.snapshot(server)
            if before and after:
                result.cpu_us = after.since(before).per_request_us(result.ok)
                if outcome.backend == "sqlite":  # in the server's own process; a PostgreSQL nearby serves others
                    del result.cpu_us["database"]
            rounds.append(result)
            errors = sum(result.errors.values())
            progress(
                outcome.backend,
                f"round {number} {call.name}: {result.rate:8.1f}/s"
                f" ({result.ok} in {result.elapsed:.1f}s, {errors} errors)",
            )


class Placements:
    """When the benchmark first saw each event of the demo site placed in its tree (time.perf_counter())."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.changed = threading.Condition()

    def wait_for(self, ids: set[str], timeout: float) -> set[str]:
        """Wait until every one of `ids` is seen placed, or `timeout`; the ids still unseen."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while missing := ids - self.seen.keys():
                left = deadline - time.monotonic()
                if left <= 0:
                    return missing
                self.changed.wait(left)
        return set()


@contextmanager
def _placements(engine: sa.Engine, interval: float) -> Iterator[Placements]:
    """Poll the database every `interval` seconds, from one connection, for events placed since the last poll.

    The sequencer places events and signs the checkpoint of the tree that holds them in one transaction, so an
    event read with its `seq` set is covered by a signed checkpoint from then on. A poll's time is taken as it
    starts: what it sees was committed before then, and had not been at the previous poll.
    """
    placements = Placements()
    stop = threading.Event()
    failure: list[BaseException] = []

    def poll() -> None:
        events = sa.table("consent_events", sa.column("id"), sa.column("site_id"), sa.column("seq"))
        try:
            with engine.connect() as connection:
                site_id = connection.scalar(sa.text("SELECT id FROM sites WHERE key = :key"), {"key": SITE})
                statement = (
                    sa.select(events.c.id, events.c.seq)
                    .where(events.c.site_id == site_id, events.c.seq > sa.bindparam("last"))
                    .order_by(events.c.seq)
                )
                last = 0
                while not stop.is_set():
                    started = time.perf_counter()
                    rows = connection.execute(statement, {"last": last}).all()
                    connection.rollback()
                    if rows:
                        last = rows[-1].seq
                        with placements.changed:
                            placements.seen.update((row.id, started) for row in rows)
                            placements.changed.notify_all()
                    stop.wait(interval)
        except BaseException as exc:
            failure.append(exc)

    poller = threading.Thread(target=poll, name="placements", daemon=True)
    poller.start()
    try:
        yield placements
    finally:
        stop.set()
        poller.join()
    if failure:
        raise BenchError(f"polling the log for placed events failed: {failure[0]!r}")


def _collect_lags(outcome: Outcome, placed: Placements, timeout: float = 60.0) -> None:
    """Each timed write's lag, once the sequencer has placed every one (or `timeout` has passed)."""
    acknowledged = {json.loads(body)["event_id"]: at for result in outcome.writes for at, body in result.answers}
    progress(outcome.backend, f"waiting for the sequencer to place {len(acknowledged)} acknowledged writes")
    outcome.unplaced = len(placed.wait_for(set(acknowledged), timeout))
    # A poll may run between the commit and the client reading its answer: such a write waited for nothing.
    outcome.lags = sorted(
        max(0.0, placed.seen[event] - at) for event, at in acknowledged.items() if event in placed.seen
    )


def _check_log(outcome: Outcome, env: dict[str, str]) -> None:
    verify = cmp(env, "verify", "--site", SITE, "--json", check=False)
    try:
        report = json.loads(verify.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise BenchError(
            f"`cmp verify` printed no report (exit {verify.returncode}):\n{verify.stdout}{verify.stderr}"
        ) from None
    outcome.chain_ok = verify.returncode == 0 and report["ok"]
    outcome.chain_report = json.dumps(report)
    shown = json.loads(cmp(env, "site", "show", SITE, "--json").stdout)
    outcome.events = shown["events"]


def print_report(outcomes: list[Outcome], skipped: list[str]) -> None:
    print(_row(COLUMNS, (name for name, _ in COLUMNS)))
    for outcome in outcomes:
        print(_row(COLUMNS, _cells(outcome)))
        _summarise(outcome)
    _print_cpu(outcomes)
    for line in skipped:
        print(line)
    for outcome in outcomes:
        rounds = len(outcome.healthz)
        print(
            f"{outcome.backend}: {outcome.version}; best of {rounds} round{'s' * (rounds != 1)} of each;"
            f" lag over {len(outcome.lags)} timed writes, the log polled every {outcome.poll_ms:g} ms"
        )
        if outcome.unplaced:
            print(f"{outcome.backend}: {outcome.unplaced} acknowledged writes were not placed within 60 s")
        if outcome.plain_rows != outcome.inserted:
            print(f"{outcome.backend}: {outcome.plain_rows} plain rows stored, {outcome.inserted} acknowledged")
        if not outcome.chain_ok:
            print(f"{outcome.backend}: cmp verify failed: {outcome.chain_report}")
        for error, count in outcome.error_counts().most_common():
            print(f"{outcome.backend}: {count} x {error}")


def _summarise(outcome: Outcome) -> None:
    healthz, plain, writes = _best(outcome.healthz), _best(outcome.plain), _best(outcome.writes)
    checked = "" if outcome.verified else "; log NOT verified"
    target = ""
    if outcome.backend == "postgres":
        met = plain and writes / plain >= TARGET
        target = f">= {TARGET} ({'met' if met else 'NOT met'})"
    summary.record(
        f"consent writes/s ({outcome.backend}, {outcome.clients} clients)",
        f"{writes:.1f}",
        f"plain durable insert {plain:.1f}/s",
        summary.ratio(writes, plain),
        target + checked,
    )
    summary.record(
        f"consent writes/s ({outcome.backend}, {outcome.clients} clients)",
        f"{writes:.1f}",
        f"GET /healthz {healthz:.1f}/s",
        summary.ratio(writes, healthz),
    )
    summary.record(
        f"integration lag ms p50 / p99 ({outcome.backend}, under that load)",
        f"{_ms(percentile(outcome.lags, 50))} / {_ms(percentile(outcome.lags, 99))}",
        f"{len(outcome.lags)} writes",
    )


def percentile(values: list[float], p: int) -> float | None:
    """The `p`th percentile of sorted `values` (inclusive method), None for none."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


def _cells(outcome: Outcome) -> list[str]:
    healthz, plain, writes = _best(outcome.healthz), _best(outcome.plain), _best(outcome.writes)
    verify = "ok" if outcome.verified else ("mismatch" if outcome.chain_ok else "FAILED")
    return [
        outcome.backend,
        str(outcome.workers),
        str(outcome.clients),
        f"{healthz:.1f}",
        f"{plain:.1f}",
        f"{writes:.1f}",
        summary.ratio(writes, plain),
        summary.ratio(writes, healthz),
        _ms(percentile(outcome.lags, 50)),
        _ms(percentile(outcome.lags, 99)),
        str(outcome.errors),
        str(outcome.created),
        str(outcome.events),
        verify,
    ]


def _print_cpu(outcomes: list[Outcome]) -> None:
    """CPU per request in the best round of each kind: what a consent write costs beyond a plain insert, and where.

    The sequencer runs in the server's workers: its integrations count in the writes' `server` figure.
    """
    measured = [outcome for outcome in outcomes if _best_round(outcome.plain).cpu_us]
    if not measured:
        return
    print(_row(CPU_COLUMNS, (name for name, _ in CPU_COLUMNS)))
    for outcome in measured:
        ceiling = sum(_best_round(outcome.plain).cpu_us.values())
        for rounds in (outcome.healthz, outcome.plain, outcome.writes):
            best = _best_round(rounds)
            total = sum(best.cpu_us.values())
            beyond = "-" if rounds is outcome.plain else f"{total - ceiling:+.0f}"
            cells = [f"{best.cpu_us[group]:.0f}" if group in best.cpu_us else "-" for group in cpu.GROUPS]
            print(_row(CPU_COLUMNS, [outcome.backend, best.call, *cells, f"{total:.0f}", beyond]))


def _best_round(rounds: list[Round]) -> Round:
    return max(rounds, key=lambda r: r.rate, default=Round(""))


def _best(rounds: list[Round]) -> float:
    return max((r.rate for r in rounds), default=0.0)


def _row(columns, cells: Iterable[str]) -> str:
    return "  ".join(str(cell).ljust(width) for cell, (_, width) in zip(cells, columns, strict=True)).rstrip()
