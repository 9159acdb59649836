"""May we act for this person and purpose? Answers from the current state, never from the log."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from json.encoder import encode_basestring_ascii
from typing import NamedTuple

import psycopg
from sqlalchemy import Executable, Row, Select, String, any_, bindparam, func, insert, select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

from cmp.errors import Conflict, Invalid
from cmp.extensions import db
from cmp.models import ConsentState, NoticeVersion, Site, Subject, SubjectIdentifier
from cmp.models.types import utcnow
from cmp.services import chain
from cmp.services.identifiers import Digester, Identifier, InvalidIdentifier, VisitorIds, new_subject_id
from cmp.vocabulary import Action, Decision

MAX_SUBJECTS = 10_000

# Seconds spent on state queries (sent, run by the database, rows read) in this context since it was last set:
# the API resets it per request and reports it in its Server-Timing header.
read_seconds: ContextVar[float] = ContextVar("cmp_lookup_read_seconds", default=0.0)

WITHDRAWN = frozenset({Action.WITHDRAW.value, Action.UNSUBSCRIBE.value})


# A named tuple rather than a frozen dataclass: a bulk lookup builds tens of thousands, and these build fast.
class Answer(NamedTuple):
    allowed: bool
    reason: str  # granted denied withdrawn expired notice_changed no_record gpc
    decided_at: datetime | None = None
    event_id: str | None = None
    notice_version: int | None = None
    expires_at: datetime | None = None

    def as_dict(self) -> dict:
        """Plain JSON-ready fields (AnswerSchema documents them; bulk answers skip marshmallow for speed)."""
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "decided_at": self.decided_at and self.decided_at.isoformat(),
            "event_id": self.event_id,
            "notice_version": self.notice_version,
            "expires_at": self.expires_at and self.expires_at.isoformat(),
        }


NO_RECORD = Answer(False, "no_record")


def _json(value) -> str:
    # Compact and ASCII, as Flask's jsonify writes it, so both ways of serialising an answer give the same text.
    return json.dumps(value, separators=(",", ":"))


NO_RECORD_JSON = _json(NO_RECORD.as_dict())


def answer(row, now: datetime, material_version: int | None) -> Answer:
    """The answer a current-state row gives; no row is never allowed."""
    if row is None:
        return NO_RECORD
    state = (row.decision, row.action, row.event_id, row.notice_version, row.decided_at, row.expires_at)
    return _answer(*state, now, material_version)


def _answer(decision, action, event_id, notice_version, decided_at, expires_at, now, material_version) -> Answer:
    if decision == Decision.GRANTED:
        if expires_at is not None and expires_at <= now:
            reason = "expired"
        elif material_version and (notice_version or 0) < material_version:
            reason = "notice_changed"
        else:
            return Answer(True, "granted", decided_at, event_id, notice_version, expires_at)
    elif action == Action.GPC:
        reason = "gpc"
    elif action in WITHDRAWN:
        reason = "withdrawn"
    elif action == Action.EXPIRE:
        reason = "expired"
    else:
        reason = "denied"
    return Answer(False, reason, decided_at, event_id, notice_version, expires_at)


@dataclass(frozen=True)
class LookupSite:
    """What a lookup needs of a site: small enough for the API to keep a few seconds (see cmp.api.lookup)."""

    id: int
    key: str
    purposes: frozenset[str]

    @classmethod
    def of(cls, site: Site) -> LookupSite:
        return cls(site.id, site.key, frozenset(purpose.key for purpose in site.purposes))


def _identifiers(site_key: str, subjects: Sequence[str], visitor_ids: VisitorIds) -> list[Identifier]:
    """Parse every subject, or refuse them all, naming each bad one by its position (never echoing it)."""
    identifiers, invalid = [], {}
    for index, subject in enumerate(subjects):
        try:
            identifiers.append(visitor_ids.identifier(site_key, subject))
        except InvalidIdentifier as exc:
            invalid[str(index)] = str(exc)
    if invalid:
        raise Invalid("invalid_subject", f"{len(invalid)} subject(s) cannot be read", {"subjects": invalid})
    return identifiers


def _digests(site_key: str, subjects: Sequence[str], hmac_key: str, visitor_ids: VisitorIds) -> list[str]:
    """Each subject's keyed digest, in order."""
    digest = Digester(hmac_key, site_key)
    return [digest(identifier) for identifier in _identifiers(site_key, subjects, visitor_ids)]


