"""Audit export: first byte, events per second and peak memory of `cmp export` and GET /api/v1/audit/events.

For each backend: a fresh database, `cmp db upgrade` and `cmp demo`, then synthetic events for the demo site,
first `--small` and then up to `--events`: hashed here in one pass and stored pending (loaded with COPY on
PostgreSQL), then placed in the site's Merkle tree by the log's own sequencer (`tlog.integrate`), which writes its
tiles and signs its checkpoints; that integration is timed, and PostgreSQL's planner statistics are then
refreshed (the sequencer keeps SQLite's). At each size, each in a fresh process so that its peak memory is its own:

- `select`: the ceiling, a plain SELECT of the same rows in id order through a server-side cursor, each row
  written to a file as tab-separated text;
- `cli`: `cmp export --site demo -o FILE`, the command itself, run in a fresh interpreter;
- `http`: GET /api/v1/audit/events?site=demo from a fresh gunicorn (one gthread worker, as
  deploy/gunicorn.conf.py runs it), read by a client on loopback as it streams and written to a file;
- `verify`: `cmp verify --file` on that export, offline, with the log's verifier key, up to `--verify-up-to`
  events.

First byte is the time from the command's start or the request's sending to the first byte written or
received. Memory is the peak resident set size above what the process held once ready (app built, database
connected; for `http`, the server's worker after one small export): flat means it does not grow with the
number of events.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import BenchError, summary
from bench.options import (
    add_database_options,
    machine,
    per_backend,
    positive,
    prepared_demo,
    progress,
)
from bench.server import HOST, PROJECT, cmp, free_port, gunicorn
from cmp.services.tlog import BATCH

SITE = "demo"
SUBJECTS = 1000
COLUMNS = (
    ("backend", 9),
    ("events", 9),
    ("measure", 7),
    ("first byte s", 12),
    ("seconds", 8),
    ("events/s", 9),
    ("vs select", 9),
    ("MiB out", 8),
    ("peak RSS growth MiB", 19),
    ("result", 9),
)


def configure(parser: argparse.ArgumentParser) -> None:
    add_database_options(parser)
    parser.add_argument("--events", type=positive, default=1_000_000, help="events at the large size (%(default)s)")
    parser.add_argument(
        "--small", type=int, default=100_000, help="events at the small size, measured first; 0 skips it (%(default)s)"
    )
    parser.add_argument(
        "--verify-up-to",
        type=int,
        default=100_000,
        help="verify the export offline at sizes up to this many events (%(default)s; its hashing is slow)",
    )
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="export format (%(default)s)")
    parser.add_argument(
        "--batch",
        type=positive,
        default=BATCH,
        help="pending events the sequencer places per integration, each one transaction and checkpoint (%(default)s)",
    )


@dataclass
class Measure:
    backend: str
    events: int
    name: str
    first_byte: float | None
    seconds: float
    rows: int
    bytes: int
    growth_kib: int
    result: str


@dataclass
class Outcome:
    backend: str
    batch: int = BATCH
    version: str = ""
    seed_seconds: dict[int, float] = field(default_factory=dict)
    # Events integrated to reach each size, and how long the sequencer took.
    integrated: dict[int, tuple[int, float]] = field(default_factory=dict)
    measures: list[Measure] = field(default_factory=list)


def run(args: argparse.Namespace) -> int:
    print(machine(), flush=True)
    outcomes, skipped = per_backend(args, bench_backend)
    print_report(outcomes, skipped)
    bad = [m for o in outcomes for m in o.measures if m.result not in ("ok", "-")]
    return 1 if bad else 0


def bench_backend(backend: str, args: argparse.Namespace) -> Outcome:
    outcome = Outcome(backend, batch=args.batch)
    sizes = sorted({size for size in (args.small, args.events) if size > 0})
    with prepared_demo(backend, args) as service:
        outcome.version = service.database.version
        env, directory = service.env, service.directory
        token = cmp(env, "key", "create", "--name", "bench", "--scope", "audit:read").stdout.split()[0]
        stored = 0
        for size in sizes:
            progress(backend, f"storing events {stored + 1:,} to {size:,} (hashed in one pass, pending)")
            started = time.perf_counter()
            seed_events(service.database.url, stored, size - stored)
            outcome.seed_seconds[size] = time.perf_counter() - started
            progress(backend, f"integrating events {stored + 1:,} to {size:,}, {args.batch:,} per checkpoint")
            report = _run_worker(env, "integrate", service.database.url, str(args.batch))
            if report["rows"] != size - stored:
                raise BenchError(f"the sequencer integrated {report['rows']:,} events, expected {size - stored:,}")
            outcome.integrated[size] = (report["rows"], report["seconds"])
            stored = size
            out = directory / f"export.{args.format}"
            for name in ("select", "cli", "http", "verify"):
                if name == "verify" and size > args.verify_up_to:
                    continue
                progress(backend, f"{size:,} events: {name}")
                if name == "http":
                    report = _measure_http(env, token, directory, out, args.format)
                else:
                    report = _run_worker(env, name, service.database.url, str(out), args.format)
                outcome.measures.append(
                    Measure(
                        backend,
                        size,
                        name,
                        report.get("first_byte"),
                        report["seconds"],
                        report["rows"],
                        report["bytes"],
                        report["peak_kib"] - report["ready_kib"],
                        report["result"],
                    )
                )
                if report["rows"] != size:
                    raise BenchError(f"{name} read {report['rows']:,} events, expected {size:,}")
    return outcome


def _run_worker(env: dict[str, str], name: str, *arguments: str) -> dict:
    """Run one measurement in a fresh interpreter, with the app's settings: its peak memory is then its own."""
    command = [sys.executable, "-m", "bench.export", name, *arguments]
    done = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise BenchError(f"{name} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure_http(env: dict[str, str], token: str, directory: Path, out: Path, fmt: str) -> dict:
    """Download the export from a fresh gunicorn; the figures are the client's times and the worker's memory."""
    port = free_port()
    # The deployed worker class: a sync worker would be killed for a download longer than its timeout.
    served = {**env, "GUNICORN_CMD_ARGS": "--worker-class gthread --threads 4"}
    with gunicorn(served, 1, port, directory / "gunicorn.log") as server:
        worker = _worker_of(server.pid)
        # One small export first: the route, the key check and a database connection are then ready.
        with _download(port, token, f"site={SITE}&format={fmt}&from=2999-01-01T00:00:00Z") as response:
            response.read()
        ready = _reset_peak(worker)
        started = time.perf_counter()
        with _download(port, token, f"site={SITE}&format={fmt}") as response, open(out, "wb") as stream:
            stream.write(response.read1(65536))
            first_byte = time.perf_counter() - started
            while chunk := response.read1(65536):
                stream.write(chunk)
        seconds = time.perf_counter() - started
        peak = _status_kib("VmHWM", worker)
    rows = _count_events(out, fmt)
    return {
        "rows": rows,
        "first_byte": first_byte,
        "seconds": seconds,
        "bytes": out.stat().st_size,
        "ready_kib": ready,
        "peak_kib": peak,
        "result": "-",
    }


@contextmanager
def _download(port: int, token: str, query: str):
    connection = http.client.HTTPConnection(HOST, port, timeout=600)
    try:
        connection.request("GET", f"/api/v1/audit/events?{query}", headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        if response.status != 200:
            raise BenchError(f"the export answered {response.status}: {response.read()[:500]!r}")
        yield response
    finally:
        connection.close()


def _worker_of(master: int) -> int:
    import psutil

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = psutil.Process(master).children()
        if children:
            return children[0].pid
        time.sleep(0.1)
    raise BenchError("gunicorn started no worker")


# Generation: synthetic events that form a valid chain for the demo site.


def seed_events(database_url: str, stored: int, count: int) -> None:
    """Queue `count` pending events after the `stored` integrated ones: ids in time order, entries 1 to `count`.

    Nothing is placed: `seq` and `prev_hash` stay NULL and the head stays where it is, for the sequencer to move.
    """
    import sqlalchemy as sa

    from cmp.models import ChainHead, ConsentEvent, NoticeVersion, Site, Subject

    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        site_id = connection.scalar(sa.select(Site.id).where(Site.key == SITE))
        notice = connection.execute(
            sa.select(NoticeVersion.version, NoticeVersion.content_hash).where(NoticeVersion.site_id == site_id)
        ).first()
        size = connection.scalar(sa.select(ChainHead.seq).where(ChainHead.site_id == site_id))
        if size != stored:
            raise BenchError(f"the log's tree holds {size} events, expected {stored}")
        pending = connection.scalar(
            sa.select(sa.func.count()).where(ConsentEvent.site_id == site_id, ConsentEvent.seq.is_(None))
        )
        if pending:
            raise BenchError(f"{pending:,} events are pending already: the sequencer has not caught up")
        subjects = [f"bench-subject-{n:05d}" for n in range(SUBJECTS)]
        latest = connection.scalar(
            sa.select(sa.func.max(ConsentEvent.received_at)).where(ConsentEvent.site_id == site_id)
        )
        # One millisecond apart, after the events already stored: ids (ULIDs of those times) rise with entry.
        start = (latest or datetime.now(UTC) - timedelta(days=30)) + timedelta(milliseconds=1)
        if stored == 0:
            now = datetime.now(UTC)
            connection.execute(sa.insert(Subject), [{"id": s, "site_id": site_id, "created_at": now} for s in subjects])
    rows = _events(site_id, notice, subjects, count, start)
    if engine.dialect.name == "postgresql":
        _copy(engine, rows)
    else:
        _insert(engine, ConsentEvent.__table__, rows)
    engine.dispose()


def _events(site_id, notice, subjects, count, start):
    """Pending (version 2) events numbered 1 to `count` in entry order, hashed as chain.event_hash would hash them."""
    import hashlib
    from types import SimpleNamespace

    from ulid import ULID

    from cmp.services import chain

    # RFC 8785 output equals sorted compact JSON for these values (ASCII text, integers, no floats);
    # the first events are checked against the real canonicaliser, so the log stays valid.
    def fast_hash(payload: dict) -> str:
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    evidence = chain.evidence_digest(None, None, None, None)
    actions = ("accept_all", "reject_all", "save")
    for n in range(count):
        received = start + timedelta(milliseconds=n)
        granted = "granted" if n % 3 != 1 else "denied"
        event = SimpleNamespace(
            id=str(ULID.from_datetime(received)),
            site_id=site_id,
            seq=None,
            entry=n + 1,
            subject_id=subjects[n % len(subjects)],
            action=actions[n % 3],
            source="banner",
            decisions={"necessary": "granted", "preferences": granted, "analytics": granted},
            notice_version=notice.version,
            notice_hash=notice.content_hash,
            locale="en",
            mode="opt_in",
            country=None,
            gpc=False,
            received_at=received,
            expires_at=received + timedelta(days=365),
            given_by=None,
            ip_prefix=None,
            user_agent=None,
            page_url=None,
            evidence_salt=None,
            evidence_digest=evidence,
            prev_hash=None,
        )
        payload = chain.event_payload(event, SITE)
        event.hash = fast_hash(payload)
        if n < 100 and event.hash != chain.event_hash(event, SITE):
            raise BenchError("the fast hash differs from chain.event_hash")
        yield event


EVENT_COLUMNS = (
    "id",
    "site_id",
    "seq",
    "entry",
    "subject_id",
    "action",
    "source",
    "decisions",
    "notice_version",
    "notice_hash",
    "locale",
    "mode",
    "country",
    "gpc",
    "received_at",
    "expires_at",
    "given_by",
    "ip_prefix",
    "user_agent",
    "page_url",
    "evidence_salt",
    "evidence_digest",
    "prev_hash",
    "hash",
)


def _copy(engine, events, chunk: int = 20_000) -> None:
    """COPY the events in text format (no value holds a tab, newline or backslash)."""

    def text(value) -> str:
        if value is None:
            return "\\N"
        if isinstance(value, bool):
            return "t" if value else "f"
        if isinstance(value, dict):
            return json.dumps(value, separators=(",", ":"))
        if isinstance(value, datetime):
            return value.isoformat()
        return str(value)

    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        with cursor.copy(f"COPY consent_events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
            lines = []
            for event in events:
                lines.append("\t".join(text(getattr(event, c)) for c in EVENT_COLUMNS) + "\n")
                if len(lines) >= chunk:
                    copy.write("".join(lines))
                    lines = []
            copy.write("".join(lines))
        connection.commit()
        cursor.execute("ANALYZE consent_events")
        connection.commit()
    finally:
        connection.close()


def _insert(engine, table, events, chunk: int = 20_000) -> None:
    rows = []
    with engine.begin() as connection:
        for event in events:
            rows.append({c: getattr(event, c) for c in EVENT_COLUMNS})
            if len(rows) >= chunk:
                connection.execute(table.insert(), rows)
                rows = []
        if rows:
            connection.execute(table.insert(), rows)


# Measurements, each run as `python -m bench.export NAME DATABASE_URL FILE FORMAT` in its own process (the
# sequencer as `python -m bench.export integrate DATABASE_URL BATCH`).


def _status_kib(name: str, pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{name}:"):
                return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no {name} (the benchmark measures memory on Linux)")


def _reset_peak(pid: int | str = "self") -> int:
    """The resident set now, with the peak reset to it, so the peak read at the end is this run's own.

    (getrusage's ru_maxrss would not do: Linux carries it across exec from the process that forked us.)
    """
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM, the peak resident set, to the current one
    except OSError:
        pass
    return _status_kib("VmRSS", pid)


def _select(database_url: str, out: Path, fmt: str) -> dict:
    """The ceiling: the same rows in the same order, straight from the driver, as plain text lines.

    A named (server-side) cursor on PostgreSQL and sqlite3's own cursor, 1,000 rows a fetch.
    """
    import sqlite3

    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        connection = psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
        cursor = connection.cursor(name="ceiling")
    else:
        connection = sqlite3.connect(url.database)
        cursor = connection.cursor()
    ready = _reset_peak()
    started = time.perf_counter()
    rows = 0
    with open(out, "w", encoding="utf-8") as stream:
        cursor.execute("SELECT * FROM consent_events ORDER BY id")
        while batch := cursor.fetchmany(1000):
            stream.write("".join("\t".join(map(str, row)) + "\n" for row in batch))
            rows += len(batch)
    seconds = time.perf_counter() - started
    connection.close()
    return {"rows": rows, "seconds": seconds, "bytes": out.stat().st_size, "ready_kib": ready, "result": "-"}


def _cli(database_url: str, out: Path, fmt: str) -> dict:
    """`cmp export --site demo --format FMT -o FILE`, the command itself, with the app built and connected first."""
    from flask.cli import ScriptInfo
    from sqlalchemy import text

    from cmp import create_app
    from cmp.cli import audit, cli
    from cmp.extensions import db

    app = create_app()
    with app.app_context():
        db.session.execute(text("SELECT 1"))
    first_write: list[float] = []
    opened = audit._output

    @contextmanager
    def timed(path):
        with opened(path) as stream:
            yield _FirstWrite(stream, first_write)

    audit._output = timed
    ready = _reset_peak()
    started = time.perf_counter()
    cli.main(
        ["export", "--site", SITE, "--format", fmt, "-o", str(out)],
        obj=ScriptInfo(create_app=lambda: app),
        standalone_mode=False,
    )
    seconds = time.perf_counter() - started
    rows = _count_events(out, fmt)
    return {
        "rows": rows,
        "first_byte": first_write[0] - started,
        "seconds": seconds,
        "bytes": out.stat().st_size,
        "ready_kib": ready,
        "result": "-",
    }


class _FirstWrite:
    """A stream that notes when it is first written to."""

    def __init__(self, stream, noted: list[float]):
        self._stream, self._noted = stream, noted

    def write(self, text: str) -> int:
        if not self._noted:
            self._noted.append(time.perf_counter())
        return self._stream.write(text)


def _count_events(path: Path, fmt: str) -> int:
    marker = '{"entry":"event"' if fmt == "jsonl" else '"event",'
    with open(path, encoding="utf-8") as stream:
        return sum(1 for line in stream if line.startswith(marker))


def _integrate(batch: int) -> dict:
    """The log's sequencer over every pending event of the demo site, `batch` at a time, as its rounds place them.

    Each call is one transaction: it places its events, writes their tiles, moves the head and signs a checkpoint.
    On PostgreSQL the planner's statistics are then brought up to date (not timed), as its autovacuum would once
    so many rows have changed: statistics taken while every event was pending tell the planner that few events
    have a place, and it then sorts the whole log for an export rather than read it in id order. On SQLite the
    sequencer keeps them itself as the tree grows.
    """
    from sqlalchemy import select, text

    from cmp import create_app
    from cmp.extensions import db
    from cmp.models import Site
    from cmp.services import tlog

    app = create_app()
    with app.app_context():
        site = db.session.scalars(select(Site).where(Site.key == SITE)).one()
        ready = _reset_peak()
        started = time.perf_counter()
        rows = 0
        while (done := tlog.integrate(site, batch=batch)) is not None and done.integrated:
            rows += done.integrated
        seconds = time.perf_counter() - started
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("ANALYZE consent_events"))
            db.session.commit()
    return {"rows": rows, "seconds": seconds, "bytes": 0, "ready_kib": ready, "result": "-"}


def _verify(database_url: str, out: Path, fmt: str) -> dict:
    """`cmp verify --file --key`, as an auditor runs it: the file and the log's verifier key."""
    from cmp.services.export_verify import verify_file
    from cmp.services.tlog import LogKey

    key = LogKey.load(os.environ["CMP_LOG_KEY"]).verifier
    ready = _reset_peak()
    started = time.perf_counter()
    report = verify_file(out, key=key)
    seconds = time.perf_counter() - started
    rows = sum(site.result.checked for site in report.sites)
    result = "ok" if report.ok else "FAILED: " + "; ".join(str(s.result.reason) for s in report.sites)
    return {"rows": rows, "seconds": seconds, "bytes": 0, "ready_kib": ready, "result": result}


def print_report(outcomes: list[Outcome], skipped: list[str]) -> None:
    print(" | ".join(name.ljust(width) for name, width in COLUMNS))
    print("-|-".join("-" * width for _, width in COLUMNS))
    for outcome in outcomes:
        ceilings = {m.events: m.seconds for m in outcome.measures if m.name == "select"}
        for m in outcome.measures:
            rate = m.rows / m.seconds if m.seconds else 0
            ceiling = m.rows / ceilings[m.events] if ceilings.get(m.events) else 0
            cells = (
                m.backend,
                f"{m.events:,}",
                m.name,
                f"{m.first_byte:.3f}" if m.first_byte is not None else "-",
                f"{m.seconds:.1f}",
                f"{rate:,.0f}",
                f"{rate / ceiling:.2f}" if ceiling else "-",
                f"{m.bytes / 2**20:.0f}" if m.bytes else "-",
                f"{m.growth_kib / 1024:.1f}",
                m.result,
            )
            print(" | ".join(str(cell).ljust(width) for cell, (_, width) in zip(cells, COLUMNS, strict=True)))
    for outcome in outcomes:
        _summarise(outcome)
    for outcome in outcomes:
        seeded = ", ".join(f"{size:,} in {seconds:.0f}s" for size, seconds in outcome.seed_seconds.items())
        print(f"{outcome.backend}: {outcome.version}; events stored: {seeded}")
        integrated = ", ".join(
            f"{rows:,} in {seconds:.2f}s ({per_100k(rows, seconds):.1f}s per 100,000)"
            for rows, seconds in outcome.integrated.values()
        )
        print(f"{outcome.backend}: integrated by the sequencer ({outcome.batch:,} per checkpoint): {integrated}")
    for line in skipped:
        print(line)


def per_100k(rows: int, seconds: float) -> float:
    return seconds * 100_000 / rows if rows else float("nan")


def _summarise(outcome: Outcome) -> None:
    """At the largest size: the HTTP export's first byte, its rate beside the plain SELECT, both exports' memory."""
    rows = sum(rows for rows, _ in outcome.integrated.values())
    seconds = sum(seconds for _, seconds in outcome.integrated.values())
    if rows:
        summary.record(
            f"log integration s per 100,000 events ({outcome.backend}, {outcome.batch:,} per checkpoint)",
            f"{per_100k(rows, seconds):.2f}",
            f"{rows:,} events in {seconds:.1f}s",
        )
    measured = {(m.events, m.name): m for m in outcome.measures}
    largest = max((m.events for m in outcome.measures), default=None)
    http, select = measured.get((largest, "http")), measured.get((largest, "select"))
    if http is None or select is None:
        return
    size = f"{largest:,} events ({outcome.backend})"
    summary.record(
        f"export first byte s, HTTP, {size}",
        f"{http.first_byte:.3f}",
        "-",
        "",
        f"< 1 ({'met' if http.first_byte < 1 else 'NOT met'})",
    )
    rate, ceiling = http.rows / http.seconds, select.rows / select.seconds
    summary.record(
        f"export events/s, HTTP, {size}",
        f"{rate:,.0f}",
        f"plain SELECT to a file {ceiling:,.0f}/s",
        summary.ratio(rate, ceiling),
    )
    for name, whose in (("http", "server"), ("cli", "cmp export")):
        large = measured.get((largest, name))
        smaller = [m for m in outcome.measures if m.name == name and m.events < largest]
        if large is None:
            continue
        summary.record(
            f"export peak memory growth MiB, {whose}, {size}",
            f"{large.growth_kib / 1024:.1f}",
            f"at {smaller[0].events:,} events {smaller[0].growth_kib / 1024:.1f}" if smaller else "-",
            summary.ratio(large.growth_kib, smaller[0].growth_kib) if smaller else "",
            "flat (constant memory)",
        )


def _worker(argv: list[str]) -> None:
    name, database_url, *rest = argv
    if name == "integrate":
        report = _integrate(int(rest[0]))
    else:
        out, fmt = rest
        report = {"select": _select, "cli": _cli, "verify": _verify}[name](database_url, Path(out), fmt)
    report["peak_kib"] = _status_kib("VmHWM")
    print(json.dumps(report))


if __name__ == "__main__":
    os.environ.setdefault("CMP_LOG_LEVEL", "WARNING")
    _worker(sys.argv[1:])
