"""The auditor's export of the consent log: events (with their log fields) and notice versions, streamed.

An export is a sequence of entries, the same in both formats: an `export` entry first (what was asked for,
whether the export is complete, and per site the log's signed checkpoint, the log's key, and what the tree keeps
of the positions retention purged), then one `event` entry per event in id order, then an `end` entry (how many
events, and each site's last position). The end entry is written only once every event has been, so a download
cut short is told apart from a whole one.

Events come from one statement read through a server-side cursor, in one snapshot: memory stays flat at
any size, and the checkpoint, the purged prefix and the events agree even while the sequencer and retention run.
An export holds each site's events up to its checkpoint's size: exactly the tree the log signed.
"""

from __future__ import annotations

import csv
import io
import json
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import Connection, func, select

from cmp.errors import Invalid
from cmp.extensions import db
from cmp.models import ChainCheckpoint, ConsentEvent, LogCheckpoint, NoticeVersion, Site, SubjectIdentifier
from cmp.models.types import utcnow
from cmp.services import chain, merkle, tlog
from cmp.services.export_fields import (
    FIELDS,
    NAMES,
    NOTICE_FIELDS,
    NOTICE_NAMES,
    RECORD_COLUMNS,
    Kind,
    event_record,
    notice_record,
    to_cell,
)
from cmp.services.identifiers import InvalidIdentifier, VisitorIds

FORMAT = "cmp.consent-log"
# 2: fields under the hash payload's own names; CSV cells quoted, and guarded against formulas.
# 3: the log is a Merkle tree: each site's signed checkpoint, the log's key and the purged prefix's subtree hashes
# in the export entry (`sites`, in place of `checkpoints`); `seq` outside a version 2 event's hash; no `head_hash`.
FORMAT_VERSION = 3
MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv"}
# Framing columns of a CSV export: what each row is, and the export or end entry's content as JSON.
CSV_COLUMNS = ("entry", *NAMES, "meta")
BATCH = 1000

EVENTS = ConsentEvent.__table__
_RECORD_COLUMNS = tuple(EVENTS.c[name] for name in RECORD_COLUMNS)


@dataclass(frozen=True)
class SiteRef:
    id: int
    key: str


@dataclass(frozen=True)
class Selection:
    """Which events an export holds. `subject_ids` None: any subject; empty: a subject nobody is known by."""

    sites: tuple[SiteRef, ...]
    start: datetime | None = None
    end: datetime | None = None
    subject_ids: tuple[str, ...] | None = None
    subject_kind: str | None = None
    purpose: str | None = None

    @property
    def complete(self) -> bool:
        """Whether every event of each site is in: then links, not only each event, can be checked."""
        return self.start is None and self.end is None and self.subject_ids is None and self.purpose is None

    def filters(self) -> dict:
        # The subject is named by its kind only: an export must not carry an email address in plain text.
        return {
            "sites": [site.key for site in self.sites],
            "from": chain.format_time(self.start),
            "to": chain.format_time(self.end),
            "subject": self.subject_kind,
            "purpose": self.purpose,
        }


def select_events(
    sites: Sequence[Site],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    subject: str | None = None,
    purpose: str | None = None,
    hmac_key: str,
    visitor_ids: VisitorIds,
) -> Selection:
    """Check the filters and resolve the subject to its pseudonymous ids; raises Invalid for a bad filter.

    `start` is inclusive and `end` exclusive, on the receive time. A subject is looked up by its keyed digest
    on each site (digests differ per site); one no site knows selects nothing, which is not an error.
    """
    if start is not None and end is not None and start >= end:
        raise Invalid("invalid_range", "`from` must be before `to`", {"from": str(start), "to": str(end)})
    refs = tuple(SiteRef(site.id, site.key) for site in sites)
    subject_ids, kind = None, None
    if subject is not None:
        subject_ids, kind = _subject_ids(refs, subject, hmac_key, visitor_ids)
    return Selection(refs, start, end, subject_ids, kind, purpose)


def _subject_ids(
    sites: Sequence[SiteRef], text: str, hmac_key: str, visitor_ids: VisitorIds
) -> tuple[tuple[str, ...], str]:
    digests, problem = {}, None
    for site in sites:
        try:
            identifier = visitor_ids.identifier(site.key, text)
        except InvalidIdentifier as exc:
            # A visitor id is signed for one site: on the others it names nobody.
            problem = str(exc)
            continue
        digests[site.id] = identifier.digest(hmac_key, site.key)
    if not digests and sites:
        raise Invalid("invalid_subject", f"the subject cannot be read: {problem}", {"subject": problem})
    if not digests:
        return (), text.partition(":")[0]
    rows = db.session.execute(
        select(SubjectIdentifier.subject_id, SubjectIdentifier.site_id).where(
            SubjectIdentifier.digest.in_(list(digests.values()))
        )
    )
    found = tuple(sorted({subject_id for subject_id, site_id in rows if site_id in digests}))
    return found, text.partition(":")[0]


