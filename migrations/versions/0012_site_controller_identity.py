"""The controller's identity on each site, and each purpose's data categories and recipients, for consent receipts.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

Kantara Consent Receipt v1.1 names the controller (name, address, email, phone, contact) and, per purpose, the
kinds of personal data (`piiCategory`) and any third party the data is disclosed to. Sites get one nullable JSON
object for the controller (existing sites have none until the operator sets it); purposes get two JSON lists,
empty for existing rows, which notices publish from their next version on.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    with op.batch_alter_table("sites") as batch:
        batch.add_column(sa.Column("controller", JSON, nullable=True))
    with op.batch_alter_table("purposes") as batch:
        batch.add_column(sa.Column("pii_categories", JSON, nullable=False, server_default=sa.text("'[]'")))
        batch.add_column(sa.Column("recipients", JSON, nullable=False, server_default=sa.text("'[]'")))


def downgrade():
    with op.batch_alter_table("purposes") as batch:
        batch.drop_column("recipients")
        batch.drop_column("pii_categories")
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("controller")
