"""RFC 8785 canonical JSON of consent events: `cmp.services.canonical.dumps` beside `rfc8785.dumps`, same run.

Verifying a consent log hashes, for every event, the canonical JSON of its payload and of its evidence. This
builds `--events` realistic events in memory (a seeded mix of actions, sources, three to seven purposes, locales,
countries, GPC, guardians, user agents and page URLs, as `cmp verify` reads them back from an export), checks
that both encoders write the same bytes for every payload, then encodes all of them with each encoder in turn,
`--rounds` times, alternating. The table gives the best round of each in events per second (one event: its
payload and its evidence) and their ratio (ours / rfc8785). No database, no server: the encoders alone.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import rfc8785

from bench import summary
from bench.options import positive
from cmp.catalog import BUILTIN_LOCALES, DEFAULT_PURPOSES
from cmp.services import canonical, chain
from cmp.vocabulary import Action, Decision, Mode, Source

SITE = "demo"
SEED = 8785
PURPOSES = [purpose["key"] for purpose in DEFAULT_PURPOSES] + ["partner_sharing", "cross_border_transfer"]
COUNTRIES = (None, "DE", "FR", "US", "CN", "BR", "GB")
# What evidence.coarse_user_agent keeps of common browsers, and of a request that sent no header.
USER_AGENTS = (
    {"browser": "Chrome", "browser_major": 120, "os": "Windows", "device": "desktop", "bot": False},
    {"browser": "Mobile Safari", "browser_major": 17, "os": "iOS", "device": "mobile", "bot": False},
    {"browser": "Firefox", "browser_major": 121, "os": "Ubuntu", "device": "desktop", "bot": False},
    {"browser": "Googlebot", "browser_major": 2, "os": "Other", "device": "bot", "bot": True},
    None,
)
COLUMNS = (("encoder", 28), ("events", 8), ("best s", 8), ("events/s", 10), ("ratio", 6))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=positive, default=50_000, help="events encoded per round (%(default)s)")
    parser.add_argument("--rounds", type=positive, default=3, help="rounds of each encoder, best kept (%(default)s)")


def run(args: argparse.Namespace) -> int:
    values = [value for event in events(args.events) for value in hashed_values(event)]
    differing = sum(canonical.dumps(value) != rfc8785.dumps(value) for value in values)
    if differing:
        print(f"canonical: {differing} of {len(values)} values differ from rfc8785's bytes")
        return 1
    encoders = {"rfc8785.dumps": rfc8785.dumps, "cmp.services.canonical.dumps": canonical.dumps}
    best = {name: float("inf") for name in encoders}
    for _ in range(args.rounds):
        for name, encode in encoders.items():
            best[name] = min(best[name], seconds(encode, values))
    print_report(args.events, best)
    return 0


def events(count: int) -> Iterable[SimpleNamespace]:
    """`count` events as read back from an export: plain text and numbers, seeded so every run encodes the same."""
    rng = random.Random(SEED)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for n in range(count):
        received = start + timedelta(seconds=n, microseconds=rng.randrange(1_000_000))
        purposes = rng.sample(PURPOSES, rng.randint(3, 7))
        agent = rng.choice(USER_AGENTS)
        yield SimpleNamespace(
            id=f"01J{rng.getrandbits(92):023X}",
            seq=n + 1,
            subject_id=f"{rng.getrandbits(128):032x}",
            action=str(rng.choice(list(Action))),
            source=str(rng.choice(list(Source))),
            decisions={key: str(rng.choice(list(Decision))) for key in purposes},
            notice_version=rng.randint(1, 4),
            notice_hash=f"{rng.getrandbits(256):064x}",
            locale=rng.choice(BUILTIN_LOCALES),
            mode=str(rng.choice(list(Mode))),
            country=rng.choice(COUNTRIES),
            gpc=rng.random() < 0.1,
            received_at=received,
            expires_at=received + timedelta(days=365) if rng.random() < 0.9 else None,
            given_by="guardian" if rng.random() < 0.02 else None,
            evidence_salt=f"{rng.getrandbits(128):032x}",
            ip_prefix=rng.choice(("203.0.113.0", "198.51.100.0", "2001:db8:1::", None)),
            user_agent=dict(agent) if agent else None,
            page_url=f"https://shop.example/products/{rng.randrange(10_000)}",
            evidence_digest=f"{rng.getrandbits(256):064x}",
            prev_hash=f"{rng.getrandbits(256):064x}",
        )


def hashed_values(event: SimpleNamespace) -> tuple[dict, dict]:
    """What verifying one event canonicalises: its payload and its evidence, as chain.py builds them."""
    evidence = {
        "salt": event.evidence_salt,
        "ip_prefix": event.ip_prefix,
        "user_agent": event.user_agent,
        "page_url": event.page_url,
    }
    return chain.event_payload(event, SITE), evidence


def seconds(encode: Callable[[object], bytes], values: list) -> float:
    began = time.perf_counter()
    for value in values:
        encode(value)
    return time.perf_counter() - began


def print_report(count: int, best: dict[str, float]) -> None:
    theirs, ours = best["rfc8785.dumps"], best["cmp.services.canonical.dumps"]
    print(_row(name for name, _ in COLUMNS))
    for name, spent in best.items():
        print(_row([name, count, f"{spent:.3f}", f"{count / spent:,.0f}", f"{theirs / spent:.2f}"]))
    print("identical bytes for every payload and evidence object; ratio: events/s over rfc8785's")
    summary.record(
        "canonical JSON of an event (payload and evidence), events/s",
        f"{count / ours:,.0f}",
        f"rfc8785 {count / theirs:,.0f}",
        summary.ratio(theirs, ours),
    )


def _row(cells: Iterable[object]) -> str:
    return "  ".join(str(cell).ljust(width) for cell, (_, width) in zip(cells, COLUMNS, strict=True)).rstrip()
