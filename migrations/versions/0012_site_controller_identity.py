"""The controller's identity on each site, for consent receipts (Kantara Consent Receipt v1.1).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

One JSON object per site: name, address, email, phone, and the data protection officer's contact. Nullable:
existing sites have none until the operator sets it, and receipts then name the site alone.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sites") as batch:
        batch.add_column(
            sa.Column("controller", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True)
        )


def downgrade():
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("controller")
