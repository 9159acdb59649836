"""What each app is given: a pool that hands out only connections the database has not closed, its own signers."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from cmp.extensions import db
from cmp.services import notices, sites
from tests.conftest import make_app, running_app
from tests.helpers import ORIGIN, post_consent

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


OLD_SECRET = "old-secret-key-0123456789abcdef"
NEW_SECRET = "new-secret-key-0123456789abcdef"


def test_each_app_signs_with_its_own_keys_and_still_accepts_its_former_ones(database_url):
    with running_app(database_url, CMP_SECRET_KEY=OLD_SECRET) as before:
        site = sites.create_site("shop", "Shop", origins=[ORIGIN])
        notices.publish_notice(site)
        db.session.commit()
        receipt = urlsplit(post_consent(before.test_client(), action="accept_all").json["receipt_url"])
        path = f"{receipt.path}?{receipt.query}"

        rotated = make_app(database_url, CMP_SECRET_KEY=NEW_SECRET, CMP_SECRET_KEY_FALLBACKS=[OLD_SECRET])
        stranger = make_app(database_url, CMP_SECRET_KEY=NEW_SECRET)
        try:
            assert rotated.test_client().get(path).status_code == 200
            refused = stranger.test_client().get(path)
            assert refused.status_code == 403 and refused.json["error"]["code"] == "invalid_receipt_token"
            # Still readable where it was signed: each app kept its own signer.
            assert before.test_client().get(path).status_code == 200
        finally:
            for other in (rotated, stranger):
                with other.app_context():
                    db.engine.dispose()
