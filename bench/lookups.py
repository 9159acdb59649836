"""Consent lookups: single lookups per second beside reading one state row, and bulk lookups beside psycopg.

For each backend: a fresh database, `cmp db upgrade`, `cmp demo`, API keys from `cmp key create`, then
gunicorn on loopback serving the app with one endpoint more (bench.ceiling). A few subjects get consent through
the server API (real events), and concurrent clients alternate rounds of GET /healthz, GET /bench/state-row (the
ceiling: the same app reading the subject's state row by its key through the same pool) and
GET /api/v1/consents/lookup for the same subject. On PostgreSQL the benchmark then stores 1,000,000 more
subjects (identifiers and consent state, generated in SQL and loaded with COPY), times
POST /api/v1/consents/lookup with 10,000 of them per call, server-side (the Server-Timing header) and on the
client, beside psycopg alone fetching the same state rows with one plain statement, checks every answer against
the state it stored, and measures single lookups again at that size.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import random
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench import BenchError, cpu, summary
from bench.load import Call, Limit, Round, drive
from bench.options import add_load_options, machine, median, p95, per_backend, positive, prepared_demo, progress
from bench.server import HOST, cmp, gunicorn

SITE = "demo"
PURPOSE_SETS = (("analytics",), ("analytics", "marketing_email"))
SINGLE_COLUMNS = (
    ("backend", 9),
    ("subjects", 9),
    ("workers", 7),
    ("clients", 7),
    ("healthz req/s", 13),
    ("state row/s", 11),
    ("lookups/s", 9),
    ("ratio", 6),
    ("errors", 6),
)
CPU_COLUMNS = (
    ("cpu µs/req", 10),
    ("subjects", 9),
    ("request", 9),
    ("server", 6),
    ("database", 8),
    ("client", 6),
    ("total", 6),
    ("vs state row", 12),
)
BULK_COLUMNS = (
    ("bulk", 9),
    ("subjects", 9),
    ("per call", 8),
    ("purposes", 25),
    ("calls", 5),
    ("server ms p50", 13),
    ("p95", 6),
    ("of it db p50", 12),
    ("psycopg ms p50", 14),
    ("ratio", 6),
    ("round trip p50", 14),
    ("wrong", 5),
    ("errors", 6),
)
_SERVER_TIMING = re.compile(r"\bapp;dur=([0-9.]+)")
_DATABASE_TIMING = re.compile(r"\bdb;dur=([0-9.]+)")


def configure(parser: argparse.ArgumentParser) -> None:
    add_load_options(parser, "lookups", "; bulk lookups run on postgres only")
    parser.add_argument(
        "--seeded",
        type=positive,
        default=20,
        help="subjects given consent through the API before the single lookups (default: %(default)s)",
    )
    parser.add_argument(
        "--subjects",
        type=positive,
        default=1_000_000,
        help="subjects stored on PostgreSQL for the bulk lookups (default: %(default)s)",
    )
    parser.add_argument(
        "--batch",
        type=_batch,
        default=10_000,
        help="subjects per bulk lookup, at most 10000 (default: %(default)s)",
    )
    parser.add_argument(
        "--calls", type=positive, default=10, help="timed bulk calls per purpose set (default: %(default)s)"
    )


def _batch(text: str) -> int:
    value = positive(text)
    if value > 10_000:
        raise argparse.ArgumentTypeError(f"the service takes at most 10000 subjects per call, got {value}")
    return value


@dataclass
class Singles:
    """Single lookups beside the state-row ceiling and /healthz on one backend, at one database size."""

    backend: str
    stored: int
    workers: int
    clients: int
    healthz: list[Round] = field(default_factory=list)
    state_rows: list[Round] = field(default_factory=list)
    lookups: list[Round] = field(default_factory=list)
    warmup: list[Round] = field(default_factory=list)

    def error_counts(self) -> Counter:
        rounds = (*self.warmup, *self.healthz, *self.state_rows, *self.lookups)
        return sum((r.errors for r in rounds), Counter())


@dataclass
class Bulk:
    """Timed bulk lookups for one purpose set: milliseconds per call, and answers that did not match the data."""

    purposes: tuple[str, ...]
    stored: int
    per_call: int
    server_ms: list[float] = field(default_factory=list)
    database_ms: list[float] = field(default_factory=list)
    round_trip_ms: list[float] = field(default_factory=list)
    # The same state rows fetched by psycopg alone with one plain statement, between the calls.
    psycopg_ms: list[float] = field(default_factory=list)
    wrong: int = 0
    errors: Counter = field(default_factory=Counter)


@dataclass
class Outcome:
    backend: str
    version: str = ""
    singles: list[Singles] = field(default_factory=list)
    bulk: list[Bulk] = field(default_factory=list)
    seed_seconds: float | None = None

    def error_count(self) -> int:
        single = sum(sum(s.error_counts().values()) for s in self.singles)
        return single + sum(sum(b.errors.values()) + b.wrong for b in self.bulk)


def run(args: argparse.Namespace) -> int:
    print(machine(), flush=True)
    outcomes, skipped = per_backend(args, bench_backend)
    print_report(outcomes, skipped, args)
    return 0 if all(o.error_count() == 0 for o in outcomes) else 1


def bench_backend(backend: str, args: argparse.Namespace) -> Outcome:
    outcome = Outcome(backend)
    with prepared_demo(backend, args, ", creating keys") as service:
        database, env, port = service.database, service.env, service.port
        outcome.version = database.version
        reader = _new_key(env, "bench-reader", "consent:read")
        writer = _new_key(env, "bench-writer", "consent:write")
        # The product's app with the state-row ceiling beside it (bench.ceiling).
        log = service.directory / "gunicorn.log"
        with gunicorn(env, args.workers, port, log, app="bench.ceiling:app") as server:
            subjects = _record_consents(port, writer, args.seeded)
            known = _stored_keys(database.url, env["CMP_HMAC_KEY"], subjects)
            outcome.singles.append(_singles(backend, args.seeded, port, reader, known, args, server.pid))
            if backend == "postgres":
                progress(backend, f"storing {args.subjects:,} subjects with COPY")
                outcome.seed_seconds = seed_subjects(database.url, env["CMP_HMAC_KEY"], args.subjects)
                progress(backend, f"stored in {outcome.seed_seconds:.1f}s")
                for purposes in PURPOSE_SETS:
                    outcome.bulk.append(_bulk(port, reader, purposes, args, database.url, env["CMP_HMAC_KEY"]))
                sample = random.Random(7).sample(range(1, args.subjects + 1), args.rounds)
                at_scale = _stored_keys(database.url, env["CMP_HMAC_KEY"], [f"user:{n}" for n in sample])
                stored = args.subjects + args.seeded
                outcome.singles.append(_singles(backend, stored, port, reader, at_scale, args, server.pid))
    return outcome


def _new_key(env: dict[str, str], name: str, scope: str) -> str:
    return cmp(env, "key", "create", "--name", name, "--scope", scope).stdout.strip().splitlines()[0]


def _record_consents(port: int, writer: str, count: int) -> list[str]:
    """Give `count` users consent for analytics through the server API, as an account sign-up would."""
    subjects = [f"user:api-{n}" for n in range(1, count + 1)]
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        for subject in subjects:
            body = json.dumps({"subject": subject, "decisions": {"analytics": "granted"}})
            headers = {"Authorization": f"Bearer {writer}", "Content-Type": "application/json"}
            connection.request("POST", f"/api/v1/sites/{SITE}/consents", body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 201:
                raise BenchError(f"recording consent for {subject}: HTTP {response.status} {answer[:200]!r}")
    finally:
        connection.close()
    return subjects


def _digest(hmac_key: str, subject: str) -> str:
    """The keyed digest the service stores for `subject` (a `user:` identifier, which has no normal form to apply)."""
    return hmac.new(hmac_key.encode(), f"{SITE}\x00{subject}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class StoredKey:
    """A subject as a lookup names it, and the key of its analytics state row, which the ceiling reads."""

    subject: str
    site_id: int
    subject_id: str


def _stored_keys(database_url: str, hmac_key: str, subjects: list[str]) -> list[StoredKey]:
    """Each subject's state-row key, read from the database through its identifier's digest."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            site_id = connection.execute(text("SELECT id FROM sites WHERE key = :key"), {"key": SITE}).scalar_one()
            statement = text("SELECT subject_id FROM subject_identifiers WHERE site_id = :site_id AND digest = :digest")
            keys = []
            for subject in subjects:
                found = connection.execute(statement, {"site_id": site_id, "digest": _digest(hmac_key, subject)})
                subject_id = found.scalar_one_or_none()
                if subject_id is None:
                    raise BenchError(f"{subject} is not stored: the benchmark's digest differs from the service's")
                keys.append(StoredKey(subject, site_id, subject_id))
            return keys
    finally:
        engine.dispose()


