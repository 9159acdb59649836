"""Separate consent per purpose, and what restriction, correction and children's consent need of the store.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

- `purposes.separate_consent`: the purpose needs its own affirmative act (PIPL Art. 23, 38, 39; email tracking).
  Accept all never grants it. False for existing purposes.
- `consent_state.given_by`: who gave the decision behind the state ("guardian" for a parent or guardian), so a
  lookup for a child can tell a guardian's grant from the child's own. Existing rows are the subject's own
  decisions, except where their event says otherwise: copied from the log.
- `subjects.restricted` and `subjects.child`: processing restricted (GDPR Art. 18); the subject is a child below
  the site's age of digital consent (GDPR Art. 8). Both false for existing subjects.
- `sites.child_ages`: the age of digital consent per country (13 to 16; "*" for every other), empty for
  existing sites (16 everywhere).

- `purposes.recipients`: each recipient becomes `{"name", "contact"}` (PIPL Art. 39: the recipient's name and
  contact), contact null for the names kept so far; stepping down keeps the names and drops the contacts.

On PostgreSQL the current state's key carries `given_by` with the other answer columns (see 0009), so a lookup
still reads its answer from the key alone; one ALTER TABLE rebuilds it under an exclusive lock.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
KEY = "site_id, subject_id, purpose"
ANSWER = "decision, action, event_id, notice_version, decided_at, expires_at"


# --- Data conversion: purposes.recipients, names -> {"name", "contact"} (and back on downgrade). ---

PURPOSES = sa.table("purposes", sa.column("id", sa.Integer), sa.column("recipients", JSON))


def _convert_recipients(convert) -> None:
    connection = op.get_bind()
    for purpose_id, recipients in connection.execute(sa.select(PURPOSES.c.id, PURPOSES.c.recipients)).all():
        if recipients:
            converted = [convert(recipient) for recipient in recipients]
            connection.execute(PURPOSES.update().where(PURPOSES.c.id == purpose_id).values(recipients=converted))


def _recipient_with_contact(recipient):
    return {"name": recipient, "contact": None} if isinstance(recipient, str) else recipient


def _recipient_name(recipient):
    return recipient["name"] if isinstance(recipient, dict) else recipient


# --- Schema ---


def upgrade():
    # Plain ADD COLUMN, not a batch: on SQLite a batch copies the table, and dropping a table that others
    # reference fails once it holds rows.
    op.add_column("purposes", sa.Column("separate_consent", sa.Boolean(), nullable=False, server_default=sa.false()))
    _convert_recipients(_recipient_with_contact)
    op.add_column("subjects", sa.Column("restricted", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("subjects", sa.Column("child", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("sites", sa.Column("child_ages", JSON, nullable=False, server_default=sa.text("'{}'")))
    op.add_column("consent_state", sa.Column("given_by", sa.String(16), nullable=True))
    op.execute(
        "UPDATE consent_state SET given_by = (SELECT consent_events.given_by FROM consent_events"
        " WHERE consent_events.id = consent_state.event_id)"
        " WHERE EXISTS (SELECT 1 FROM consent_events WHERE consent_events.id = consent_state.event_id"
        " AND consent_events.given_by IS NOT NULL)"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE consent_state DROP CONSTRAINT pk_consent_state,"
            f" ADD CONSTRAINT pk_consent_state PRIMARY KEY ({KEY}) INCLUDE ({ANSWER}, given_by)"
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE consent_state DROP CONSTRAINT pk_consent_state,"
            f" ADD CONSTRAINT pk_consent_state PRIMARY KEY ({KEY}) INCLUDE ({ANSWER})"
        )
    # SQLite drops a column in place since 3.35; a batch would copy tables others reference.
    op.drop_column("consent_state", "given_by")
    op.drop_column("sites", "child_ages")
    op.drop_column("subjects", "child")
    op.drop_column("subjects", "restricted")
    _convert_recipients(_recipient_name)
    op.drop_column("purposes", "separate_consent")
