"""Consent writes per second, as a ratio of GET /healthz on the same server, on SQLite and PostgreSQL.

For each backend: a fresh database, `cmp db upgrade`, `cmp demo`, then gunicorn on loopback.
Concurrent clients alternate rounds of GET /healthz (the ceiling: the same app, server and client
doing no work) and banner-style POST /api/v1/sites/demo/consents. The table reports the best round
of each and their ratio; afterwards `cmp verify` checks the chain and the event count is compared
with the number of 201 responses.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from bench import BenchError, summary
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
    ("writes/s", 9),
    ("ratio", 6),
    ("errors", 6),
    ("201s", 6),
    ("events", 6),
    ("verify", 8),
)


def configure(parser: argparse.ArgumentParser) -> None:
    add_load_options(parser, "writes")


@dataclass
class Outcome:
    """One backend's figures, and what the consent log says afterwards."""

    backend: str
    workers: int
    clients: int
    version: str = ""
    healthz: list[Round] = field(default_factory=list)
    writes: list[Round] = field(default_factory=list)
    warmup: list[Round] = field(default_factory=list)
    events: int | None = None
    chain_ok: bool = False
    chain_report: str = ""

    @property
    def rounds(self) -> list[Round]:
        return [*self.warmup, *self.healthz, *self.writes]

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
        return self.chain_ok and self.events == self.created


def run(args: argparse.Namespace) -> int:
    print(machine(), flush=True)
    outcomes, skipped = per_backend(args, bench_backend)
    print_report(outcomes, skipped)
    return 0 if all(o.errors == 0 and o.verified for o in outcomes) else 1


def bench_backend(backend: str, args: argparse.Namespace) -> Outcome:
    outcome = Outcome(backend, args.workers, args.clients)
    with prepared_demo(backend, args) as service:
        outcome.version = service.database.version
        with gunicorn(service.env, args.workers, service.port, service.directory / "gunicorn.log"):
            _measure(outcome, service.port, args)
        _check_log(outcome, service.env)
    return outcome


def calls(port: int) -> tuple[Call, Call]:
    """GET /healthz, and a first visit's "accept all" as the demo banner posts it."""
    origin = f"http://{HOST}:{port}"
    body = {"action": "accept_all", "notice_version": 1, "page_url": f"{origin}/demo", "locale": "en"}
    headers = {"Origin": origin, "Content-Type": "application/json", "User-Agent": USER_AGENT}
    healthz = Call("healthz", "GET", "/healthz", 200, headers={"User-Agent": USER_AGENT})
    writes = Call("writes", "POST", f"/api/v1/sites/{SITE}/consents", 201, json.dumps(body).encode(), headers)
    return healthz, writes


def _measure(outcome: Outcome, port: int, args: argparse.Namespace) -> None:
    healthz, writes = calls(port)
    # Every worker imports, connects and fills its caches before anything is timed.
    warmup = Limit(requests=4 * args.clients)
    for call in (healthz, writes):
        outcome.warmup.append(drive(HOST, port, call, args.clients, warmup))
    limit = Limit(requests=args.requests) if args.requests else Limit(seconds=args.seconds)
    for number in range(1, args.rounds + 1):
        for call, rounds in ((healthz, outcome.healthz), (writes, outcome.writes)):
            result = drive(HOST, port, call, args.clients, limit)
            rounds.append(result)
            errors = sum(result.errors.values())
            progress(
                outcome.backend,
                f"round {number} {call.name}: {result.rate:8.1f}/s"
                f" ({result.ok} in {result.elapsed:.1f}s, {errors} errors)",
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
    print(_row(name for name, _ in COLUMNS))
    for outcome in outcomes:
        print(_row(_cells(outcome)))
        healthz, writes = _best(outcome.healthz), _best(outcome.writes)
        summary.record(
            f"consent writes/s ({outcome.backend})",
            f"{writes:.1f}",
            f"GET /healthz {healthz:.1f}/s",
            summary.ratio(writes, healthz),
            "" if outcome.verified else "chain NOT verified",
        )
    for line in skipped:
        print(line)
    for outcome in outcomes:
        rounds = len(outcome.healthz)
        print(f"{outcome.backend}: {outcome.version}; best of {rounds} round{'s' * (rounds != 1)} of each")
        if not outcome.chain_ok:
            print(f"{outcome.backend}: cmp verify failed: {outcome.chain_report}")
        for error, count in outcome.error_counts().most_common():
            print(f"{outcome.backend}: {count} x {error}")


def _cells(outcome: Outcome) -> list[str]:
    healthz, writes = _best(outcome.healthz), _best(outcome.writes)
    ratio = f"{writes / healthz:.3f}" if healthz else "-"
    verify = "ok" if outcome.verified else ("mismatch" if outcome.chain_ok else "FAILED")
    return [
        outcome.backend,
        str(outcome.workers),
        str(outcome.clients),
        f"{healthz:.1f}",
        f"{writes:.1f}",
        ratio,
        str(outcome.errors),
        str(outcome.created),
        str(outcome.events),
        verify,
    ]


def _best(rounds: list[Round]) -> float:
    return max((r.rate for r in rounds), default=0.0)


def _row(cells: Iterable[str]) -> str:
    return "  ".join(str(cell).ljust(width) for cell, (_, width) in zip(cells, COLUMNS, strict=True)).rstrip()
