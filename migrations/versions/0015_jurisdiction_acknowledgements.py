"""Acknowledgements of overrides that weaken the mode of countries whose law requires prior consent.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06

A site may put an EU/EEA, UK, Swiss, Brazilian, Korean or Chinese visitor on `opt_out` or `notice_only` only when
its operator acknowledges it with a reason; each acknowledgement is one append-only row, which the auditor
dashboard shows beside the override. Overrides stored before this revision stay as they are and keep applying:
the dashboard and `cmp site show` flag them as not acknowledged until the operator sets them again with a reason.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    op.create_table(
        "jurisdiction_acknowledgements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("countries", JSON, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_jurisdiction_acknowledgements_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jurisdiction_acknowledgements")),
    )
    op.create_index(
        op.f("ix_jurisdiction_acknowledgements_site_id"), "jurisdiction_acknowledgements", ["site_id"], unique=False
    )


def downgrade():
    op.drop_index(op.f("ix_jurisdiction_acknowledgements_site_id"), table_name="jurisdiction_acknowledgements")
    op.drop_table("jurisdiction_acknowledgements")