def _singles(
    backend: str, stored: int, port: int, reader: str, subjects: list[StoredKey], args, server: int
) -> Singles:
    outcome = Singles(backend, stored, args.workers, args.clients)
    headers = {"Authorization": f"Bearer {reader}"}
    healthz = Call("healthz", "GET", "/healthz", 200)

    def state_row(key: StoredKey) -> Call:
        query = urlencode({"site_id": key.site_id, "subject_id": key.subject_id, "purpose": "analytics"})
        return Call("state row", "GET", f"/bench/state-row?{query}", 200)

    def lookup(key: StoredKey) -> Call:
        query = urlencode({"site": SITE, "subject": key.subject, "purpose": "analytics"})
        return Call("lookups", "GET", f"/api/v1/consents/lookup?{query}", 200, headers=headers)

    # Every worker imports, connects and fills its caches before anything is timed.
    warmup = Limit(requests=4 * args.clients)
    for call in (healthz, state_row(subjects[0]), lookup(subjects[0])):
        outcome.warmup.append(drive(HOST, port, call, args.clients, warmup))
    limit = Limit(requests=args.requests) if args.requests else Limit(seconds=args.seconds)
    for number in range(1, args.rounds + 1):
        # Each round asks about another subject; the ceiling reads the row the lookup reads.
        key = subjects[(number - 1) % len(subjects)]
        kinds = ((healthz, outcome.healthz), (state_row(key), outcome.state_rows), (lookup(key), outcome.lookups))
        for call, rounds in kinds:
            before = cpu.snapshot(server)
            result = drive(HOST, port, call, args.clients, limit)
            after = cpu.snapshot(server)
            if before and after:
                result.cpu_us = after.since(before).per_request_us(result.ok)
                if backend == "sqlite":  # in the server's own process; a PostgreSQL nearby serves others
                    del result.cpu_us["database"]
            rounds.append(result)
            progress(
                backend,
                f"{stored:,} subjects, round {number} {call.name}: {result.rate:8.1f}/s"
                f" ({result.ok} in {result.elapsed:.1f}s, {sum(result.errors.values())} errors)",
            )
    return outcome


