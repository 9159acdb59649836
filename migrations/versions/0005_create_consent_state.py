"""Create the current-state table: one row per site, subject and purpose.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "consent_state",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(26), nullable=False),
        sa.Column("notice_version", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_consent_state_site_id_sites")),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], name=op.f("fk_consent_state_subject_id_subjects")),
        sa.ForeignKeyConstraint(
            ["event_id"], ["consent_events.id"], name=op.f("fk_consent_state_event_id_consent_events")
        ),
        # Lookups by (site, subject[, purpose]) use this key: they never scan the log.
        sa.PrimaryKeyConstraint("site_id", "subject_id", "purpose", name=op.f("pk_consent_state")),
    )


def downgrade():
    op.drop_table("consent_state")
