"""May we act for this person and purpose? Answers from the current state, never from the log.

The rule is `decide`, written once: every lookup (single, bulk, access requests, email links) reads the state
rows and the subject's restrictions with one SQLAlchemy statement per batch and decides each answer with it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Executable, Row, Select, String, and_, any_, bindparam, func, insert, select
from sqlalchemy.exc import DBAPIError

from cmp.errors import Invalid, Refused
from cmp.extensions import db
from cmp.models import ConsentState, NoticeVersion, Site, Subject, SubjectIdentifier
from cmp.models.types import utcnow
from cmp.services.consent import hold_subject, one_transaction
from cmp.services.identifiers import Digester, Identifier, InvalidIdentifier, VisitorIds, new_subject_id
from cmp.vocabulary import MAX_SUBJECTS, Action, Decision, GivenBy

# Seconds spent on state queries (sent, run by the database, rows read) in this context since it was last set:
# the API resets it per request and reports it in its Server-Timing header.
read_seconds: ContextVar[float] = ContextVar("cmp_lookup_read_seconds", default=0.0)

WITHDRAWN = frozenset({Action.WITHDRAW.value, Action.UNSUBSCRIBE.value})
# The rule compares plain strings: equal to the members, and several times cheaper to compare than a StrEnum member
# looked up on its class, which a bulk lookup would do tens of thousands of times.
_GRANTED, _GUARDIAN = Decision.GRANTED.value, GivenBy.GUARDIAN.value
_GPC, _EXPIRE = Action.GPC.value, Action.EXPIRE.value


# A named tuple rather than a frozen dataclass: a bulk lookup builds tens of thousands, and these build fast.
class Answer(NamedTuple):
    allowed: bool
    # granted denied withdrawn expired notice_changed no_record gpc restricted guardian_required
    reason: str
    decided_at: datetime | None = None
    event_id: str | None = None
    notice_version: int | None = None
    expires_at: datetime | None = None


class SubjectFlags(NamedTuple):
    """What is true of the subject as a whole, whatever the purpose."""

    restricted: bool = False  # processing restricted (GDPR Art. 18)
    child: bool = False  # below the site's age of digital consent (GDPR Art. 8)


ADULT = SubjectFlags()
NO_RECORD = Answer(False, "no_record")


def decide(row, flags: SubjectFlags, now: datetime, material_version: int | None) -> Answer:
    """The answer for one subject and purpose: the rule, written once.

    `row` is the purpose's current state (any object with ConsentState's answer columns) or None for no record.
    A restricted subject is never processed; a child's grant counts only when a guardian gave it; a grant counts
    until it expires or a material notice change asks again; every refusal says why it is one.
    """
    if row is None:
        return Answer(False, "restricted") if flags.restricted else NO_RECORD
    fields = (row.decided_at, row.event_id, row.notice_version, row.expires_at)
    if flags.restricted:
        reason = "restricted"
    elif row.decision == _GRANTED:
        if row.expires_at is not None and row.expires_at <= now:
            reason = "expired"
        elif material_version and (row.notice_version or 0) < material_version:
            reason = "notice_changed"
        elif flags.child and row.given_by != _GUARDIAN:
            reason = "guardian_required"
        else:
            return Answer(True, "granted", *fields)
    elif row.action == _GPC:
        reason = "gpc"
    elif row.action in WITHDRAWN:
        reason = "withdrawn"
    elif row.action == _EXPIRE:
        reason = "expired"
    else:
        reason = "denied"
    return Answer(False, reason, *fields)


def subject_flags(subject_id: str) -> SubjectFlags:
    row = db.session.execute(select(Subject.restricted, Subject.child).where(Subject.id == subject_id)).first()
    return SubjectFlags(*row) if row is not None else ADULT


def answer_for_subject(site: Site, subject_id: str, purpose: str, now: datetime | None = None) -> Answer:
    """What a lookup answers for a subject known by id (an email link names its subject, not an identifier)."""
    [row] = _read(_BY_SUBJECT, {"site_id": site.id, "subject_id": subject_id, "purpose": purpose}) or [None]
    if row is None:
        return NO_RECORD
    state = row if row.decision is not None else None
    return decide(state, SubjectFlags(row.restricted, row.child), now or utcnow(), row.material_version)


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


def _read(statement: Executable, parameters: dict) -> list[Row]:
    """The rows of one state query, on the session's connection when it has a transaction (a caller then sees its
    own writes); otherwise, as for every API lookup, on a pooled connection of its own, sparing the request a
    session's setup and teardown.

    On PostgreSQL that connection is in autocommit: a single statement reads one snapshot either way, and this one
    is spared the BEGIN and ROLLBACK round trips around it. A read is safe to repeat, so one that finds its
    connection dead (the server restarted since the pool last looked) runs once more, on a new connection.
    """
    started = time.perf_counter()
    try:
        if db.session.registry.has():
            session = db.session()
            if session.in_transaction() or session.new or session.dirty or session.deleted:
                session.flush()
                return session.connection().execute(statement, parameters).all()
        try:
            return _read_alone(statement, parameters)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        return _read_alone(statement, parameters)
    finally:
        read_seconds.set(read_seconds.get() + time.perf_counter() - started)


def _read_alone(statement: Executable, parameters: dict) -> list[Row]:
    engine = db.engine
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        return connection.execute(statement, parameters).all()


def lookup(
    site: Site | LookupSite,
    subjects: Sequence[str],
    purposes: Sequence[str],
    *,
    hmac_key: str,
    visitor_ids: VisitorIds,
    now: datetime | None = None,
) -> list[dict[str, Answer]]:
    """For each subject, in order, the answer per purpose (each purpose once, in the order first asked)."""
    purposes = list(dict.fromkeys(purposes))
    site = _asked(site, subjects, purposes)
    digests = _digests(site.key, subjects, hmac_key, visitor_ids)
    if not digests:
        return []
    found = _decided(site.id, sorted(set(digests)), purposes, now or utcnow())
    # Read-only, and shared: a subject asked twice, and every subject no identifier names, share one dictionary.
    unknown = dict.fromkeys(purposes, NO_RECORD)
    return [found.get(digest, unknown) for digest in digests]


def _decided(site_id: int, digests: list[str], purposes: list[str], now: datetime) -> dict[str, dict[str, Answer]]:
    """Per digest that names a subject, its answer per purpose in the order asked: one statement, then `decide`.

    Sorted, the digests walk the (site, digest) index in order. Each row is decided as it is read, with what
    holds for the whole batch (now, the material version) read once.
    """
    queries = _STATE_QUERIES[db.engine.dialect.name]
    parameters = {"site_id": site_id, "purposes": queries.encode(purposes)}
    if len(digests) == 1:
        rows = _read(queries.one, {**parameters, "digest": digests[0]})
    else:
        rows = _read(queries.batch, {**parameters, "digests": queries.encode(digests)})
    material = rows[0].material_version if rows else None
    found: dict[str, dict[str, Answer]] = {}
    flagged: dict[str, SubjectFlags] = {}  # the few subjects that are not ADULT
    for row in map(_Found._make, rows):
        answers = found.get(row.digest)
        if answers is None:
            answers = found[row.digest] = {}
            if row.restricted or row.child:
                flagged[row.digest] = SubjectFlags(row.restricted, row.child)
        if row.purpose is not None:
            answers[row.purpose] = decide(row, flagged.get(row.digest, ADULT), now, material)
    for digest, answers in found.items():
        if list(answers) != purposes:  # a purpose with no state row, or rows in another order
            silent = decide(None, flagged.get(digest, ADULT), now, material)
            found[digest] = {purpose: answers.get(purpose, silent) for purpose in purposes}
    return found


# The site's last material notice version rides along with every row: one round trip per lookup.
_MATERIAL_VERSION = (
    select(func.max(NoticeVersion.version))
    .where(NoticeVersion.site_id == bindparam("site_id"), NoticeVersion.material.is_(True))
    .scalar_subquery()
    .label("material_version")
)
# The subject's flags, and its state for each asked purpose (none: one row with a null purpose).
# What `decide` reads of a purpose's current state.
STATE_COLUMNS = (
    ConsentState.decision,
    ConsentState.action,
    ConsentState.event_id,
    ConsentState.notice_version,
    ConsentState.decided_at,
    ConsentState.expires_at,
    ConsentState.given_by,
)
_ANSWER_COLUMNS = (Subject.restricted, Subject.child, ConsentState.purpose, *STATE_COLUMNS, _MATERIAL_VERSION)


class _Found(NamedTuple):
    """A row of the lookup statements, its columns in their order: a named tuple reads an attribute several times
    faster than SQLAlchemy's Row, which resolves each name anew, and `decide` reads up to eight per row."""

    digest: str
    restricted: bool | None  # None, as child: no flag is set
    child: bool | None
    purpose: str | None
    decision: str | None
    action: str | None
    event_id: str | None
    notice_version: int | None
    decided_at: datetime | None
    expires_at: datetime | None
    given_by: str | None
    material_version: int | None