# --- 1,000,000 subjects on PostgreSQL ----------------------------------------------------------------------

# Subject n is `user:<n>`, with subject id md5('s' || n) cut to 22 characters, as random-looking as real ones.
# Its state, which `expected` mirrors: analytics denied for every 4th, expired for every 50th of the rest,
# granted otherwise; marketing_email confirmed for every 3rd, unsubscribed for the next, no record for the rest.
_SUBJECTS = """
INSERT INTO subjects (id, site_id, created_at)
SELECT substr(md5('s' || n), 1, 22), %(site_id)s, now() FROM generate_series(1, %(count)s) AS n
"""
_STATES = """
INSERT INTO consent_state
    (site_id, subject_id, purpose, decision, action, source, event_id, notice_version, decided_at, expires_at)
SELECT %(site_id)s, substr(md5('s' || n), 1, 22), p.purpose,
    CASE WHEN p.purpose = 'analytics' AND n %% 4 = 0 THEN 'denied'
         WHEN p.purpose = 'marketing_email' AND n %% 3 = 1 THEN 'denied'
         ELSE 'granted' END,
    CASE WHEN p.purpose = 'analytics' AND n %% 4 = 0 THEN 'reject_all'
         WHEN p.purpose = 'analytics' THEN 'accept_all'
         WHEN n %% 3 = 0 THEN 'confirm'
         ELSE 'unsubscribe' END,
    'import', %(event_id)s, 1,
    now() - make_interval(days => CASE WHEN n %% 50 = 0 AND p.purpose = 'analytics' THEN 400 ELSE n %% 300 END),
    now() + make_interval(days => CASE WHEN n %% 50 = 0 AND p.purpose = 'analytics' THEN -35 ELSE 365 - n %% 300 END)
FROM generate_series(1, %(count)s) AS n
CROSS JOIN (VALUES ('analytics'), ('marketing_email')) AS p (purpose)
WHERE p.purpose = 'analytics' OR n %% 3 <> 2
"""