def _asked(site: Site | LookupSite, subjects: Sequence[str], purposes: Sequence[str]) -> LookupSite:
    """The site, once the question is one it can answer: few enough subjects, and purposes it has."""
    if len(subjects) > MAX_SUBJECTS:
        raise Invalid("too_many_subjects", f"at most {MAX_SUBJECTS} subjects per call", {"max": MAX_SUBJECTS})
    if not isinstance(site, LookupSite):
        site = LookupSite.of(site)
    unknown = sorted(set(purposes) - site.purposes)
    if unknown:
        raise Invalid("unknown_purpose", f"unknown purpose: {', '.join(unknown)}", {"purposes": unknown})
    return site


def _read(statement: Executable | str, parameters: dict | tuple) -> list[Row] | list[tuple]:
    """The rows of one state query, on the session's connection when it has a transaction (a caller then sees its
    own writes); otherwise, as for every API lookup, on a pooled connection of its own, sparing the request a
    session's setup and teardown.

    `statement` is a SQLAlchemy statement, or SQL written for the driver (psycopg or sqlite3), which runs on the
    driver's own connection: for a statement this small SQLAlchemy's execution layer costs more than the database.
    On PostgreSQL the connection is in autocommit: a single statement reads one snapshot either way, and this one
    is spared the BEGIN and ROLLBACK round trips around it. A read is safe to repeat, so one that finds its
    connection dead (the server restarted since the pool last looked) runs once more, on a new connection.
    """
    started = time.perf_counter()
    try:
        return _read_once_more_if_dead(statement, parameters)
    finally:
        read_seconds.set(read_seconds.get() + time.perf_counter() - started)


def _read_once_more_if_dead(statement: Executable | str, parameters: dict | tuple) -> list[Row] | list[tuple]:
    if db.session.registry.has():
        session = db.session()
        if session.in_transaction() or session.new or session.dirty or session.deleted:
            session.flush()
            if isinstance(statement, str):
                return session.connection().exec_driver_sql(statement, parameters).all()
            return session.connection().execute(statement, parameters).all()
    read = _read_driver if isinstance(statement, str) else _read_alone
    try:
        return read(statement, parameters)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    return read(statement, parameters)


def _read_alone(statement: Executable, parameters: dict) -> list[Row]:
    engine = db.engine
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT")
        return connection.execute(statement, parameters).all()


def _read_driver(sql: str, parameters: dict | tuple) -> list[tuple]:
    """`sql` on a pooled connection of the driver's own; its errors raised as SQLAlchemy raises them."""
    dbapi = db.engine.dialect.loaded_dbapi
    try:
        pooled = db.engine.raw_connection()
    except dbapi.Error as exc:  # the server cannot be reached
        raise DBAPIError.instance(None, None, exc, dbapi.Error) from exc
    try:
        connection = pooled.driver_connection
        if isinstance(connection, sqlite3.Connection):
            try:
                return connection.execute(sql, parameters).fetchall()
            except sqlite3.Error as exc:
                raise DBAPIError.instance(sql, parameters, exc, sqlite3.Error) from exc
        return _read_psycopg(pooled, connection, sql, parameters)
    finally:
        pooled.close()


