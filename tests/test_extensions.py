"""The pool hands out only connections the database has not closed, without a round trip to find out."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from cmp.extensions import db
from tests.conftest import running_app

OTHERS = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"


def terminate_other_connections(url: str) -> int:
    """Close every other connection to the database from the server's side, as a restart would; how many."""
    admin = sa.create_engine(url)
    try:
        with admin.connect() as connection:
            closed = connection.execute(sa.text(f"SELECT count(pg_terminate_backend(pid)) {OTHERS}")).scalar()
            # pg_terminate_backend only signals: wait until those server processes have gone.
            for _ in range(100):
                if not connection.execute(sa.text(f"SELECT count(*) {OTHERS}")).scalar():
                    break
                time.sleep(0.05)
            return closed
    finally:
        admin.dispose()


@pytest.mark.postgres
def test_a_connection_the_server_closed_is_not_handed_out(postgres_url):
    with running_app(postgres_url):
        with db.engine.connect() as connection:
            first = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        assert db.engine.pool.checkedin() == 1
        assert terminate_other_connections(postgres_url) >= 1
        statements: list[str] = []
        sa.event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        with db.engine.connect() as connection:
            second = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        assert second != first
        assert statements == ["SELECT pg_backend_pid()"]  # and no ping before it
