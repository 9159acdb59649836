"""Daily rollups of banner decisions, kept by the sequencer, and the results of full log verifications.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06

The dashboard reads `decision_rollups` and `purpose_rollups` instead of aggregating the log on every view. They are
filled here from the events already integrated, site by site, counted in the database; from then on the sequencer
counts each event it places. Pending events are left to it. `log_verifications` keeps
each `cmp verify` result per site, for the dashboard's verify page.
"""

import sqlalchemy as sa
from alembic import op

from cmp.services.rollups import count_statements

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

PURPOSE_KEY = sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")


def upgrade():
    op.create_table(
        "decision_rollups",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_decision_rollups_site_id_sites")),
        sa.PrimaryKeyConstraint("site_id", "day", "action", "country", "mode", name=op.f("pk_decision_rollups")),
    )
    op.create_table(
        "purpose_rollups",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("purpose", PURPOSE_KEY, nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_purpose_rollups_site_id_sites")),
        sa.PrimaryKeyConstraint("site_id", "day", "purpose", "decision", name=op.f("pk_purpose_rollups")),
    )
    op.create_table(
        "log_verifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("checked", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("checkpoint_size", sa.BigInteger(), nullable=True),
        sa.Column("first_bad_event", sa.String(26), nullable=True),
        sa.Column("first_bad_seq", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_log_verifications_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_verifications")),
    )
    op.create_index(
        "ix_log_verifications_site_id_checked_at", "log_verifications", ["site_id", "checked_at"], unique=False
    )
    _backfill(op.get_bind())


def _backfill(bind) -> None:
    """Count every integrated banner decision, site by site, with the statements the sequencer counts a batch with."""
    events = sa.table("consent_events", sa.column("site_id"), sa.column("seq"))
    last = sa.select(events.c.site_id, sa.func.max(events.c.seq)).where(events.c.seq.is_not(None))
    placed = bind.execute(last.group_by(events.c.site_id)).all()
    for site_id, last_seq in placed:
        for statement in count_statements(site_id, 1, last_seq, bind.dialect.name):
            bind.execute(statement)


def downgrade():
    op.drop_index("ix_log_verifications_site_id_checked_at", table_name="log_verifications")
    op.drop_table("log_verifications")
    op.drop_table("purpose_rollups")
    op.drop_table("decision_rollups")