def _read_psycopg(pooled, connection: psycopg.Connection, sql: str, parameters: dict) -> list[tuple]:
    """Prepared once per connection, in autocommit (no BEGIN and ROLLBACK round trips); a dead connection is
    invalidated, and said to be, so `_read` runs the statement once more on another."""
    try:
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, parameters, prepare=True)
                return cursor.fetchall()
        finally:
            if not connection.closed:
                connection.autocommit = False  # as the pool hands connections out
    except psycopg.Error as exc:
        # A server that ended the session (SQLSTATE 57P01 to 57P05: shutdown, termination) says so before the
        # socket reads as closed.
        dead = connection.closed or connection.broken or (exc.sqlstate or "").startswith("57P")
        if dead:
            pooled.invalidate(exc)
        raise DBAPIError.instance(sql, parameters, exc, psycopg.Error, connection_invalidated=dead) from exc


def lookup(
    site: Site | LookupSite,
    subjects: Sequence[str],
    purposes: Sequence[str],
    *,
    hmac_key: str,
    visitor_ids: VisitorIds,
    now: datetime | None = None,
) -> list[dict[str, Answer]]:
    """For each subject, in order, the answer per purpose: one query for the whole batch."""
    site = _asked(site, subjects, purposes)
    digests = _digests(site.key, subjects, hmac_key, visitor_ids)
    now = now or utcnow()
    found: dict[str, dict[str, Answer]] = {purpose: {} for purpose in purposes}
    if digests:
        queries = _STATE_QUERIES[db.engine.dialect.name]
        parameters = {"site_id": site.id, "purposes": queries.encode(purposes)}
        # Sorted, the digests walk the (site, digest) index in order.
        distinct = sorted(set(digests))
        if len(distinct) == 1:
            rows = _read(queries.one, {**parameters, "digest": distinct[0]})
        else:
            rows = _read(queries.batch, {**parameters, "digests": queries.encode(distinct)})
        # Unpacked by position: attribute access on 10,000 rows costs more than deciding their answers.
        for digest, purpose, decision, action, event_id, version, decided_at, expires_at, material in rows:
            found[purpose][digest] = _answer(decision, action, event_id, version, decided_at, expires_at, now, material)
    return [{purpose: found[purpose].get(digest, NO_RECORD) for purpose in purposes} for digest in digests]


# The site's last material notice version rides along with every row: one round trip per lookup.
_MATERIAL_VERSION = (
    select(func.max(NoticeVersion.version))
    .where(NoticeVersion.site_id == bindparam("site_id"), NoticeVersion.material.is_(True))
    .scalar_subquery()
    .label("material_version")
)
# In the order `lookup` unpacks them.
_STATE_COLUMNS = (
    SubjectIdentifier.digest,
    ConsentState.purpose,
    ConsentState.decision,
    ConsentState.action,
    ConsentState.event_id,
    ConsentState.notice_version,
    ConsentState.decided_at,
    ConsentState.expires_at,
    _MATERIAL_VERSION,
)
_SAME_SUBJECT = (ConsentState.site_id == SubjectIdentifier.site_id) & (
    ConsentState.subject_id == SubjectIdentifier.subject_id
)


def _state_by_digests(asked, purpose_is_asked):
    """The state of every asked digest's subject: each digest joined, row by row, to the (site, digest) index."""
    return (
        select(*_STATE_COLUMNS)
        .select_from(asked)
        .join(
            SubjectIdentifier,
            (SubjectIdentifier.site_id == bindparam("site_id")) & (SubjectIdentifier.digest == asked.c[0]),
        )
        .join(ConsentState, _SAME_SUBJECT)
        .where(purpose_is_asked)
    )


# Digests and purposes go as one parameter each, never one per item: the statement stays the same whatever the
# batch (compiled once, prepared by PostgreSQL) and psycopg need not dump a 10,000-item list. On PostgreSQL a
# comma-separated text (digests are hex, purpose keys [a-z0-9_]) split by the server; with `digest = ANY(...)`
# the planner would scan the whole table for a large batch. On SQLite a JSON array.
_DIGESTS_PG = func.unnest(func.string_to_array(bindparam("digests", type_=String), ",")).table_valued("digest")
_DIGESTS_SQLITE = func.json_each(bindparam("digests", type_=String)).table_valued("value")
_PURPOSES_PG = ConsentState.purpose == any_(func.string_to_array(bindparam("purposes", type_=String), ","))
_PURPOSES_SQLITE = ConsentState.purpose.in_(
    select(func.json_each(bindparam("purposes", type_=String)).table_valued("value").c.value)
)


