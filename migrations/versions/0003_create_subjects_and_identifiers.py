"""Create subjects and their HMAC'd identifiers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "subjects",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_subjects_site_id_sites"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subjects")),
    )
    op.create_index(op.f("ix_subjects_site_id"), "subjects", ["site_id"])
    op.create_table(
        "subject_identifiers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_subject_identifiers_site_id_sites"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name=op.f("fk_subject_identifiers_subject_id_subjects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_identifiers")),
    )
    # The digest covers site, kind and value, so (site, digest) is unique; lookups search by it, and on
    # PostgreSQL find the subject id in the index itself.
    op.create_index(
        "uq_subject_identifiers_site_id_digest",
        "subject_identifiers",
        ["site_id", "digest"],
        unique=True,
        postgresql_include=["subject_id"],
    )
    op.create_index(op.f("ix_subject_identifiers_subject_id"), "subject_identifiers", ["subject_id"])


def downgrade():
    op.drop_index(op.f("ix_subject_identifiers_subject_id"), table_name="subject_identifiers")
    op.drop_index("uq_subject_identifiers_site_id_digest", table_name="subject_identifiers")
    op.drop_table("subject_identifiers")
    op.drop_index(op.f("ix_subjects_site_id"), table_name="subjects")
    op.drop_table("subjects")
