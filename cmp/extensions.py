"""Flask extensions, created unbound and bound to the app in the factory."""

import select
import sqlite3

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, event
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import Pool

# Stable constraint names, so Alembic revisions can name what they drop.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Objects keep their loaded values after commit: a view can dump what it just wrote without reading it back.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()


def insert_or_merge(model, dialect: str | None = None):
    """An INSERT for `model` that takes ON CONFLICT clauses, in the dialect of `dialect` or of this session's database.

    PostgreSQL and SQLite, the two databases cmp runs on, spell ON CONFLICT alike but SQLAlchemy builds it per dialect.
    """
    dialect = dialect or db.session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite_dialect.insert)(model)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """SQLite enforces foreign keys only when asked; WAL lets readers work beside the writer."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    if cursor.execute("PRAGMA database_list").fetchone()[2]:  # a file, not :memory:
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


@event.listens_for(Pool, "checkout")
def _discard_closed_connections(dbapi_connection, connection_record, connection_proxy):
    """Never hand out a PostgreSQL connection the server has closed (restart, pg_terminate_backend, idle timeout).

    An idle connection receives nothing unless the server is closing it: its last message, or the end of the
    stream, makes the socket readable. Looking costs no round trip, where the pool's pre-ping sends a query on
    every checkout (a third of a single lookup's time). DisconnectionError makes the pool discard this one and
    check out another; a database that is down then fails to connect, which the API answers with 503.
    """
    pgconn = getattr(dbapi_connection, "pgconn", None)
    if pgconn is None:  # not psycopg
        return
    if dbapi_connection.closed or dbapi_connection.broken:
        raise DisconnectionError("connection closed")
    poll = select.poll()
    poll.register(pgconn.socket, select.POLLIN)
    if poll.poll(0):
        raise DisconnectionError("the server closed the connection")