def _state_by_digest(purpose_is_asked):
    """The state of one digest's subject (a single lookup): the batch statement with one digest would cost
    PostgreSQL a new plan on every call, as it cannot know the batch's size before it sees it."""
    return (
        select(*_STATE_COLUMNS)
        .join(ConsentState, _SAME_SUBJECT)
        .where(
            SubjectIdentifier.site_id == bindparam("site_id"),
            SubjectIdentifier.digest == bindparam("digest"),
            purpose_is_asked,
        )
    )


class _StateQueries(NamedTuple):
    batch: Select  # parameters site_id, digests, purposes
    one: Select  # parameters site_id, digest, purposes
    encode: Callable[[Sequence[str]], str]  # how digests and purposes travel


_STATE_QUERIES = {
    "postgresql": _StateQueries(
        _state_by_digests(_DIGESTS_PG.render_derived("asked"), _PURPOSES_PG),
        _state_by_digest(_PURPOSES_PG),
        ",".join,
    ),
    "sqlite": _StateQueries(
        _state_by_digests(_DIGESTS_SQLITE.alias("asked"), _PURPOSES_SQLITE),
        _state_by_digest(_PURPOSES_SQLITE),
        json.dumps,
    ),
}


class SerialisedAnswers(NamedTuple):
    """One subject's answers, already JSON: what a bulk lookup returns for it, byte for byte."""

    allowed: bool  # every purpose asked for is allowed
    purposes: str  # {"<purpose>": <answer as AnswerSchema writes it>, ...}, in the order asked


def lookup_serialised(
    site: Site | LookupSite,
    subjects: Sequence[str],
    purposes: Sequence[str],
    *,
    hmac_key: str,
    visitor_ids: VisitorIds,
    now: datetime | None = None,
) -> list[SerialisedAnswers]:
    """`lookup`'s answers, serialised: for each subject in order, whether all purposes are allowed, and the answers.

    On PostgreSQL the state query itself decides each answer and writes its JSON, so 10,000 subjects cost no
    Python objects per row beyond a digest and a string; elsewhere `lookup` decides and the answers are dumped
    here. Both write the same text (the tests compare them for every reason).
    """
    if db.engine.dialect.name != "postgresql":
        return [
            SerialisedAnswers(
                all(a.allowed for a in by_purpose.values()), _json({p: a.as_dict() for p, a in by_purpose.items()})
            )
            for by_purpose in lookup(site, subjects, purposes, hmac_key=hmac_key, visitor_ids=visitor_ids, now=now)
        ]
    purposes = list(dict.fromkeys(purposes))  # as `lookup` answers them: once each, in the order first asked
    site = _asked(site, subjects, purposes)
    digests = _digests(site.key, subjects, hmac_key, visitor_ids)
    found = _decided(site, digests, purposes, now)
    labels = [(encode_basestring_ascii(purpose) + ":", found[purpose]) for purpose in purposes]
    missing = (False, NO_RECORD_JSON)
    answers = []
    for digest in digests:
        allowed, parts = True, []
        for label, by_digest in labels:
            ok, answer_json = by_digest.get(digest, missing)
            allowed = allowed and ok
            parts.append(label + answer_json)
        answers.append(SerialisedAnswers(allowed, "{" + ",".join(parts) + "}"))
    return answers


