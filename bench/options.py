"""What the load benchmarks share: their command-line options, the machine line, progress, databases."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import BenchError
from bench.databases import (
    DEFAULT_POSTGRES_URL,
    Database,
    Unavailable,
    postgres_database,
    require_loopback,
    sqlite_database,
)
from bench.server import HOST, app_environment, cmp, free_port

BACKENDS = ("sqlite", "postgres")


def cpu_count() -> int:
    """What `nproc` prints: the CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine() -> str:
    load = f", load average {os.getloadavg()[0]:.1f} at start" if hasattr(os, "getloadavg") else ""
    return (
        f"machine: nproc {cpu_count()}, Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.system()} {platform.machine()}{load}"
    )


def add_database_options(parser: argparse.ArgumentParser, backends_note: str = "") -> None:
    """The backends to measure, and the PostgreSQL server on which to make throwaway databases."""
    parser.add_argument(
        "--backends",
        type=backends,
        default=list(BACKENDS),
        metavar="LIST",
        help=f"comma-separated, from: {','.join(BACKENDS)} (default: all{backends_note})",
    )
    add_postgres_option(parser)


def add_postgres_option(parser: argparse.ArgumentParser) -> None:
    """The PostgreSQL server on which to make throwaway databases."""
    parser.add_argument(
        "--postgres-url",
        type=loopback_url,
        default=DEFAULT_POSTGRES_URL,
        help="loopback server on which to create the throwaway database (default: %(default)s)",
    )


def add_load_options(parser: argparse.ArgumentParser, measured: str, backends_note: str = "") -> None:
    """Backends, clients, workers, rounds alternating healthz and `measured`, round length, PostgreSQL server."""
    add_database_options(parser, backends_note)
    parser.add_argument("--clients", type=positive, default=16, help="concurrent client threads (default: %(default)s)")
    parser.add_argument(
        "--workers",
        type=positive,
        default=2 * cpu_count() + 1,
        help="gunicorn sync workers (default: 2 x nproc + 1 = %(default)s, gunicorn's advice)",
    )
    parser.add_argument(
        "--rounds",
        type=positive,
        default=2,
        help=f"rounds of each request, alternating healthz and {measured} (default: %(default)s)",
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument(
        "--seconds", type=positive_seconds, default=3.0, help="length of each round (default: %(default)s)"
    )
    length.add_argument("--requests", type=positive, help="requests in each round, instead of --seconds")


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def loopback_url(text: str) -> str:
    try:
        require_loopback(text)
    except BenchError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def backends(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(BACKENDS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(BACKENDS)}; got {text!r}")
    return list(dict.fromkeys(names))


def throwaway_database(backend: str, directory: Path, args: argparse.Namespace) -> AbstractContextManager[Database]:
    """A throwaway database: a SQLite file in `directory`, or a PostgreSQL database on `--postgres-url`."""
    if backend == "sqlite":
        return sqlite_database(directory)
    return postgres_database(args.postgres_url)


def progress(backend: str, message: str) -> None:
    print(f"  {backend}: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Prepared:
    """A migrated database with the demo site seeded, and where its server is to listen."""

    database: Database
    env: dict[str, str]
    port: int
    directory: Path


@contextmanager
def prepared_demo(backend: str, args: argparse.Namespace, doing: str = "") -> Iterator[Prepared]:
    """A throwaway database, migrated, with the demo site seeded for a server on a free loopback port."""
    with (
        tempfile.TemporaryDirectory(prefix="cmp-bench-") as directory,
        throwaway_database(backend, Path(directory), args) as database,
    ):
        progress(backend, f"{database.version}: migrating, seeding the demo site{doing}")
        env = app_environment(database.url)
        port = free_port()
        cmp(env, "db", "upgrade")
        cmp(env, "demo", "--base-url", f"http://{HOST}:{port}")
        yield Prepared(database, env, port, Path(directory))


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def per_backend(args: argparse.Namespace, measure: Callable) -> tuple[list, list[str]]:
    """`measure(backend, args)` for each backend asked for; a backend that cannot be reached is skipped, and said."""
    outcomes, skipped = [], []
    for backend in args.backends:
        try:
            outcomes.append(measure(backend, args))
        except Unavailable as exc:
            skipped.append(f"{backend}: skipped: {exc}")
    return outcomes, skipped
