"""Create the email activity table: opens and clicks recorded where email tracking is granted.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "email_activity",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("destination_host", sa.String(253), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_email_activity_site_id_sites"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name=op.f("fk_email_activity_subject_id_subjects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_activity")),
    )
    op.create_index(op.f("ix_email_activity_subject_id"), "email_activity", ["subject_id"])
    op.create_index("ix_email_activity_site_id_occurred_at", "email_activity", ["site_id", "occurred_at"])


def downgrade():
    op.drop_index("ix_email_activity_site_id_occurred_at", table_name="email_activity")
    op.drop_index(op.f("ix_email_activity_subject_id"), table_name="email_activity")
    op.drop_table("email_activity")