def lookup_one_serialised(
    site: Site | LookupSite,
    subject: str,
    purpose: str,
    *,
    hmac_key: str,
    visitor_ids: VisitorIds,
    now: datetime | None = None,
) -> str:
    """One subject's answer for one purpose, as AnswerSchema writes it: what a single lookup returns.

    As `lookup_serialised`: decided and written by PostgreSQL; on SQLite decided by `_answer` from the row sqlite3
    read. The same text either way.
    """
    site = _asked(site, [subject], [purpose])
    [digest] = _digests(site.key, [subject], hmac_key, visitor_ids)
    if db.engine.dialect.name == "postgresql":
        return _decided(site, [digest], [purpose], now)[purpose].get(digest, (False, NO_RECORD_JSON))[1]
    # SQLite: the single-digest state query, run by sqlite3 itself (SQLAlchemy's execution layer around it cost
    # three times what the query did); `_answer` decides from its row.
    sql, names = _driver_sql(_STATE_QUERIES["sqlite"].one, db.engine.dialect)
    values = {"site_id": site.id, "digest": digest, "purposes": json.dumps([purpose])}
    rows = _read(sql, tuple(values[name] for name in names))
    if not rows:
        return NO_RECORD_JSON
    _, _, decision, action, event_id, version, decided_at, expires_at, material = rows[0]
    timestamp = _stored_timestamp(db.engine.dialect)
    decided_at, expires_at = timestamp(decided_at), timestamp(expires_at)
    return _json(
        _answer(decision, action, event_id, version, decided_at, expires_at, now or utcnow(), material).as_dict()
    )