def _with_state(statement: Select, subject_id, purpose_is_asked) -> Select:
    """`statement` joined to the subject's flags where one is set and, where there is one, its state for each asked
    purpose.

    Flags are rare, and a subject without a row here is an adult without restriction (every identifier names a
    subject). Joined on the flags too, the statement lets an index of only the flagged subjects answer for
    them, where joining every subject reads a row of `subjects` per subject asked: some 40 % of a bulk lookup's
    statement at 1,000,000 subjects (bench/README.md, lookups).
    """
    flagged = (Subject.id == subject_id) & (Subject.restricted | Subject.child)
    return statement.outerjoin(Subject, flagged).outerjoin(
        ConsentState,
        and_(
            ConsentState.site_id == bindparam("site_id"),
            ConsentState.subject_id == subject_id,
            purpose_is_asked,
        ),
    )


def _state_by_digests(asked, purpose_is_asked) -> Select:
    """A batch: each asked digest joined, row by row, to the (site, digest) index, then to its subject's state."""
    found = select(SubjectIdentifier.digest, *_ANSWER_COLUMNS).select_from(asked)
    found = found.join(
        SubjectIdentifier,
        (SubjectIdentifier.site_id == bindparam("site_id")) & (SubjectIdentifier.digest == asked.c[0]),
    )
    return _with_state(found, SubjectIdentifier.subject_id, purpose_is_asked)


