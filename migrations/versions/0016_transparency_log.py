"""The consent log becomes a transparency log: a Merkle tree per site in tiles, signed checkpoints, witnesses.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06

Events are written pending (no position yet, `seq` NULL) and integrated later by a sequencer, in the order of
`entry`, which PostgreSQL draws from a sequence. Events hashed from now on no longer link to a previous hash
(`prev_hash` NULL): the tree orders them.

Existing events become the first leaves of their site's tree in their order, their hashes unchanged, and the head's
`hash` becomes the tree's root. Positions a retention purge removed before this revision have no hash left to
build a leaf from: each is the leaf of 32 zero bytes, a position that verifies as removed. The first checkpoint is
signed by the sequencer on its first run, with the key the service is configured with (no key is read here).

Downgrade only while every event still has its chain link: events hashed after this revision link to no previous
event and cannot be put back into a chain without rewriting them.
"""

from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

from cmp.services import merkle

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

REMOVED_LEAF = bytes(32)
PENDING = sa.text("seq IS NULL")


def upgrade():
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        op.execute("CREATE SEQUENCE consent_event_entries AS bigint")
    with _rebuilding_events(bind), op.batch_alter_table("consent_events") as batch:
        batch.alter_column("seq", existing_type=sa.BigInteger(), nullable=True)
        batch.alter_column("prev_hash", existing_type=sa.String(64), nullable=True)
        batch.add_column(sa.Column("entry", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_consent_events_pending",
        "consent_events",
        ["site_id", "entry"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_table(
        "log_tiles",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hashes", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_log_tiles_site_id_sites")),
        sa.PrimaryKeyConstraint("site_id", "level", "idx", name=op.f("pk_log_tiles")),
    )
    op.create_table(
        "log_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_log_checkpoints_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_checkpoints")),
        sa.UniqueConstraint("site_id", "size", name=op.f("uq_log_checkpoints_site_id_size")),
    )
    op.create_index(op.f("ix_log_checkpoints_site_id"), "log_checkpoints", ["site_id"], unique=False)
    op.create_table(
        "log_witnesses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_log_witnesses_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_witnesses")),
        sa.UniqueConstraint("site_id", "key", name=op.f("uq_log_witnesses_site_id_key")),
    )
    op.create_index(op.f("ix_log_witnesses_site_id"), "log_witnesses", ["site_id"], unique=False)
    op.create_table(
        "log_cosignatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checkpoint_id", sa.Integer(), nullable=False),
        sa.Column("witness_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkpoint_id"], ["log_checkpoints.id"], name=op.f("fk_log_cosignatures_checkpoint_id_log_checkpoints")
        ),
        sa.ForeignKeyConstraint(
            ["witness_id"], ["log_witnesses.id"], name=op.f("fk_log_cosignatures_witness_id_log_witnesses")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_cosignatures")),
        sa.UniqueConstraint("checkpoint_id", "witness_id", name=op.f("uq_log_cosignatures_checkpoint_id_witness_id")),
    )
    op.create_index(op.f("ix_log_cosignatures_checkpoint_id"), "log_cosignatures", ["checkpoint_id"], unique=False)
    _plant_trees(bind)


@contextmanager
def _rebuilding_events(bind):
    """SQLite alters these columns by rebuilding the table, dropping it while `consent_state` rows refer to it: the
    references are not enforced during the rebuild (SQLite runs this DDL outside a transaction, so deferring them
    does not help) and checked once it is done."""
    sqlite = bind.dialect.name == "sqlite"
    if sqlite:
        op.execute("PRAGMA foreign_keys = OFF")
    yield
    if sqlite:
        op.execute("PRAGMA foreign_keys = ON")
        if bind.exec_driver_sql("PRAGMA foreign_key_check").all():
            raise RuntimeError("rebuilding consent_events broke references to it")


