"""Create sites with their purposes and cookie inventory.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    op.create_table(
        "sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("allowed_origins", JSON, nullable=False),
        sa.Column("locales", JSON, nullable=False),
        sa.Column("default_locale", sa.String(35), nullable=False),
        sa.Column("policy_url", sa.String(2048), nullable=True),
        sa.Column("jurisdiction_overrides", JSON, nullable=False),
        sa.Column("texts", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
        sa.UniqueConstraint("key", name=op.f("uq_sites_key")),
    )
    op.create_table(
        "purposes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("refusable", sa.Boolean(), nullable=False),
        sa.Column("default_opt_in", sa.String(8), nullable=False),
        sa.Column("default_opt_out", sa.String(8), nullable=False),
        sa.Column("default_notice_only", sa.String(8), nullable=False),
        sa.Column("gpc", sa.Boolean(), nullable=False),
        sa.Column("double_opt_in", sa.Boolean(), nullable=False),
        sa.Column("consent_mode", JSON, nullable=False),
        sa.Column("texts", JSON, nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_purposes_site_id_sites"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purposes")),
        sa.UniqueConstraint("site_id", "key", name=op.f("uq_purposes_site_id_key")),
    )
    op.create_index(op.f("ix_purposes_site_id"), "purposes", ["site_id"])
    op.create_table(
        "cookies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("purpose_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(200), nullable=False),
        sa.Column("domain", sa.String(253), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("storage", sa.String(16), nullable=False),
        sa.Column("lifetime_seconds", sa.Integer(), nullable=True),
        sa.Column("descriptions", JSON, nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_cookies_site_id_sites"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["purpose_id"], ["purposes.id"], name=op.f("fk_cookies_purpose_id_purposes"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cookies")),
        sa.UniqueConstraint("site_id", "name", "provider", name=op.f("uq_cookies_site_id_name_provider")),
    )
    op.create_index(op.f("ix_cookies_site_id"), "cookies", ["site_id"])
    op.create_index(op.f("ix_cookies_purpose_id"), "cookies", ["purpose_id"])


def downgrade():
    op.drop_index(op.f("ix_cookies_purpose_id"), table_name="cookies")
    op.drop_index(op.f("ix_cookies_site_id"), table_name="cookies")
    op.drop_table("cookies")
    op.drop_index(op.f("ix_purposes_site_id"), table_name="purposes")
    op.drop_table("purposes")
    op.drop_table("sites")
