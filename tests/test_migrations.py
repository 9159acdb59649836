"""Migrations run up and down on SQLite and PostgreSQL, and leave exactly the schema the models describe."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from cmp import MIGRATIONS
from cmp.extensions import db
from cmp.models import ChainHead, ConsentEvent, LogCheckpoint, Site
from cmp.models.types import utcnow
from cmp.services import chain, notices, sites, tlog
from cmp.services.consent import ConsentRequest, Lifetimes, record_consent
from cmp.services.demo import seed_demo
from cmp.services.identifiers import Identifier, new_event_id
from cmp.vocabulary import Action, IdentifierKind, Source
from tests.conftest import make_app
from tests.helpers import tree_root

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
    "log_tiles",
    "log_checkpoints",
    "log_witnesses",
    "log_cosignatures",
    "decision_rollups",
    "purpose_rollups",
    "log_verifications",
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


def _row_counts(tables) -> dict[str, int]:
    with db.engine.connect() as connection:
        return {table: connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one() for table in tables}


def test_stepping_down_past_rebuilt_tables_keeps_what_references_them(empty_database):
    """SQLite rebuilds a table to drop a column: the sites others reference, their purposes and cookies survive."""
    kept = ("sites", "purposes", "cookies", "notice_versions")
    with migrations_app(empty_database) as app:
        upgrade()
        seed_demo("http://127.0.0.1:5000")
        db.session.commit()
        before = _row_counts(kept)
        db.session.remove()

        downgrade(revision="0011")  # drops columns of sites and purposes: on SQLite, each table is rebuilt
        assert _row_counts(kept) == before
        upgrade()
        assert _row_counts(kept) == before
        assert _schema_diff(app) == []
        if db.engine.dialect.name == "sqlite":
            with db.engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
                assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []


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


# --- 0016: the hash chain becomes a transparency log -------------------------------------------------------------

NOW = "2026-01-01 00:00:00+00:00"
REMOVED = "00" * 32  # the leaf of a position a purge removed before 0016


def _v1_chain(site_key: str, site_id: int, count: int) -> list[dict]:
    """`count` events linked as the version 1 chain links them: each hash covers its seq and the previous hash."""
    rows, prev_hash = [], chain.GENESIS_HASH
    for seq in range(1, count + 1):
        row = {
            "id": new_event_id(),
            "site_id": site_id,
            "seq": seq,
            "subject_id": f"{site_key}-s{seq}",
            "action": "accept_all",
            "source": "api",
            "decisions": {"analytics": "granted"},
            "notice_version": None,
            "notice_hash": None,
            "locale": None,
            "mode": "opt_in",
            "country": None,
            "gpc": False,
            "received_at": utcnow(),
            "expires_at": None,
            "given_by": None,
            "ip_prefix": None,
            "user_agent": None,
            "page_url": None,
            "evidence_salt": None,
            "evidence_digest": chain.evidence_digest(None, None, None, None),
            "prev_hash": prev_hash,
        }
        row["hash"] = prev_hash = chain.event_hash(ConsentEvent(**row), site_key)
        rows.append(row)
    return rows


@pytest.fixture
def chains_before_0016(empty_database):
    """At 0015: `shop` with four linked events; `blog` with four, of which a purge removed the first two; each
    subject's state."""
    with migrations_app(empty_database) as app:
        upgrade(revision="0015")
        shop, blog = _v1_chain("shop", 1, 4), _v1_chain("blog", 2, 4)
        with db.engine.begin() as connection:
            for site_id, key in ((1, "shop"), (2, "blog")):
                connection.execute(
                    sa.text(
                        "INSERT INTO sites (id, key, name, allowed_origins, locales, default_locale,"
                        " jurisdiction_overrides, texts, created_at)"
                        " VALUES (:id, :key, :key, '[]', '[\"en\"]', 'en', '{}', '{}', :now)"
                    ),
                    {"id": site_id, "key": key, "now": NOW},
                )
            kept = shop + blog[2:]
            for row in kept:
                connection.execute(
                    sa.text("INSERT INTO subjects (id, site_id, created_at) VALUES (:id, :site_id, :now)"),
                    {"id": row["subject_id"], "site_id": row["site_id"], "now": NOW},
                )
            connection.execute(sa.insert(ConsentEvent.__table__), kept)
            for row in kept:  # each subject's current state points at its event, as in every real database
                connection.execute(
                    sa.text(
                        "INSERT INTO consent_state (site_id, subject_id, purpose, decision, action, source, event_id,"
                        " decided_at) VALUES (:site_id, :subject_id, 'analytics', 'granted', 'accept_all', 'api',"
                        " :id, :now)"
                    ),
                    {**row, "now": NOW},
                )
            connection.execute(
                sa.text("INSERT INTO chain_heads (site_id, seq, hash) VALUES (1, 4, :shop), (2, 4, :blog)"),
                {"shop": shop[-1]["hash"], "blog": blog[-1]["hash"]},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO chain_checkpoints (site_id, seq, hash, removed, created_at)"
                    " VALUES (2, 2, :hash, 2, :now)"
                ),
                {"hash": blog[1]["hash"], "now": NOW},
            )
        yield app, {"shop": shop, "blog": blog}