def _plant_trees(bind) -> None:
    """Each site's existing events, in their order, as the first leaves of its tree; the head holds the root.

    Streamed in batches: a full tile is written as soon as it is complete, so memory stays flat however long the log.
    """
    events = sa.table("consent_events", sa.column("site_id"), sa.column("seq"), sa.column("hash"))
    heads = sa.table("chain_heads", sa.column("site_id"), sa.column("seq"), sa.column("hash"))
    for site_id, size in bind.execute(sa.select(heads.c.site_id, heads.c.seq)).all():
        if not size:
            continue
        tree = _Planting(bind, site_id)
        rows = bind.execute(
            sa.select(events.c.seq, events.c.hash)
            .where(events.c.site_id == site_id)
            .order_by(events.c.seq)
            .execution_options(yield_per=BATCH)
        )
        for seq, digest in rows:
            tree.removed_until(seq - 1)
            tree.add(merkle.leaf_hash(bytes.fromhex(digest)))
        tree.removed_until(size)
        root = tree.finish()
        bind.execute(heads.update().where(heads.c.site_id == site_id).values(hash=root.hex()))


BATCH = 65536


class _Planting:
    def __init__(self, bind, site_id: int):
        self.bind, self.site_id = bind, site_id
        self.size, self.edge, self.batch = 0, {}, []
        self.root = merkle.leaf_hash(b"")

    def removed_until(self, position: int) -> None:
        while self.size + len(self.batch) < position:
            self.add(merkle.leaf_hash(REMOVED_LEAF))

    def add(self, leaf: bytes) -> None:
        self.batch.append(leaf)
        if len(self.batch) >= BATCH:
            self._flush()

    def finish(self) -> bytes:
        self._flush()
        self._write(self.edge)
        return self.root

    def _flush(self) -> None:
        if not self.batch:
            return
        written, self.root = merkle.append(self.size, self.edge, self.batch)
        self.size += len(self.batch)
        self.batch = []
        edge = set(merkle.edge_tiles(self.size))
        tiles = {**self.edge, **written}
        self._write({key: data for key, data in tiles.items() if key not in edge})
        self.edge = {key: data for key, data in tiles.items() if key in edge}

    def _write(self, tiles) -> None:
        table = sa.table("log_tiles", sa.column("site_id"), sa.column("level"), sa.column("idx"), sa.column("hashes"))
        if tiles:
            rows = [
                {"site_id": self.site_id, "level": lv, "idx": i, "hashes": d} for (lv, i), d in sorted(tiles.items())
            ]
            self.bind.execute(table.insert(), rows)


def downgrade():
    bind = op.get_bind()
    events = sa.table(
        "consent_events", sa.column("site_id"), sa.column("seq"), sa.column("hash"), sa.column("prev_hash")
    )
    unlinked = bind.scalar(sa.select(sa.func.count()).select_from(events).where(events.c.prev_hash.is_(None)))
    if unlinked:
        raise RuntimeError(
            f"{unlinked} consent events were hashed into the tree without a chain link; "
            "they cannot be put back into a chain, so this downgrade would lose them"
        )
    # The head goes back to the last event's hash.
    heads = sa.table("chain_heads", sa.column("site_id"), sa.column("seq"), sa.column("hash"))
    last = (
        sa.select(events.c.hash)
        .where(events.c.site_id == heads.c.site_id, events.c.seq == heads.c.seq)
        .scalar_subquery()
    )
    bind.execute(heads.update().where(heads.c.seq > 0).values(hash=sa.func.coalesce(last, heads.c.hash)))
    op.drop_index(op.f("ix_log_cosignatures_checkpoint_id"), table_name="log_cosignatures")
    op.drop_table("log_cosignatures")
    op.drop_index(op.f("ix_log_witnesses_site_id"), table_name="log_witnesses")
    op.drop_table("log_witnesses")
    op.drop_index(op.f("ix_log_checkpoints_site_id"), table_name="log_checkpoints")
    op.drop_table("log_checkpoints")
    op.drop_table("log_tiles")
    op.drop_index("ix_consent_events_pending", table_name="consent_events")
    with _rebuilding_events(bind), op.batch_alter_table("consent_events") as batch:
        batch.drop_column("entry")
        batch.alter_column("prev_hash", existing_type=sa.String(64), nullable=False)
        batch.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
    if bind.dialect.name == "postgresql":
        op.execute("DROP SEQUENCE consent_event_entries")
