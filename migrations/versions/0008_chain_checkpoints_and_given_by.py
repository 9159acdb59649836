"""Retention checkpoints for the chain, and who gave a decision (a parent or guardian).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "chain_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("removed", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_chain_checkpoints_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_checkpoints")),
        sa.UniqueConstraint("site_id", "seq", name=op.f("uq_chain_checkpoints_site_id_seq")),
    )
    # Nullable, no default: existing events were all given by their subject.
    with op.batch_alter_table("consent_events") as batch:
        batch.add_column(sa.Column("given_by", sa.String(16), nullable=True))


def downgrade():
    with op.batch_alter_table("consent_events") as batch:
        batch.drop_column("given_by")
    op.drop_table("chain_checkpoints")