def _state_by_digest(purpose_is_asked) -> Select:
    """One digest (a single lookup): the batch statement with one digest would cost PostgreSQL a new plan on every
    call, as it cannot know the batch's size before it sees it."""
    found = select(SubjectIdentifier.digest, *_ANSWER_COLUMNS).where(
        SubjectIdentifier.site_id == bindparam("site_id"), SubjectIdentifier.digest == bindparam("digest")
    )
    return _with_state(found, SubjectIdentifier.subject_id, purpose_is_asked)


# Digests and purposes go as one parameter each, never one per item: the statement stays the same whatever the
# batch (compiled once, prepared by PostgreSQL) and the driver need not dump a 10,000-item list. On PostgreSQL a
# comma-separated text (digests are hex, purpose keys [a-z0-9_]) split by the server; with `digest = ANY(...)`
# the planner would scan the whole table for a large batch. On SQLite a JSON array.
_DIGESTS_PG = func.unnest(func.string_to_array(bindparam("digests", type_=String), ",")).table_valued("digest")
_DIGESTS_SQLITE = func.json_each(bindparam("digests", type_=String)).table_valued("value")
_PURPOSES_PG = ConsentState.purpose == any_(func.string_to_array(bindparam("purposes", type_=String), ","))
_PURPOSES_SQLITE = ConsentState.purpose.in_(
    select(func.json_each(bindparam("purposes", type_=String)).table_valued("value").c.value)
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
# A subject known by id, for one purpose: its flags and, if any, its state (email links, access requests).
_BY_SUBJECT = (
    select(*_ANSWER_COLUMNS)
    .select_from(Subject)
    .outerjoin(
        ConsentState,
        and_(
            ConsentState.site_id == Subject.site_id,
            ConsentState.subject_id == Subject.id,
            ConsentState.purpose == bindparam("purpose"),
        ),
    )
    .where(Subject.id == bindparam("subject_id"), Subject.site_id == bindparam("site_id"))
)


def link(site: Site, subjects: Sequence[str], *, hmac_key: str, visitor_ids: VisitorIds) -> str:
    """Make several identifiers name one subject (a logged-in visitor's banner consent then answers by user id).

    Identifiers already linked to two different subjects are refused rather than merged: their histories stay apart.
    One unit of work: committed here, or rolled back with nothing linked. Two links of the same new identifiers
    collide on the identifier's unique key; the loser is retried whole and then finds the winner's subject.
    """
    identifiers = _identifiers(site.key, subjects, visitor_ids)
    return one_transaction(lambda: _link(site, identifiers, hmac_key))


def _link(site: Site, identifiers: list[Identifier], hmac_key: str) -> str:
    digests = {identifier.digest(hmac_key, site.key): identifier for identifier in identifiers}
    # Decided holding the owner's row, as consent writes and erasures decide which subject an identifier names:
    # read again once held, so nothing is linked to a subject erased (or corrected away) meanwhile.
    while True:
        known = _owners(site, list(digests))
        owners = set(known.values())
        if len(owners) > 1:
            raise Refused(
                "identifiers_conflict",
                "these identifiers already belong to different subjects; they are not merged",
                {"kinds": sorted({digests[d].kind.value for d in known})},
            )
        if not owners:
            subject_id = new_subject_id()
            db.session.execute(insert(Subject), {"id": subject_id, "site_id": site.id})
            break
        subject_id = owners.pop()
        hold_subject(site.id, subject_id)
        if _owners(site, list(digests)) == known:
            break
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


def _owners(site: Site, digests: list[str]) -> dict[str, str]:
    """The subject each of these identifier digests names, for those that name one."""
    return dict(
        db.session.execute(
            select(SubjectIdentifier.digest, SubjectIdentifier.subject_id).where(
                SubjectIdentifier.site_id == site.id, SubjectIdentifier.digest.in_(digests)
            )
        ).all()
    )
