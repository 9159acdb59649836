"""An index of the subjects that carry a flag (restricted, child), for bulk lookups.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06

A bulk lookup needs each subject's flags, and almost no subject has one: joining only the flagged ones through a
partial index (which on PostgreSQL also holds the flags) reads a few rows instead of one per subject asked about.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

FLAGGED = sa.text("restricted OR child")


def upgrade():
    op.create_index(
        "ix_subjects_flagged",
        "subjects",
        ["id"],
        postgresql_include=["restricted", "child"],
        postgresql_where=FLAGGED,
        sqlite_where=FLAGGED,
    )


def downgrade():
    op.drop_index("ix_subjects_flagged", table_name="subjects")