def _where(query, selection: Selection):
    # Integrated events only: a pending one has no place in the log yet (the sequencer gives it one within a second).
    query = query.where(EVENTS.c.site_id.in_([site.id for site in selection.sites]), EVENTS.c.seq.is_not(None))
    if selection.start is not None:
        query = query.where(EVENTS.c.received_at >= selection.start)
    if selection.end is not None:
        query = query.where(EVENTS.c.received_at < selection.end)
    if selection.subject_ids is not None:
        query = query.where(EVENTS.c.subject_id.in_(selection.subject_ids))
    if selection.purpose is not None:
        # A decision on the purpose, granted or denied: ->> on PostgreSQL, json_extract on SQLite.
        query = query.where(EVENTS.c.decisions[selection.purpose].as_string().is_not(None))
    return query


def count_events(selection: Selection) -> int:
    """How many events the export will hold (for a progress bar); events written meanwhile may add to it."""
    if selection.subject_ids == ():
        return 0
    return db.session.scalar(_where(select(func.count()).select_from(EVENTS), selection))


@dataclass(frozen=True)
class SiteLog:
    """What one site's log is in the export's snapshot: where retention resumed it, and its latest checkpoint."""

    site_id: int
    purged: tuple[int, str]  # (seq, hash) of the last purged event: (0, the genesis) when none was
    size: int  # the latest checkpoint's tree size (0 before the first): the export holds the events up to it

    def manifest(self) -> dict:
        """The site's part of the export entry: everything the file needs to check the site's tree offline."""
        return {
            # With every witness's cosignature, as served; checked against the log's key, never the one below.
            "checkpoint": tlog.cosigned_checkpoint_of_size(self.site_id, self.size).note if self.size else None,
            # For information: which key signed it. A verifier takes the key from elsewhere.
            "log_key": tlog.log_key().verifier_key,
            "purged": {"seq": self.purged[0], "hash": self.purged[1]},
            "purged_subtrees": purged_subtrees(self.site_id, self.purged[0]),
        }


def export_entries(
    selection: Selection, *, batch: int = BATCH, progress: Callable[[int], None] | None = None
) -> Iterator[dict]:
    """The export's entries, in order: `export`, one `event` per event in id order, `end`.

    `progress` is told how many events each batch held. Nothing is read before the first entry is asked for,
    so a caller validates everything first and only then starts streaming.
    """
    keys = {site.id: site.key for site in selection.sites}
    with _snapshot() as connection:
        logs = _site_logs(connection, list(keys))
        yield {
            "entry": "export",
            "meta": {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "hash_version": chain.HASH_VERSION,
                "exported_at": chain.format_time(utcnow()),
                "complete": selection.complete,
                "filters": selection.filters(),
                "sites": {key: logs[site_id].manifest() for site_id, key in keys.items()},
            },
        }
        # What the end entry reports: each site's events, and the last position (highest seq) seen.
        events = dict.fromkeys(keys, 0)
        last = dict.fromkeys(keys, 0)
        sizes = {site_id: logs[site_id].size for site_id in keys}
        if selection.subject_ids != ():
            query = _where(select(EVENTS.c.site_id, *_RECORD_COLUMNS), selection).order_by(EVENTS.c.id)
            result = connection.execute(query.execution_options(yield_per=batch))
            for rows in result.partitions():
                for site_id, *values in rows:
                    record = event_record(values, keys[site_id])
                    seq = record["seq"]
                    # Integrated after the checkpoint was signed: under no signature yet, so left for the next export.
                    if seq > sizes[site_id]:
                        continue
                    events[site_id] += 1
                    if seq > last[site_id]:
                        last[site_id] = seq
                    yield {"entry": "event", **record}
                if progress is not None:
                    progress(len(rows))
        sites = {}
        for site_id, key in keys.items():
            sites[key] = {"events": events[site_id]}
            if selection.complete:
                sites[key]["last_seq"] = last[site_id] if events[site_id] else logs[site_id].purged[0]
        yield {"entry": "end", "meta": {"events": sum(events.values()), "sites": sites}}


class _snapshot:
    """A connection of its own reading one snapshot: REPEATABLE READ on PostgreSQL, one transaction on SQLite."""

    def __enter__(self) -> Connection:
        engine = db.engine
        options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
        self._connection = engine.connect().execution_options(**options)
        self._connection.begin()
        return self._connection

    def __exit__(self, *exc_info) -> None:
        self._connection.rollback()
        self._connection.close()


def _site_logs(connection: Connection, site_ids: list[int]) -> dict[int, SiteLog]:
    """Each site's retention checkpoint and latest signed checkpoint, read in the export's snapshot."""
    purged = dict.fromkeys(site_ids, (0, chain.GENESIS_HASH))
    rows = connection.execute(
        select(ChainCheckpoint.site_id, ChainCheckpoint.seq, ChainCheckpoint.hash)
        .where(ChainCheckpoint.site_id.in_(site_ids))
        .order_by(ChainCheckpoint.site_id, ChainCheckpoint.seq)
    )
    for site_id, seq, hash_ in rows:
        purged[site_id] = (seq, hash_)
    signed = dict.fromkeys(site_ids, 0)
    signed.update(
        connection.execute(
            select(LogCheckpoint.site_id, func.max(LogCheckpoint.size))
            .where(LogCheckpoint.site_id.in_(site_ids))
            .group_by(LogCheckpoint.site_id)
        ).all()
    )
    return {site_id: SiteLog(site_id, purged[site_id], signed[site_id]) for site_id in site_ids}


