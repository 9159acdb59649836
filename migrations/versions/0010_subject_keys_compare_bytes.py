"""Subject ids, identifier digests and state purposes compare byte by byte (PostgreSQL).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30

These columns hold machine keys (random ids, hex digests, purpose keys), never words, yet on a database whose
default collation is linguistic every comparison in their indexes went through the locale. With COLLATE "C"
PostgreSQL compares them as bytes, which a bulk lookup's 20,000 index descents notice. Every column holding a
subject id changes together, so joins and foreign keys between them stay in one collation. The values and the
order of hex digests and ids do not change. SQLite compares bytes already; there nothing changes.

The types keep their length, so no table is rewritten, but each index on these columns is rebuilt under an
exclusive lock on its table: on a large database, run it in a quiet hour.
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# (table, column, type), in an order where each subject id follows the key it refers to.
COLUMNS = (
    ("subjects", "id", "varchar(32)"),
    ("subject_identifiers", "subject_id", "varchar(32)"),
    ("subject_identifiers", "digest", "varchar(64)"),
    ("consent_events", "subject_id", "varchar(32)"),
    ("consent_state", "subject_id", "varchar(32)"),
    ("consent_state", "purpose", "varchar(64)"),
    ("email_activity", "subject_id", "varchar(32)"),
)


def _collate(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    tables: dict[str, list[str]] = {}
    for table, column, type_ in COLUMNS:
        tables.setdefault(table, []).append(f"ALTER COLUMN {column} TYPE {type_} COLLATE {collation}")
    for table, changes in tables.items():
        op.execute(f"ALTER TABLE {table} {', '.join(changes)}")


def upgrade():
    _collate('"C"')


def downgrade():
    _collate('"default"')
