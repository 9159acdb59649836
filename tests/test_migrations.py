"""Migrations run up and down on SQLite and PostgreSQL, and leave exactly the schema the models describe."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from cmp import MIGRATIONS
from cmp.extensions import db
from tests.conftest import make_app

REVISIONS = len(list((MIGRATIONS / "versions").glob("*.py")))
TABLES = {
    "sites",
    "purposes",
    "cookies",
    "notice_versions",
    "subjects",
    "subject_identifiers",
    "consent_events",
    "chain_heads",
    "consent_state",
    "api_keys",
    "email_activity",
    "chain_checkpoints",
    "dashboard_sessions",
    "unsubscribe_links",
    "jurisdiction_acknowledgements",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
    return request.getfixturevalue("postgres_databases").create()


@contextmanager
def migrations_app(database_url: str):
    """An app on `database_url` with its context pushed; afterwards its connections are closed."""
    app = make_app(database_url)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def _tables(app) -> set[str]:
    return set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}


def _schema_diff(app) -> list:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def test_upgrade_matches_the_models_and_downgrade_removes_everything(empty_database):
    with migrations_app(empty_database) as app:
        upgrade()
        assert _tables(app) == TABLES
        assert _schema_diff(app) == []
        downgrade(revision="base")
        assert _tables(app) == set()
        upgrade()
        assert _tables(app) == TABLES


def test_every_revision_steps_down_and_up(empty_database):
    with migrations_app(empty_database) as app:
        upgrade()
        for _ in range(REVISIONS):
            downgrade(revision="-1")
        assert _tables(app) == set()
        for _ in range(REVISIONS):
            upgrade(revision="+1")
        assert _schema_diff(app) == []


def _state_key(app) -> str:
    with db.engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'pk_consent_state'")
        ).scalar_one()


@pytest.mark.postgres
def test_the_state_key_carries_the_answer_on_postgresql(postgres_databases):
    """Revisions 0009 and 0014: lookups read their answer, who gave it included, from the key (index-only);
    stepping down restores each earlier key."""
    with migrations_app(postgres_databases.create()) as app:
        upgrade()
        answer = "decision, action, event_id, notice_version, decided_at, expires_at"
        assert _state_key(app) == f"PRIMARY KEY (site_id, subject_id, purpose) INCLUDE ({answer}, given_by)"
        downgrade(revision="0013")
        assert _state_key(app) == f"PRIMARY KEY (site_id, subject_id, purpose) INCLUDE ({answer})"
        downgrade(revision="0008")
        assert _state_key(app) == "PRIMARY KEY (site_id, subject_id, purpose)"


def _collations(app, columns: set[str]) -> dict[str, str | None]:
    with db.engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT table_name || '.' || column_name, collation_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND data_type = 'character varying'"
            )
        )
        return {column: collation for column, collation in rows if column in columns}


@pytest.mark.postgres
def test_subject_keys_compare_bytes_on_postgresql(postgres_databases):
    """Revision 0010: every subject id, digest and state purpose column is COLLATE "C", and a lookup's plan
    still reads the state by its key; stepping down returns them to the database's collation."""
    keys = {
        "subjects.id",
        "subject_identifiers.subject_id",
        "subject_identifiers.digest",
        "consent_events.subject_id",
        "consent_state.subject_id",
        "consent_state.purpose",
        "email_activity.subject_id",
    }
    with migrations_app(postgres_databases.create()) as app:
        upgrade()
        assert _collations(app, keys) == dict.fromkeys(keys, "C")
        with db.engine.connect() as connection:
            plan = connection.execute(
                sa.text(
                    "EXPLAIN SELECT decision FROM subject_identifiers JOIN consent_state"
                    " ON consent_state.site_id = subject_identifiers.site_id"
                    " AND consent_state.subject_id = subject_identifiers.subject_id"
                    " WHERE subject_identifiers.site_id = 1 AND subject_identifiers.digest = :digest"
                    " AND consent_state.purpose = ANY(string_to_array(:purposes, ','))"
                ),
                {"digest": "ab" * 32, "purposes": "analytics"},
            ).scalars()
            plan = "\n".join(plan)
        assert "uq_subject_identifiers_site_id_digest" in plan and "pk_consent_state" in plan
        downgrade(revision="0009")
        assert _collations(app, keys) == dict.fromkeys(keys, None)


def test_existing_state_learns_who_gave_it_from_the_log(empty_database):
    """Revision 0014: a state row whose event a guardian gave says so after the upgrade; the others say nobody."""
    with migrations_app(empty_database):
        upgrade(revision="0013")
        now = "2026-01-01 00:00:00+00:00"
        statements = [
            "INSERT INTO sites (id, key, name, allowed_origins, locales, default_locale, jurisdiction_overrides,"
            " texts, created_at) VALUES (1, 'shop', 'Shop', '[]', '[\"en\"]', 'en', '{}', '{}', :now)",
            "INSERT INTO subjects (id, site_id, created_at) VALUES ('s1', 1, :now), ('s2', 1, :now)",
        ]
        for number, given_by in ((1, "guardian"), (2, None)):
            statements += [
                "INSERT INTO consent_events (id, site_id, seq, subject_id, action, source, decisions, mode, gpc,"
                " received_at, evidence_digest, prev_hash, hash, given_by) VALUES"
                f" ('e{number}', 1, {number}, 's{number}', 'accept_all', 'api', '{{}}', 'opt_in', false, :now,"
                f" 'd', 'p', 'h{number}', {repr(given_by) if given_by else 'NULL'})",
                "INSERT INTO consent_state (site_id, subject_id, purpose, decision, action, source, event_id,"
                f" decided_at) VALUES (1, 's{number}', 'analytics', 'granted', 'accept_all', 'api', 'e{number}', :now)",
            ]
        with db.engine.begin() as connection:
            for statement in statements:
                connection.execute(sa.text(statement), {"now": now})
        upgrade()
        with db.engine.connect() as connection:
            given = connection.execute(sa.text("SELECT subject_id, given_by FROM consent_state ORDER BY subject_id"))
            assert given.all() == [("s1", "guardian"), ("s2", None)]
            flags = connection.execute(sa.text("SELECT restricted, child FROM subjects")).all()
            assert flags == [(False, False), (False, False)]
        downgrade(revision="0013")  # with rows in every table it touches
        with db.engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM consent_state")).scalar_one() == 2