def _has_state(n: int, stored: int, purpose: str) -> bool:
    """Whether `_STATES` stores a row for `user:<n>` and `purpose`."""
    return n <= stored and (purpose == "analytics" or n % 3 != 2)


def expected(n: int, stored: int, purpose: str) -> str:
    """The reason a lookup must give for `user:<n>`, from the rules `_STATES` stores."""
    if n > stored:
        return "no_record"
    if purpose == "analytics":
        return "denied" if n % 4 == 0 else "expired" if n % 50 == 0 else "granted"
    return ("granted", "withdrawn", "no_record")[n % 3]


# Loading into tables without their indexes, then building each once, is several times faster than updating
# them row by row. They are rebuilt exactly as the migrations made them: names and definitions are read from the
# catalog first. subject_identifiers keeps its primary key, which assigns the rows' ids.
_DEFERRED_INDEXES = """
SELECT index.relname, pg_get_indexdef(index.oid), key.conname, pg_get_constraintdef(key.oid), tab.relname
FROM pg_index
JOIN pg_class AS index ON index.oid = pg_index.indexrelid
JOIN pg_class AS tab ON tab.oid = pg_index.indrelid
LEFT JOIN pg_constraint AS key ON key.conindid = index.oid AND key.contype IN ('p', 'u')
WHERE tab.relname IN ('subject_identifiers', 'consent_state') AND index.relname <> 'pk_subject_identifiers'
ORDER BY index.relname
"""


def _deferred_indexes(connection: psycopg.Connection) -> list[tuple[str, str]]:
    """(drop, create) statements for the indexes the load builds afterwards."""
    statements = []
    for index, index_definition, constraint, constraint_definition, table in connection.execute(_DEFERRED_INDEXES):
        if constraint:
            statements.append(
                (
                    f"ALTER TABLE {table} DROP CONSTRAINT {constraint}",
                    f"ALTER TABLE {table} ADD CONSTRAINT {constraint} {constraint_definition}",
                )
            )
        else:
            statements.append((f"DROP INDEX {index}", index_definition))
    return statements


