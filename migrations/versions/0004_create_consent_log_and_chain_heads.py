"""Create the append-only consent log and the per-site chain heads.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    op.create_table(
        "consent_events",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("decisions", JSON, nullable=False),
        sa.Column("notice_version", sa.Integer(), nullable=True),
        sa.Column("notice_hash", sa.String(64), nullable=True),
        sa.Column("locale", sa.String(35), nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("gpc", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ip_prefix", sa.String(45), nullable=True),
        sa.Column("user_agent", JSON, nullable=True),
        sa.Column("page_url", sa.String(2048), nullable=True),
        sa.Column("evidence_salt", sa.String(32), nullable=True),
        sa.Column("evidence_digest", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_consent_events_site_id_sites")),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], name=op.f("fk_consent_events_subject_id_subjects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
        # One event per place in a site's chain: a forked chain cannot be stored.
        sa.UniqueConstraint("site_id", "seq", name=op.f("uq_consent_events_site_id_seq")),
    )
    op.create_index(op.f("ix_consent_events_subject_id"), "consent_events", ["subject_id"])
    op.create_index("ix_consent_events_site_id_received_at", "consent_events", ["site_id", "received_at"])
    op.create_table(
        "chain_heads",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_chain_heads_site_id_sites")),
        sa.PrimaryKeyConstraint("site_id", name=op.f("pk_chain_heads")),
    )


def downgrade():
    op.drop_table("chain_heads")
    op.drop_index("ix_consent_events_site_id_received_at", table_name="consent_events")
    op.drop_index(op.f("ix_consent_events_subject_id"), table_name="consent_events")
    op.drop_table("consent_events")
