"""Create immutable notice versions with their content hash.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    op.create_table(
        "notice_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", JSON, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("material", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        # No cascade: what visitors were shown outlives any change to the site.
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_notice_versions_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_versions")),
        sa.UniqueConstraint("site_id", "version", name=op.f("uq_notice_versions_site_id_version")),
    )
    op.create_index(op.f("ix_notice_versions_site_id"), "notice_versions", ["site_id"])


def downgrade():
    op.drop_index(op.f("ix_notice_versions_site_id"), table_name="notice_versions")
    op.drop_table("notice_versions")