def seed_subjects(database_url: str, hmac_key: str, count: int) -> float:
    """Store `count` subjects `user:1`...: subjects and state generated in SQL, identifiers COPYed; seconds taken.

    The identifiers' digests are computed here exactly as the service computes them (HMAC-SHA256 over site,
    kind and value), so lookups find them. Every state row points to one real event of the site, recorded
    through the API: lookups read only the current state, never the log. The rows are consistent by
    construction, so a superuser skips the per-row foreign key checks.
    """
    started = time.perf_counter()
    conninfo = _conninfo(database_url)
    with psycopg.connect(conninfo) as connection:
        site_id = connection.execute("SELECT id FROM sites WHERE key = %s", (SITE,)).fetchone()[0]
        event = connection.execute(
            "SELECT id FROM consent_events WHERE site_id = %s ORDER BY seq LIMIT 1", (site_id,)
        ).fetchone()
        if event is None:
            raise BenchError("no consent event to point the generated state at")
        superuser = connection.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
        if superuser:
            connection.execute("SET LOCAL session_replication_role = replica")
        connection.execute("SET LOCAL maintenance_work_mem = '256MB'")
        deferred = _deferred_indexes(connection)
        for drop, _ in deferred:
            connection.execute(drop)
        parameters = {"site_id": site_id, "count": count, "event_id": event[0]}
        connection.execute(_SUBJECTS, parameters)
        with connection.cursor().copy(
            "COPY subject_identifiers (site_id, subject_id, kind, digest, created_at) FROM STDIN"
        ) as copy:
            for chunk in _identifier_rows(site_id, hmac_key, count):
                copy.write(chunk)
        connection.execute(_STATES, parameters)
        for _, create in deferred:
            connection.execute(create)
    # As autovacuum would leave them: statistics for the planner, and the visibility map set.
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE subjects, subject_identifiers, consent_state")
    return time.perf_counter() - started


def _conninfo(database_url: str) -> str:
    """`database_url` (SQLAlchemy's, naming its driver) as psycopg takes it."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _identifier_rows(site_id: int, hmac_key: str, count: int, chunk: int = 50_000) -> Iterator[bytes]:
    created = datetime.now(UTC).isoformat()
    for start in range(1, count + 1, chunk):
        lines = []
        for n in range(start, min(start + chunk, count + 1)):
            digest = _digest(hmac_key, f"user:{n}")
            subject_id = hashlib.md5(f"s{n}".encode(), usedforsecurity=False).hexdigest()[:22]
            lines.append(f"{site_id}\t{subject_id}\tuser\t{digest}\t{created}\n")
        yield "".join(lines).encode()


# The floor of a bulk lookup: the same state rows, fetched by psycopg alone with one plain statement (no
# SQLAlchemy, no key check, no rule), given the digests the service would compute. The asked digests are joined
# row by row to the (site, digest) index, as the service's own statement does.
_PLAIN_STATE_ROWS = """
SELECT si.digest, cs.purpose, cs.decision, cs.action, cs.event_id, cs.notice_version, cs.decided_at,
    cs.expires_at, cs.given_by
FROM unnest(%(digests)s::text[]) AS asked (digest)
JOIN subject_identifiers AS si ON si.site_id = %(site_id)s AND si.digest = asked.digest
JOIN consent_state AS cs ON cs.site_id = si.site_id AND cs.subject_id = si.subject_id
    AND cs.purpose = ANY(%(purposes)s)