def purged_subtrees(site_id: int, count: int) -> list[str]:
    """The hashes (hex) of the complete subtrees covering the first `count` positions, largest first.

    Retention removes events but not their leaves: these O(log n) hashes stand for the purged prefix, so the file
    alone rebuilds the whole tree. Stored hashes of complete subtrees never change, so reading them outside the
    export's snapshot is safe.
    """
    return [node.hex() for node in merkle.subtree_hashes(count, tlog.tile_reader(site_id))]


def notice_entries(sites: Sequence[Site]) -> Iterator[dict]:
    """Every notice version of these sites, by site and version: exactly what each visitor was shown."""
    keys = {site.id: site.key for site in sites}
    query = (
        select(NoticeVersion)
        .where(NoticeVersion.site_id.in_(list(keys)))
        .order_by(NoticeVersion.site_id, NoticeVersion.version)
        .execution_options(yield_per=100)
    )
    for notice in db.session.scalars(query):
        yield notice_record(notice, keys[notice.site_id])


# Writing: JSON lines (one JSON object a line) or CSV (a header row, then one row an entry).


def jsonl(entries: Iterable[dict], chunk: int = BATCH) -> Iterator[str]:
    lines = []
    for number, entry in enumerate(entries, 1):
        lines.append(jsonl_line(entry))
        # The export entry leaves on its own, before the first event is read: the download starts at once.
        if number == 1 or len(lines) >= chunk:
            yield b"".join(lines).decode()
            lines = []
    if lines:
        yield b"".join(lines).decode()


def jsonl_line(entry: dict) -> bytes:
    """An entry as a line of UTF-8 JSON, byte for byte `json.dumps(entry, ensure_ascii=False, separators=(",", ":"))`.

    orjson writes the same bytes ten times faster for values of JSON's own types (dicts with text keys, lists,
    text, integers of up to 64 bits, booleans, null), but not for floats (1e+16 is 1e16 to it, NaN null): an
    entry holding anything else, or that orjson refuses (a larger integer, a lone surrogate), is written by
    json. Of an event entry, only the JSON fields can hold a float: the others are the log's text, integer and
    boolean columns.
    """
    nested = [entry[name] for name in _JSON_NAMES] if entry.get("entry") == "event" else [entry]
    if all(map(_orjson_alike, nested)):
        try:
            return orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError:
            pass
    return (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


_SCALARS = frozenset((str, int, bool, type(None)))
_JSON_NAMES = tuple(f.name for f in FIELDS if f.kind is Kind.JSON)


def _orjson_alike(value) -> bool:
    """Whether `value` holds nothing but dicts, lists, text, integers, booleans and null (no subclass of them)."""
    kind = type(value)
    if kind is dict:
        items = value.values()
    elif kind is list:
        items = value
    else:
        return kind in _SCALARS
    return all(type(item) in _SCALARS or _orjson_alike(item) for item in items)


def csv_rows(entries: Iterable[dict], chunk: int = BATCH) -> Iterator[str]:
    """Export entries as CSV: `entry`, the event fields, and `meta` (the export or end entry as canonical JSON)."""
    yield from _csv(CSV_COLUMNS, (_event_row(entry) for entry in entries), chunk)


def notice_csv_rows(entries: Iterable[dict], chunk: int = 100) -> Iterator[str]:
    rows = ([to_cell(f, entry[f.name]) for f in NOTICE_FIELDS] for entry in entries)
    yield from _csv(NOTICE_NAMES, rows, chunk)


def _event_row(entry: dict) -> list[str]:
    if entry["entry"] == "event":
        return ["event", *map(to_cell, FIELDS, _FIELD_VALUES(entry)), ""]
    return [entry["entry"], *([""] * len(FIELDS)), chain.canonical_json(entry["meta"]).decode()]


_FIELD_VALUES = operator.itemgetter(*NAMES)


def _csv(header: Sequence[str], rows: Iterable[list[str]], chunk: int) -> Iterator[str]:
    buffer = io.StringIO()
    # Every field quoted, as OWASP's advice on CSV injection has it (the cells themselves: export_fields.to_cell).
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)
    writer.writerow(header)
    for number, row in enumerate(rows, 1):
        writer.writerow(row)
        # The header and the first row leave at once, as in JSON lines.
        if number == 1 or number % chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def render(entries: Iterable[dict], fmt: str, *, notices: bool = False) -> Iterator[str]:
    if fmt == "csv":
        return notice_csv_rows(entries) if notices else csv_rows(entries)
    return jsonl(entries)


def filename(kind: str, sites: Sequence[SiteRef | Site], fmt: str) -> str:
    label = sites[0].key if len(sites) == 1 else "sites"
    return f"cmp-{kind}-{label}-{utcnow().strftime('%Y%m%dT%H%M%SZ')}.{fmt}"