def _stored(site_id: int) -> list[tuple[str, int, str]]:
    db.session.expire_all()
    return [
        tuple(row)
        for row in db.session.execute(
            sa.select(ConsentEvent.id, ConsentEvent.seq, ConsentEvent.hash)
            .where(ConsentEvent.site_id == site_id)
            .order_by(ConsentEvent.seq)
        )
    ]


def _verified_chain(site_id: int, site_key: str, start: tuple[int, str]) -> chain.Verification:
    """The version 1 check, from the rows alone: every link and hash, from `start`."""
    columns = [column for column in ConsentEvent.__table__.columns if column.name != "entry"]  # added by 0016
    rows = db.session.execute(sa.select(*columns).where(ConsentEvent.site_id == site_id).order_by(ConsentEvent.seq))
    return chain.check_events(rows, site_key, 4, None, start=start, removed=None)


def test_a_version_1_chain_becomes_the_first_leaves_of_its_tree(chains_before_0016):
    app, written = chains_before_0016
    shop, blog = written["shop"], written["blog"]
    assert _verified_chain(1, "shop", (0, chain.GENESIS_HASH)).ok
    assert _verified_chain(2, "blog", (2, blog[1]["hash"])).ok
    before = {1: _stored(1), 2: _stored(2)}
    db.session.remove()  # no reader may hold the table the upgrade alters

    upgrade()
    assert {1: _stored(1), 2: _stored(2)} == before  # places and hashes unchanged
    shop_site, blog_site = db.session.get(Site, 1), db.session.get(Site, 2)
    heads = {head.site_id: head for head in db.session.scalars(sa.select(ChainHead))}
    assert (heads[1].seq, heads[1].hash) == (4, tree_root([row["hash"] for row in shop]))
    # What a purge removed before the tree existed has no hash left: each such position is the removed leaf.
    assert (heads[2].seq, heads[2].hash) == (4, tree_root([REMOVED, REMOVED] + [row["hash"] for row in blog[2:]]))
    for site in (shop_site, blog_site):
        result = chain.verify_site(site)
        assert result.ok and result.checkpoint_size is None, result
    assert (chain.verify_site(shop_site).checked, chain.verify_site(blog_site).checked) == (4, 2)

    # The first checkpoint is the sequencer's, signed with the service's key: the migration holds none.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LogCheckpoint)) == 0
    for site in (shop_site, blog_site):
        done = tlog.integrate(site)
        assert (done.integrated, done.checkpoint.size, done.checkpoint.root) == (0, 4, heads[site.id].hash)
        result = chain.verify_site(site)
        assert result.ok and result.checkpoint_size == 4, result
    assert tlog.integrate(shop_site) is None  # nothing new: no second checkpoint of the same tree