"""


def _bulk(port: int, reader: str, purposes: tuple[str, ...], args, database_url: str, hmac_key: str) -> Bulk:
    """Time `args.calls` bulk lookups, one at a time, after a warm-up call per worker; check every answer.

    After each call psycopg alone fetches the same state rows (`_PLAIN_STATE_ROWS`), and their count is checked
    against the stored state.
    """
    outcome = Bulk(purposes, args.subjects, args.batch)
    chooser = random.Random(len(purposes))
    # One in twenty asked about is not stored at all: those must answer no_record.
    numbers = [chooser.randint(1, args.subjects + args.subjects // 19) for _ in range(args.batch)]
    body = json.dumps({"site": SITE, "subjects": [f"user:{n}" for n in numbers], "purposes": list(purposes)})
    headers = {"Authorization": f"Bearer {reader}", "Content-Type": "application/json"}
    # As the service asks: each subject once, in digest order.
    distinct = sorted({n: _digest(hmac_key, f"user:{n}") for n in numbers}.items(), key=lambda item: item[1])
    stored_rows = sum(_has_state(n, args.subjects, purpose) for n, _ in distinct for purpose in purposes)
    with psycopg.connect(_conninfo(database_url), autocommit=True) as plain:
        site_id = plain.execute("SELECT id FROM sites WHERE key = %s", (SITE,)).fetchone()[0]
        parameters = {"site_id": site_id, "digests": [digest for _, digest in distinct], "purposes": list(purposes)}
        for number in range(args.workers + args.calls):
            timed = number >= args.workers
            _bulk_call(outcome, port, body, headers, numbers, timed)
            started = time.perf_counter()
            rows = plain.execute(_PLAIN_STATE_ROWS, parameters, prepare=True).fetchall()
            elapsed = (time.perf_counter() - started) * 1000
            if len(rows) != stored_rows:
                outcome.errors[f"psycopg: {len(rows)} state rows, {stored_rows} stored"] += 1
            if timed:
                outcome.psycopg_ms.append(elapsed)
    progress(
        "postgres",
        f"bulk {'+'.join(purposes)}: server {median(outcome.server_ms):.1f} ms median,"
        f" psycopg alone {median(outcome.psycopg_ms):.1f} ms,"
        f" round trip {median(outcome.round_trip_ms):.1f} ms, {outcome.wrong} wrong answers",
    )
    return outcome


def _bulk_call(outcome: Bulk, port: int, body: str, headers: dict, numbers: list[int], timed: bool) -> None:
    """One bulk lookup on a new connection: every answer checked, its times kept where `timed`."""
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        started = time.perf_counter()
        connection.request("POST", "/api/v1/consents/lookup", body=body.encode(), headers=headers)
        response = connection.getresponse()
        answer = response.read()
        elapsed = (time.perf_counter() - started) * 1000
    except (OSError, http.client.HTTPException) as exc:
        outcome.errors[f"bulk: {type(exc).__name__}: {exc}"] += 1
        return
    finally:
        connection.close()
    if response.status != 200:
        outcome.errors[f"bulk: HTTP {response.status} {answer[:200].decode(errors='replace')}"] += 1
        return
    outcome.wrong += _wrong_answers(json.loads(answer), numbers, outcome.stored, outcome.purposes)
    if not timed:
        return
    timing = response.getheader("Server-Timing") or ""
    server, database = _SERVER_TIMING.search(timing), _DATABASE_TIMING.search(timing)
    outcome.round_trip_ms.append(elapsed)
    if server:
        outcome.server_ms.append(float(server.group(1)))
        if database:
            outcome.database_ms.append(float(database.group(1)))
    else:
        outcome.errors["bulk: no Server-Timing header"] += 1


def _wrong_answers(answer: dict, numbers: list[int], stored: int, purposes: tuple[str, ...]) -> int:
    results = answer["results"]
    if len(results) != len(numbers):
        return len(numbers)
    wrong = 0
    for n, result in zip(numbers, results, strict=True):
        reasons = {p: expected(n, stored, p) for p in purposes}
        allowed = all(reason == "granted" for reason in reasons.values())
        got = {p: a["reason"] for p, a in result["purposes"].items()}
        wrong += result["subject"] != f"user:{n}" or got != reasons or result["allowed"] != allowed
    return wrong


# --- report -------------------------------------------------------------------------------------------------


def _best(rounds: list[Round]) -> float:
    return _best_round(rounds).rate


def print_report(outcomes: list[Outcome], skipped: list[str], args: argparse.Namespace) -> None:
    print(_row(SINGLE_COLUMNS, (name for name, _ in SINGLE_COLUMNS)))
    for outcome in outcomes:
        for singles in outcome.singles:
            healthz, state_rows, lookups = _best(singles.healthz), _best(singles.state_rows), _best(singles.lookups)
            ratio = summary.ratio(lookups, state_rows)
            print(
                _row(
                    SINGLE_COLUMNS,
                    [
                        singles.backend,
                        f"{singles.stored:,}",
                        str(singles.workers),
                        str(singles.clients),
                        f"{healthz:.1f}",
                        f"{state_rows:.1f}",
                        f"{lookups:.1f}",
                        ratio,
                        str(sum(singles.error_counts().values())),
                    ],
                )
            )
            summary.record(
                f"single lookups/s ({singles.backend}, {singles.stored:,} subjects)",
                f"{lookups:.1f}",
                f"GET /bench/state-row {state_rows:.1f}/s",
                ratio,
                f">= 0.8 ({'met' if ratio != '-' and float(ratio) >= 0.8 else 'NOT met'})",
            )
    _print_cpu(outcomes)
    bulk = [b for outcome in outcomes for b in outcome.bulk]
    if bulk:
        print(_row(BULK_COLUMNS, (name for name, _ in BULK_COLUMNS)))
        for b in bulk:
            server, plain = median(b.server_ms), median(b.psycopg_ms)
            ratio = summary.ratio(server, plain)
            print(
                _row(
                    BULK_COLUMNS,
                    [
                        "postgres",
                        f"{b.stored:,}",
                        f"{b.per_call:,}",
                        ",".join(b.purposes),
                        str(len(b.round_trip_ms)),
                        f"{server:.1f}",
                        f"{p95(b.server_ms):.1f}",
                        f"{median(b.database_ms):.1f}" if b.database_ms else "-",
                        f"{plain:.1f}",
                        ratio,
                        f"{median(b.round_trip_ms):.1f}",
                        str(b.wrong),
                        str(sum(b.errors.values())),
                    ],
                )
            )
            summary.record(
                f"bulk lookup server ms p50 ({b.per_call:,} of {b.stored:,}, {'+'.join(b.purposes)})",
                f"{server:.1f}",
                f"psycopg alone p50 {plain:.1f}",
                ratio,
                f"<= 2 ({'met' if ratio != '-' and float(ratio) <= 2 else 'NOT met'}); {b.wrong} wrong",
            )
    for line in skipped:
        print(line)
    for outcome in outcomes:
        rounds = len(outcome.singles[0].healthz) if outcome.singles else 0
        print(f"{outcome.backend}: {outcome.version}; single lookups: best of {rounds} round(s) of each")
        if outcome.seed_seconds is not None:
            print(
                f"{outcome.backend}: {args.subjects:,} subjects stored in {outcome.seed_seconds:.1f}s;"
                f" bulk: {args.calls} timed calls per purpose set, one at a time, after {args.workers} warm-up calls;"
                " server ms from the Server-Timing header, round trip on the client; after each call psycopg"
                " alone fetches the same state rows on one autocommit connection"
            )
        errors = sum((s.error_counts() for s in outcome.singles), Counter())
        errors += sum((b.errors for b in outcome.bulk), Counter())
        for error, count in errors.most_common():
            print(f"{outcome.backend}: {count} x {error}")


def _print_cpu(outcomes: list[Outcome]) -> None:
    """CPU per request in the best round of each kind: what a lookup costs beyond its ceiling, and where."""
    measured = [s for outcome in outcomes for s in outcome.singles if _best_round(s.state_rows).cpu_us]
    if not measured:
        return
    print(_row(CPU_COLUMNS, (name for name, _ in CPU_COLUMNS)))
    for singles in measured:
        ceiling = sum(_best_round(singles.state_rows).cpu_us.values())
        for name, rounds in (
            ("healthz", singles.healthz),
            ("state row", singles.state_rows),
            ("lookups", singles.lookups),
        ):
            used = _best_round(rounds).cpu_us
            total = sum(used.values())
            beyond = f"{total - ceiling:+.0f}" if rounds is not singles.state_rows else "-"
            cells = [f"{used[group]:.0f}" if group in used else "-" for group in cpu.GROUPS]
            print(_row(CPU_COLUMNS, [singles.backend, f"{singles.stored:,}", name, *cells, f"{total:.0f}", beyond]))


def _best_round(rounds: list[Round]) -> Round:
    return max(rounds, key=lambda r: r.rate, default=Round(""))


def _row(columns, cells: Iterable[str]) -> str:
    return "  ".join(str(cell).ljust(width) for cell, (_, width) in zip(cells, columns, strict=True)).rstrip()
