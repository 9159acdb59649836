"""Fresh, throwaway databases for one benchmark run: a SQLite file, or a PostgreSQL database."""

from __future__ import annotations

import ipaddress
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from bench import BenchError

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class Unavailable(BenchError):
    """The backend cannot be reached; the benchmark skips it."""


@dataclass(frozen=True)
class Database:
    url: str
    version: str


@contextmanager
def sqlite_database(directory: Path) -> Iterator[Database]:
    """A file in `directory`, which the caller removes."""
    yield Database(f"sqlite:///{directory / 'cmp.sqlite3'}", f"SQLite {sqlite3.sqlite_version}")


@contextmanager
def postgres_database(admin_url: str) -> Iterator[Database]:
    """A uniquely named database created through `admin_url`, dropped on the way out."""
    require_loopback(admin_url)
    name = f"cmp_bench_{secrets.token_hex(4)}"
    with _admin(admin_url) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        version = connection.info.server_version
    # Named outright: SQLAlchemy 2.0, which setup.cfg allows, reads a bare postgresql:// as psycopg2.
    url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name)
    try:
        yield Database(url.render_as_string(hide_password=False), f"PostgreSQL {version // 10000}.{version % 10000}")
    finally:
        with _admin(admin_url) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def require_loopback(url: str) -> None:
    host = make_url(url).host
    if host in (None, "", "localhost"):
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise BenchError(f"the benchmark only uses loopback addresses; {host!r} is not one")


def _admin(admin_url: str) -> psycopg.Connection:
    try:
        return psycopg.connect(
            make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False),
            autocommit=True,
            connect_timeout=3,
        )
    except psycopg.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Unavailable(f"PostgreSQL not reachable at {make_url(admin_url)}: {first_line}") from None
