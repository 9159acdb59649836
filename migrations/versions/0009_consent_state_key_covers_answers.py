"""The current state's primary key carries what a lookup answers with (PostgreSQL).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29

A lookup then reads its answer from the key alone (an index-only scan) instead of the key and then the row:
one page fewer per subject and purpose, and the table's own pages out of the lookups' working set. The price
is paid on writes: a changed decision now writes a new key entry (no heap-only update), which a log that is
asked far more often than it is written can afford. SQLite has no INCLUDE; there the key stays as it is.
One ALTER TABLE, so the table is never without its key; it holds an exclusive lock while the key is rebuilt.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

KEY = "site_id, subject_id, purpose"
ANSWER = "decision, action, event_id, notice_version, decided_at, expires_at"


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE consent_state DROP CONSTRAINT pk_consent_state,"
            f" ADD CONSTRAINT pk_consent_state PRIMARY KEY ({KEY}) INCLUDE ({ANSWER})"
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE consent_state DROP CONSTRAINT pk_consent_state,"
            f" ADD CONSTRAINT pk_consent_state PRIMARY KEY ({KEY})"
        )
