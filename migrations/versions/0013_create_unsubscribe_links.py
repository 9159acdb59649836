"""Short unsubscribe links: one row per recipient and locale, found by the SHA-256 digest of its token.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

A List-Unsubscribe header must fit one 78-character line, or mail libraries encode it into RFC 2047 words that
no longer parse as a list; a signed token is too long for that. The short token is kept only as its digest,
with the site, subject and locale it stands for; erasing the subject deletes the row. Links mailed before this
revision keep working on their own route.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _key(length: int) -> sa.String:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade():
    op.create_table(
        "unsubscribe_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", _key(64), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("subject_id", _key(32), nullable=False),
        sa.Column("locale", sa.String(35), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_unsubscribe_links_site_id_sites"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name=op.f("fk_unsubscribe_links_subject_id_subjects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unsubscribe_links")),
        sa.UniqueConstraint("digest", name=op.f("uq_unsubscribe_links_digest")),
        sa.UniqueConstraint(
            "site_id", "subject_id", "locale", name=op.f("uq_unsubscribe_links_site_id_subject_id_locale")
        ),
    )


def downgrade():
    op.drop_table("unsubscribe_links")
