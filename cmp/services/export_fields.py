"""The fields of an exported event and notice, their kinds, and how each is written as a CSV cell and read back.

An event entry carries its fields under the names the log's hash payload gives them (chain.event_payload),
plus the evidence and log fields: what an auditor reads is what the hash covers. The export claims no
consent-record standard's element names: ISO/IEC TS 27560 records a consent's type, state and parties where
this log records what happened, and the visitor's consent receipt is the document in standard form.
docs/audit.md ("Field names") lists these fields.

Every value maps back exactly: offline verification rebuilds each event from its record and recomputes
its hash, so a record must carry what the hash covers in a form that reads back to the same value.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import SimpleNamespace

from cmp.services import chain

TIME_FORMAT = chain.TIME_FORMAT
# The one spelling of a time chain.format_time writes: four-digit year, every field padded, six-digit fraction.
CANONICAL_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


class Kind(StrEnum):
    """How a value is written in a CSV cell (JSON lines keep JSON's own types)."""

    TEXT = "text"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    TIME = "time"  # chain.format_time: microseconds, UTC, "Z"
    JSON = "json"  # RFC 8785 canonical JSON


@dataclass(frozen=True)
class ExportField:
    name: str
    kind: Kind


# In record order. `v` is the hash version the chain payload carries; `site` is the site key.
FIELDS: tuple[ExportField, ...] = (
    ExportField("id", Kind.TEXT),
    ExportField("site", Kind.TEXT),
    ExportField("seq", Kind.INTEGER),
    ExportField("subject_id", Kind.TEXT),
    ExportField("action", Kind.TEXT),
    ExportField("given_by", Kind.TEXT),
    ExportField("source", Kind.TEXT),
    ExportField("decisions", Kind.JSON),
    ExportField("notice_version", Kind.INTEGER),
    ExportField("notice_hash", Kind.TEXT),
    ExportField("locale", Kind.TEXT),
    ExportField("mode", Kind.TEXT),
    ExportField("country", Kind.TEXT),
    ExportField("gpc", Kind.BOOLEAN),
    ExportField("received_at", Kind.TIME),
    ExportField("expires_at", Kind.TIME),
    ExportField("ip_prefix", Kind.TEXT),
    ExportField("user_agent", Kind.JSON),
    ExportField("page_url", Kind.TEXT),
    ExportField("evidence_salt", Kind.TEXT),
    ExportField("evidence_digest", Kind.TEXT),
    ExportField("v", Kind.INTEGER),
    ExportField("prev_hash", Kind.TEXT),
    ExportField("hash", Kind.TEXT),
)
NAMES = tuple(field.name for field in FIELDS)

# Format 1 named some fields after consent-record standards, in the same order; files written then still verify.
FORMAT_1_NAMES = {
    "recordId": "id",
    "piiController": "site",
    "piiPrincipalId": "subject_id",
    "eventType": "action",
    "eventBy": "given_by",
    "collectionMethod": "source",
    "purposes": "decisions",
    "notice": "notice_version",
    "noticeHash": "notice_hash",
    "language": "locale",
    "jurisdiction": "country",
    "consentTimestamp": "received_at",
    "termination": "expires_at",
    "hashVersion": "v",
}
FORMAT_1_FIELD_NAMES = tuple({ours: theirs for theirs, ours in FORMAT_1_NAMES.items()}.get(n, n) for n in NAMES)

NOTICE_FIELDS: tuple[ExportField, ...] = (
    ExportField("site", Kind.TEXT),
    ExportField("version", Kind.INTEGER),
    ExportField("published_at", Kind.TIME),
    ExportField("material", Kind.BOOLEAN),
    ExportField("note", Kind.TEXT),
    ExportField("content", Kind.JSON),
    ExportField("content_hash", Kind.TEXT),
)
NOTICE_NAMES = tuple(field.name for field in NOTICE_FIELDS)


# The JSON type a value of each kind has (JSON lines keep JSON's own types; a CSV cell is read into one first).
JSON_TYPES: dict[Kind, type | tuple[type, ...]] = {
    Kind.TEXT: str,
    Kind.INTEGER: int,
    Kind.BOOLEAN: bool,
    Kind.TIME: str,
    Kind.JSON: (dict, list),
}


class RecordError(ValueError):
    """A record that cannot be read back into an event."""


# The event's columns a record is made of, in the order event_record takes them (the export selects them so).
RECORD_COLUMNS = (
    "id",
    "seq",
    "subject_id",
    "action",
    "given_by",
    "source",
    "decisions",
    "notice_version",
    "notice_hash",
    "locale",
    "mode",
    "country",
    "gpc",
    "received_at",
    "expires_at",
    "ip_prefix",
    "user_agent",
    "page_url",
    "evidence_salt",
    "evidence_digest",
    "prev_hash",
    "hash",
)


def event_record(values: Sequence, site_key: str) -> dict:
    """An event as a record, from its RECORD_COLUMNS in order: what its hash covers, its evidence and log fields.

    The fields the hash covers are chain.event_payload's, with its values: `v` is 1 for an event with a chain
    link, 2 for one without; `gpc` a boolean; times as chain.format_time writes them. Every record carries its
    place (`seq`) and `prev_hash`: a version 1 hash covers both; a version 2 hash covers neither (`prev_hash` is
    null), and the log's tree, whose root the export's checkpoint signs, fixes the order.

    An export builds one record per event: it is one literal in FIELDS order, and takes the row by position,
    since reading a row's fields by name takes longer than building the rest of the record.
    tests/services/test_export_writing.py checks it against chain.event_payload for events of every shape.
    """
    (
        id_,
        seq,
        subject_id,
        action,
        given_by,
        source,
        decisions,
        notice_version,
        notice_hash,
        locale,
        mode,
        country,
        gpc,
        received_at,
        expires_at,
        ip_prefix,
        user_agent,
        page_url,
        evidence_salt,
        evidence_digest,
        prev_hash,
        hash_,
    ) = values
    return {
        "id": id_,
        "site": site_key,
        "seq": seq,
        "subject_id": subject_id,
        "action": action,
        "given_by": given_by,
        "source": source,
        "decisions": dict(decisions),
        "notice_version": notice_version,
        "notice_hash": notice_hash,
        "locale": locale,
        "mode": mode,
        "country": country,
        "gpc": bool(gpc),
        "received_at": chain.format_time(received_at),
        "expires_at": chain.format_time(expires_at),
        "ip_prefix": ip_prefix,
        "user_agent": user_agent,
        "page_url": page_url,
        "evidence_salt": evidence_salt,
        "evidence_digest": evidence_digest,
        "v": 2 if prev_hash is None else 1,
        "prev_hash": prev_hash,
        "hash": hash_,
    }


def notice_record(notice, site_key: str) -> dict:
    return {
        "site": site_key,
        "version": notice.version,
        "published_at": chain.format_time(notice.published_at),
        "material": bool(notice.material),
        "note": notice.note,
        "content": notice.content,
        "content_hash": notice.content_hash,
    }


def read_event(record: Mapping) -> SimpleNamespace:
    """An export record back as an event with the model's attribute names, as chain.check_events reads it.

    Times come back as datetimes and `given_by` only when set, so chain.event_payload rebuilds the payload
    the hash was computed over. Raises RecordError naming the first field that is missing or mistyped.
    """
    try:
        found = _FIELD_VALUES(record)
    except KeyError:
        return _read_event_field_by_field(record)
    # Verifying reads every event: a record whose every field is null or of exactly its JSON type (nearly all of
    # them) is taken as it is, checked in one pass over the types, and only its times are read.
    if not all(map(frozenset.__contains__, _TAKEN_AS_IS, map(type, found))):
        return _read_event_field_by_field(record)
    values = dict(zip(NAMES, found, strict=True))
    for name in _TIME_NAMES:
        if values[name] is not None:
            values[name] = _time(name, values[name])
    return SimpleNamespace(**values)


def _read_event_field_by_field(record: Mapping) -> SimpleNamespace:
    """read_event's reading of a record of any shape: each field in order, the first fault raised."""
    values = {}
    for field in FIELDS:
        if field.name not in record:
            raise RecordError(f"field {field.name!r} is missing")
        values[field.name] = _typed(field, record[field.name])
    return SimpleNamespace(**values)


def _taken_as_is(kind: Kind) -> frozenset[type]:
    """The types of a value of `kind` that _typed returns as it is: null, and its exact JSON type but for times."""
    if kind is Kind.TIME:
        return frozenset((type(None), str))
    return frozenset((type(None), dict if kind is Kind.JSON else JSON_TYPES[kind]))


_FIELD_VALUES = operator.itemgetter(*NAMES)
_TAKEN_AS_IS = tuple(_taken_as_is(field.kind) for field in FIELDS)
_TIME_NAMES = tuple(field.name for field in FIELDS if field.kind is Kind.TIME)


def read_notice(record: Mapping) -> SimpleNamespace:
    values = {}
    for field in NOTICE_FIELDS:
        if field.name not in record:
            raise RecordError(f"field {field.name!r} is missing")
        values[field.name] = _typed(field, record[field.name])
    return SimpleNamespace(**values)


def _typed(field: ExportField, value):
    """Check a JSON value's type against the field's kind; times become datetimes."""
    if value is None:
        return None
    kind = field.kind
    if not isinstance(value, JSON_TYPES[kind]) or (kind is Kind.INTEGER and isinstance(value, bool)):
        raise RecordError(f"field {field.name!r} is not {kind.value}")
    if kind is Kind.TIME:
        return _time(field.name, value)
    return value


def _time(name: str, text: str) -> datetime:
    """The time a field's text gives, or RecordError naming the field."""
    try:
        return parse_time(text)
    except ValueError:
        raise RecordError(f"field {name!r} is not a time like 2026-01-31T12:00:00.000000Z") from None


def parse_time(text: str) -> datetime:
    """A time as `TIME_FORMAT` reads it, in UTC; ValueError when it does not read.

    Verifying a log reads two times per event, and strptime takes most of a record's reading: a time in the
    spelling chain.format_time writes is read by `datetime.fromisoformat` instead, which gives the same datetime
    for it. Any other spelling strptime still accepts (a one-digit month, other digits) is left to strptime.
    """
    if CANONICAL_TIME.fullmatch(text):
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


# CSV: every cell is text. An empty cell is null (the log never stores an empty text); integers in
# decimal; booleans `true` or `false`; times as in JSON; nested values as RFC 8785 canonical JSON.
#
# A spreadsheet runs a cell that begins with = + - @, a tab or a carriage return as a formula (OWASP, "CSV
# Injection"): such a cell gets a single quote in front, which spreadsheets show as text. A value that itself
# begins with a quote gets one too, so reading strips exactly one quote from any cell that begins with one.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"


def to_cell(field: ExportField, value) -> str:
    if value is None:
        return ""
    kind = field.kind
    if kind is Kind.BOOLEAN:
        return "true" if value else "false"
    return neutralise(chain.canonical_json(value).decode() if kind is Kind.JSON else str(value))


def neutralise(text: str) -> str:
    return ESCAPE + text if text.startswith(_ESCAPED_STARTS) else text


_ESCAPED_STARTS = (*FORMULA_STARTS, ESCAPE)


def from_cell(field: ExportField, text: str, *, escaped: bool = True):
    """A CSV cell as the JSON value it was written from (then read like a JSON lines value).

    `escaped` is false for format 1, written before cells were neutralised.
    """
    if text == "":
        return None
    if escaped:
        text = text.removeprefix(ESCAPE)
    kind = field.kind
    if kind is Kind.TEXT or kind is Kind.TIME:
        return text  # most cells, read first
    try:
        if kind is Kind.INTEGER:
            return int(text)
        if kind is Kind.BOOLEAN:
            return {"true": True, "false": False}[text]
        if kind is Kind.JSON:
            return json.loads(text)
    except (ValueError, KeyError):
        raise RecordError(f"field {field.name!r} is not {kind.value}") from None
    return text