@cache
def _driver_sql(statement: Select, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
    """`statement` as the driver's own SQL, with positional parameters, and the names of those in order."""
    compiled = statement.compile(dialect=dialect)
    return str(compiled), tuple(compiled.positiontup)


@cache
def _stored_timestamp(dialect: Dialect) -> Callable:
    """How a timestamp column reads a value the driver returned (text on SQLite): the model type's own processor."""
    return ConsentState.__table__.c.decided_at.type.dialect_impl(dialect).result_processor(dialect, None)


def _decided(
    site: LookupSite, digests: Sequence[str], purposes: Sequence[str], now: datetime | None
) -> dict[str, dict[str, tuple[bool, str]]]:
    """PostgreSQL: per purpose, per digest with a record, whether it is allowed and the answer's JSON."""
    found: dict[str, dict[str, tuple[bool, str]]] = {purpose: {} for purpose in purposes}
    if not digests:
        return found
    parameters = {"site_id": site.id, "purposes": ",".join(purposes), "now": now or utcnow()}
    distinct = sorted(set(digests))
    if len(distinct) == 1:
        statement, parameters["digest"] = _SERIALISED_ONE, distinct[0]
    else:
        statement, parameters["digests"] = _SERIALISED_BATCH, ",".join(distinct)
    for digest, purpose, allowed, answer_json in _read(statement, parameters):
        found[purpose][digest] = (allowed, answer_json)
    return found


def _iso(column: str) -> str:
    """SQL writing a timestamp as Python's `datetime.isoformat` does in UTC (no fraction when it is zero)."""
    # The pattern's only "." is the fraction's, so dropping ".000000" drops a zero fraction and nothing else.
    return f"replace(to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '') || '+00:00'"


def _sql_list(values) -> str:
    return ", ".join(f"'{value}'" for value in sorted(values))


# `_answer`'s rules in SQL, and `Answer.as_dict` written by the database. The values come from cmp.vocabulary;
# the digests and purposes travel as one comma-separated parameter each, as in `_STATE_QUERIES`. Written for
# psycopg (`%(name)s` parameters), to run on the driver's own connection (see `_read`). `asked` names the subjects:
# each asked digest with its subject id.
_SERIALISED_TEMPLATE = f"""
WITH {{asked}}
SELECT digest, purpose, reason = 'granted' AS allowed,
    '{{{{"allowed":' || (reason = 'granted')::text
    || ',"reason":"' || reason
    || '","decided_at":' || coalesce('"' || {_iso("decided_at")} || '"', 'null')
    || ',"event_id":' || coalesce(to_json(event_id)::text, 'null')
    || ',"notice_version":' || coalesce(notice_version::text, 'null')
    || ',"expires_at":' || coalesce('"' || {_iso("expires_at")} || '"', 'null')
    || '}}}}' AS answer
FROM (
    SELECT asked.digest, consent_state.purpose, consent_state.event_id,
        consent_state.notice_version, consent_state.decided_at, consent_state.expires_at,
        CASE
            WHEN consent_state.decision = '{Decision.GRANTED.value}' THEN CASE
                WHEN consent_state.expires_at <= %(now)s THEN 'expired'
                WHEN coalesce(consent_state.notice_version, 0) < material.version THEN 'notice_changed'
                ELSE 'granted' END
            WHEN consent_state.action = '{Action.GPC.value}' THEN 'gpc'
            WHEN consent_state.action IN ({_sql_list(WITHDRAWN)}) THEN 'withdrawn'
            WHEN consent_state.action = '{Action.EXPIRE.value}' THEN 'expired'
            ELSE 'denied'
        END AS reason
    FROM asked
    JOIN consent_state
        ON consent_state.site_id = %(site_id)s AND consent_state.subject_id = asked.subject_id
    CROSS JOIN (
        SELECT max(version) AS version FROM notice_versions WHERE site_id = %(site_id)s AND material IS TRUE
    ) AS material
    WHERE consent_state.purpose = ANY (string_to_array(%(purposes)s, ','))
) AS decided
"""
# A batch: each asked digest joined to the (site, digest) index, then put in subject order, so that the state's
# primary key is probed in key order rather than at random (successive probes share its upper pages). One digest
# (a single lookup): a plain equality, which PostgreSQL plans once per connection; in the batch's form it would
# plan again on every call, not knowing the batch's size in advance.
_SERIALISED_BATCH = _SERIALISED_TEMPLATE.format(
    asked="""asked AS MATERIALIZED (
    SELECT subject_identifiers.digest, subject_identifiers.subject_id
    FROM unnest(string_to_array(%(digests)s, ',')) AS asked (digest)
    JOIN subject_identifiers
        ON subject_identifiers.site_id = %(site_id)s AND subject_identifiers.digest = asked.digest
    ORDER BY subject_identifiers.subject_id
)"""
)
_SERIALISED_ONE = _SERIALISED_TEMPLATE.format(
    asked="""asked AS (
    SELECT digest, subject_id FROM subject_identifiers WHERE site_id = %(site_id)s AND digest = %(digest)s
)"""
)


def link(site: Site, subjects: Sequence[str], *, hmac_key: str, visitor_ids: VisitorIds) -> str:
    """Make several identifiers name one subject (a logged-in visitor's banner consent then answers by user id).

    Identifiers already linked to two different subjects are refused rather than merged: their histories stay apart.
    """
    identifiers = _identifiers(site.key, subjects, visitor_ids)
    digests = {identifier.digest(hmac_key, site.key): identifier for identifier in identifiers}
    # Decided on the site's chain lock, as consent writes and erasures decide it: parallel links of the same new
    # identifiers then agree on one subject, and none links to a subject erased meanwhile.
    chain.lock(site)
    known = dict(
        db.session.execute(
            select(SubjectIdentifier.digest, SubjectIdentifier.subject_id).where(
                SubjectIdentifier.site_id == site.id, SubjectIdentifier.digest.in_(list(digests))
            )
        ).all()
    )
    owners = set(known.values())
    if len(owners) > 1:
        raise Conflict(
            "identifiers_conflict",
            "these identifiers already belong to different subjects; they are not merged",
            {"kinds": sorted({digests[d].kind.value for d in known})},
        )
    if owners:
        subject_id = owners.pop()
    else:
        subject_id = new_subject_id()
        db.session.execute(insert(Subject), {"id": subject_id, "site_id": site.id})
    missing = [d for d in digests if d not in known]
    if missing:
        db.session.execute(
            insert(SubjectIdentifier),
            [
                {"site_id": site.id, "subject_id": subject_id, "kind": digests[d].kind.value, "digest": d}
                for d in missing
            ],
        )
    return subject_id
