"""Fixtures: an app on a migrated database (SQLite, or PostgreSQL with CMP_TEST_DATABASE_URL), client, runner.

Set CMP_TEST_DATABASE_URL=postgresql://... to run the whole suite against PostgreSQL. Tests marked
`postgres` need PostgreSQL: they use that database, or a throwaway one made on CMP_TEST_POSTGRES_URL
(default postgresql://postgres@127.0.0.1:5432/postgres), and are skipped without one — except in CI
(CI=true), where a skip is a failure.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from cmp import create_app
from cmp.extensions import db
from cmp.services import notices, sites

IN_CI = os.environ.get("CI") == "true"
POSTGRES_ADMIN_URL = os.environ.get("CMP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SHARED_GEOIP = Path(__file__).resolve().parents[2] / "shared" / "geoip"

from cmp.services.notes import generate_key  # noqa: E402
from tests.helpers import ORIGIN, bearer  # noqa: E402


def skip_or_fail(reason: str):
    """Skip locally; in CI a missing dependency must fail the run rather than pass it quietly."""
    if IN_CI:
        pytest.fail(f"{reason} (skips count as failures when CI=true)", pytrace=False)
    pytest.skip(reason)


# The consent log's signing key for this run (tests read its public half from `tlog.log_key()`).
LOG_KEY = generate_key("cmp.test")[0]


def settings(database_url: str, **overrides) -> dict:
    return {
        "CMP_ENV": "testing",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "CMP_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "CMP_HMAC_KEY": "test-hmac-key-fedcba9876543210",
        "CMP_LOG_KEY": LOG_KEY,
        "CMP_LOG_LEVEL": "WARNING",
        # Tests send many requests from one address; tests/test_rate_limits.py turns the limits on.
        "CMP_RATE_LIMIT_PUBLIC": "off",
        "CMP_RATE_LIMIT_API": "off",
        **overrides,
    }


def make_app(database_url: str, **overrides):
    return create_app(settings(database_url, **overrides))


def migrate_to_head(database_url: str) -> None:
    app = make_app(database_url)
    with app.app_context():
        upgrade()
        db.session.remove()
        db.engine.dispose()


def clear_database(database_url: str) -> None:
    """Empty every table (faster than dropping them); the schema stays migrated."""
    engine = sa.create_engine(database_url)
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(sa.text(f"DELETE FROM {table}"))
    engine.dispose()


class ThrowawayPostgres:
    """Creates and drops uniquely named PostgreSQL databases next to a given one."""

    def __init__(self, admin_url: str):
        self.admin_url = sa.make_url(admin_url).set(drivername="postgresql+psycopg")
        self.engine = sa.create_engine(
            self.admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        self.created: list[str] = []

    def create(self) -> str:
        name = f"cmp_test_{secrets.token_hex(4)}"
        with self.engine.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.engine.connect() as connection:
            for name in self.created:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.engine.dispose()


def _postgres_reachable(url: str) -> str | None:
    try:
        engine = sa.create_engine(
            sa.make_url(url).set(drivername="postgresql+psycopg"), connect_args={"connect_timeout": 3}
        )
        with engine.connect():
            pass
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


@contextmanager
def running_app(database_url: str, **overrides):
    """An app with its context pushed; afterwards its connections are closed and the tables emptied."""
    app = make_app(database_url, **overrides)
    with app.app_context():
        yield app
        # Close the session before touching tables, or PostgreSQL waits on its open transaction.
        db.session.remove()
        db.engine.dispose()
    clear_database(database_url)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("CMP_TEST_DATABASE_URL")
    if url:
        url = url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url
        if url.startswith("postgresql"):
            problem = _postgres_reachable(url)
            if problem:
                pytest.exit(f"CMP_TEST_DATABASE_URL is not reachable: {problem}", returncode=3)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'cmp.sqlite3'}"
    migrate_to_head(url)
    return url


@pytest.fixture(scope="session")
def backend(database_url) -> str:
    return sa.make_url(database_url).get_backend_name()


@pytest.fixture(scope="session")
def postgres_databases(database_url):
    """A factory of throwaway PostgreSQL databases, or a skip (a failure in CI) without a server."""
    admin = database_url if database_url.startswith("postgresql") else POSTGRES_ADMIN_URL
    admin = sa.make_url(admin).set(database="postgres").render_as_string(hide_password=False)
    problem = _postgres_reachable(admin)
    if problem:
        skip_or_fail(f"PostgreSQL not reachable at {admin}: {problem}")
    factory = ThrowawayPostgres(admin)
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def postgres_url(database_url, postgres_databases) -> str:
    """A migrated PostgreSQL database: the suite's own when it runs on PostgreSQL, else a throwaway one."""
    if database_url.startswith("postgresql"):
        return database_url
    url = postgres_databases.create()
    migrate_to_head(url)
    return url


@pytest.fixture
def app(database_url):
    with running_app(database_url) as app:
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def site(app):
    """A site with the seeded purposes, one cookie and notice v1 published."""
    site = sites.create_site("shop", "Shop", origins=[ORIGIN], policy_url="https://shop.example/privacy")
    sites.add_cookie(
        site, "_ga", purpose="analytics", provider="Google", storage="persistent", lifetime_seconds=730 * 86400
    )
    notices.publish_notice(site)
    db.session.commit()
    return site


# API keys of one scope each, for the `shop` site's tests: the Authorization header to send.
@pytest.fixture
def reader(site):
    return bearer("consent:read")


@pytest.fixture
def writer(site):
    return bearer("consent:write")


@pytest.fixture
def sender(site):
    return bearer("email:write")


@pytest.fixture
def dsr(site):
    return bearer("dsr")


@pytest.fixture
def shared_geoip() -> Path:
    """MaxMind's test databases beside the project; these cases are skipped where the folder is absent."""
    if not SHARED_GEOIP.is_dir():
        pytest.skip("MaxMind test databases are not present beside the project")
    return SHARED_GEOIP


def pytest_report_header(config):
    url = os.environ.get("CMP_TEST_DATABASE_URL")
    backend = sa.make_url(url).get_backend_name() if url else "sqlite"
    return f"cmp database: {backend}{' (CI: skips of required suites fail)' if IN_CI else ''}"
