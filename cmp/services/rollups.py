"""Daily counts of each site's banner decisions, kept by the sequencer so the dashboard never reads the log.

The counts are exactly what `cmp.services.stats` shows: per UTC day of receipt, banner decisions by action,
country and mode (`decision_rollups`), and how many of them granted or denied each purpose (`purpose_rollups`).

They never drift from the log because they change only in the transactions that change which events the log
holds: the sequencer adds the events it places, in the integration that places them (`add_placed`), and a
retention purge takes away the events it removes (`retract`), before removing them. Pending events are not
counted until they are placed, as the log does not hold them yet. Erasure empties evidence only, none of which is
counted, so it changes nothing here.
"""

from __future__ import annotations

from sqlalchemy import Date, delete, func, literal, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import Insert
from sqlalchemy.sql.expression import FunctionElement

from cmp.extensions import db, insert_or_merge
from cmp.models import ConsentEvent, DecisionRollup, PurposeRollup
from cmp.vocabulary import Action, Decision, Source

# The actions of a banner decision, in the order the dashboard shows them (see `cmp.services.stats`).
DECISION_ACTIONS = (Action.ACCEPT_ALL, Action.SAVE, Action.REJECT_ALL, Action.WITHDRAW, Action.GPC)
# The stored country of an event recorded without one; the dashboard names it `unknown`.
NO_COUNTRY = ""


class utc_day(FunctionElement):
    """The UTC calendar day of a timestamp column.

    SQLite stores naive UTC text, so its date() is already the UTC day; PostgreSQL stores timestamptz, whose cast
    to date would follow the session's time zone, so the value is first taken in UTC.
    """

    type = Date()
    inherit_cache = True


@compiles(utc_day)
def _utc_day_sqlite(element, compiler, **kw):
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element, compiler, **kw):
    return f"CAST(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC' AS DATE)"


def count_statements(site_id: int, first_seq: int, last_seq: int, dialect: str, *, sign: int = 1) -> list[Insert]:
    """The two upserts that add `sign` times the counts of the site's placed events from `first_seq` to `last_seq`.

    Counted in the database (INSERT ... SELECT ... GROUP BY): no event leaves it, and a batch costs one range of
    the log's (site, seq) key. The migration that created the rollups fills them with these statements too.
    """
    events = ConsentEvent.__table__
    placed = [
        events.c.site_id == site_id,
        events.c.seq >= first_seq,
        events.c.seq <= last_seq,
        events.c.source == Source.BANNER.value,
        events.c.action.in_([action.value for action in DECISION_ACTIONS]),
    ]
    day = utc_day(events.c.received_at)
    count = func.count() * sign
    country = func.coalesce(events.c.country, NO_COUNTRY)
    decisions = (
        select(literal(site_id), day, events.c.action, country, events.c.mode, count)
        .where(*placed)
        .group_by(day, events.c.action, country, events.c.mode)
    )
    each = (func.jsonb_each_text if dialect == "postgresql" else func.json_each)(events.c.decisions)
    named = each.table_valued("key", "value").alias("named")
    purposes = (
        select(literal(site_id), day, named.c.key, named.c.value, count)
        .select_from(events)
        .join(named, true())
        .where(*placed, named.c.value.in_([decision.value for decision in Decision]))
        .group_by(day, named.c.key, named.c.value)
    )
    return [
        _upsert(DecisionRollup, dialect, ["site_id", "day", "action", "country", "mode", "events"], decisions),
        _upsert(PurposeRollup, dialect, ["site_id", "day", "purpose", "decision", "events"], purposes),
    ]


def _upsert(model, dialect: str, columns: list[str], rows) -> Insert:
    """INSERT the counts, or add each to the row already there."""
    table = model.__table__
    statement = insert_or_merge(table, dialect).from_select(columns, rows)
    return statement.on_conflict_do_update(
        index_elements=[column.name for column in table.primary_key.columns],
        set_={"events": table.c.events + statement.excluded.events},
    )


def add_placed(site_id: int, first_seq: int, last_seq: int) -> None:
    """Count the events the sequencer has just placed from `first_seq` to `last_seq`, in its transaction."""
    for statement in count_statements(site_id, first_seq, last_seq, db.session.get_bind().dialect.name):
        db.session.execute(statement)


def retract(site_id: int, first_seq: int, last_seq: int) -> None:
    """Stop counting the placed events from `first_seq` to `last_seq` (both included), before a purge removes them.

    Call it in the purge's transaction, holding the site's log head as the purge does, so no integration counts
    at the same time.
    """
    for statement in count_statements(site_id, first_seq, last_seq, db.session.get_bind().dialect.name, sign=-1):
        db.session.execute(statement)
    for model in (DecisionRollup, PurposeRollup):
        db.session.execute(delete(model).where(model.site_id == site_id, model.events <= 0))