def test_a_migrated_tree_still_catches_an_edited_version_1_event(chains_before_0016):
    app, written = chains_before_0016
    upgrade()
    site = db.session.get(Site, 1)
    tlog.integrate(site)
    table = ConsentEvent.__table__
    db.session.execute(sa.update(table).where(table.c.id == written["shop"][1]["id"]).values(action="reject_all"))
    db.session.commit()
    result = chain.verify_site(site)
    assert not result.ok and result.first_bad == written["shop"][1]["id"]
    assert "altered" in result.reason


def test_downgrade_puts_a_version_1_chain_back(chains_before_0016):
    app, written = chains_before_0016
    upgrade()
    tlog.integrate(db.session.get(Site, 1))
    db.session.commit()
    db.session.remove()
    downgrade(revision="0015")
    assert "log_tiles" not in _tables(app)
    heads = dict(db.session.execute(sa.text("SELECT site_id, hash FROM chain_heads")).all())
    db.session.remove()
    assert heads == {1: written["shop"][-1]["hash"], 2: written["blog"][-1]["hash"]}
    assert _verified_chain(1, "shop", (0, chain.GENESIS_HASH)).ok


def test_downgrade_refuses_once_an_event_has_no_chain_link(chains_before_0016):
    app, written = chains_before_0016
    upgrade()
    site = db.session.get(Site, 1)
    event = ConsentEvent(
        id=new_event_id(),
        subject_id=written["shop"][0]["subject_id"],
        action="reject_all",
        source="api",
        decisions={"analytics": "denied"},
        mode="opt_in",
        gpc=False,
        evidence_digest=chain.evidence_digest(None, None, None, None),
        received_at=utcnow(),
    )
    chain.seal(event, site)
    db.session.commit()
    tlog.integrate(site)
    db.session.remove()
    # Alembic itself, for the migration's own error (Flask-Migrate turns it into an exit status).
    config = app.extensions["migrate"].migrate.get_config()
    with pytest.raises(RuntimeError, match="1 consent events were hashed into the tree without a chain link"):
        command.downgrade(config, "0015")
    db.session.remove()
    assert "log_tiles" in _tables(app)
    assert chain.verify_site(db.session.get(Site, 1)).ok


def _rollup_rows() -> set[tuple]:
    return {
        tuple(row)
        for table in ("decision_rollups", "purpose_rollups")
        for row in db.session.execute(sa.text(f"SELECT * FROM {table}"))
    }


def test_rollups_are_filled_from_the_integrated_events(empty_database):
    """Revision 0018 counts what the log holds as the sequencer would have; pending events are left to it."""
    with migrations_app(empty_database):
        upgrade()
        site = sites.create_site("shop", "Shop")
        notices.publish_notice(site)
        db.session.commit()
        for visitor, action, decisions in [
            ("a", Action.ACCEPT_ALL, {}),
            ("b", Action.SAVE, {"analytics": "granted", "preferences": "denied"}),
            ("c", Action.DEFAULT, {}),
        ]:
            request = ConsentRequest(
                site, Identifier(IdentifierKind.VISITOR, visitor), action, Source.BANNER, decisions=decisions
            )
            record_consent(request, hmac_key="k" * 32, lifetimes=Lifetimes())
        tlog.integrate(site)
        counted = _rollup_rows()
        assert sum(row[-1] for row in counted if len(row) == 6) == 2  # two banner decisions, one default
        record_consent(
            ConsentRequest(site, Identifier(IdentifierKind.VISITOR, "d"), Action.REJECT_ALL, Source.BANNER),
            hmac_key="k" * 32,
            lifetimes=Lifetimes(),
        )
        db.session.remove()

        downgrade(revision="0017")
        upgrade()
        assert _rollup_rows() == counted
        tlog.integrate(db.session.get(Site, site.id))
        assert sum(row[-1] for row in _rollup_rows() if len(row) == 6) == 3
        db.session.remove()
