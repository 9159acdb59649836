"""The one mapping between a consent event's fields and the names an export gives them.

Export names follow ISO/IEC TS 27560:2023 (consent record information structure) and its predecessor,
the Kantara Consent Receipt v1.1, where either has an element for the field; fields neither standard
knows (the chain, the evidence digest) keep their own names. README.md ("Audit") shows this table.

Every value maps back exactly: offline verification rebuilds each event from its record and recomputes
its hash, so a record must carry what the hash covers in a form that reads back to the same value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import SimpleNamespace

from cmp.services import chain

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class Kind(StrEnum):
    """How a value is written in a CSV cell (JSON lines keep JSON's own types)."""

    TEXT = "text"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    TIME = "time"  # chain.format_time: microseconds, UTC, "Z"
    JSON = "json"  # RFC 8785 canonical JSON


@dataclass(frozen=True)
class ExportField:
    ours: str
    name: str
    kind: Kind
    # The standard and element the export name comes from; empty where neither has one.
    standard: str = ""


KANTARA = "Kantara CR v1.1"
ISO = "ISO/IEC TS 27560"

# In record order. `v` is the hash version the chain payload carries; `site` is the site key.
FIELDS: tuple[ExportField, ...] = (
    ExportField("id", "recordId", Kind.TEXT, f"{ISO} 6.3.3 record identifier; {KANTARA} consentReceiptID"),
    ExportField("site", "piiController", Kind.TEXT, f"{ISO} 6.3.6 PII controller; {KANTARA} piiControllers"),
    ExportField("seq", "seq", Kind.INTEGER),
    ExportField("subject_id", "piiPrincipalId", Kind.TEXT, f"{ISO} 6.3.3 PII principal id; {KANTARA} piiPrincipalId"),
    ExportField("action", "eventType", Kind.TEXT, f"{ISO} 6.3.7 event type"),
    ExportField("given_by", "eventBy", Kind.TEXT, f"{ISO} 6.3.7 event by (empty: the PII principal)"),
    ExportField("source", "collectionMethod", Kind.TEXT, f"{KANTARA} collectionMethod"),
    ExportField("decisions", "purposes", Kind.JSON, f"{ISO} 6.3.4 purposes; {KANTARA} services[].purposes[]"),
    ExportField("notice_version", "notice", Kind.INTEGER, f"{ISO} 6.3.4 notice (the version shown)"),
    ExportField("notice_hash", "noticeHash", Kind.TEXT),
    ExportField("locale", "language", Kind.TEXT, f"{ISO} 6.3.4 language; {KANTARA} language"),
    ExportField("mode", "mode", Kind.TEXT),
    ExportField("country", "jurisdiction", Kind.TEXT, f"{ISO} 6.3.4 jurisdiction; {KANTARA} jurisdiction"),
    ExportField("gpc", "gpc", Kind.BOOLEAN),
    ExportField("received_at", "consentTimestamp", Kind.TIME, f"{ISO} 6.3.7 event time; {KANTARA} consentTimestamp"),
    ExportField("expires_at", "termination", Kind.TIME, f"{ISO} 6.3.7 validity; {KANTARA} purposes[].termination"),
    ExportField("ip_prefix", "ip_prefix", Kind.TEXT),
    ExportField("user_agent", "user_agent", Kind.JSON),
    ExportField("page_url", "page_url", Kind.TEXT),
    ExportField("evidence_salt", "evidence_salt", Kind.TEXT),
    ExportField("evidence_digest", "evidence_digest", Kind.TEXT),
    ExportField("v", "hashVersion", Kind.INTEGER),
    ExportField("prev_hash", "prev_hash", Kind.TEXT),
    ExportField("hash", "hash", Kind.TEXT),
)
NAMES = tuple(field.name for field in FIELDS)
BY_NAME = {field.name: field for field in FIELDS}

# Notice versions keep their own names: neither standard describes a notice's content.
NOTICE_FIELDS: tuple[ExportField, ...] = (
    ExportField("site", "site", Kind.TEXT),
    ExportField("version", "version", Kind.INTEGER),
    ExportField("published_at", "published_at", Kind.TIME),
    ExportField("material", "material", Kind.BOOLEAN),
    ExportField("note", "note", Kind.TEXT),
    ExportField("content", "content", Kind.JSON),
    ExportField("content_hash", "content_hash", Kind.TEXT),
)
NOTICE_NAMES = tuple(field.name for field in NOTICE_FIELDS)


class RecordError(ValueError):
    """A record that cannot be read back into an event."""


def event_record(row, site_key: str) -> dict:
    """An event (object or row) as a record: what its hash covers, its evidence and chain fields, by export name."""
    ours = {
        **chain.event_payload(row, site_key),
        "given_by": row.given_by,
        "ip_prefix": row.ip_prefix,
        "user_agent": row.user_agent,
        "page_url": row.page_url,
        "evidence_salt": row.evidence_salt,
        "hash": row.hash,
    }
    return {field.name: ours[field.ours] for field in FIELDS}


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
    values = {}
    for field in FIELDS:
        if field.name not in record:
            raise RecordError(f"field {field.name!r} is missing")
        values[field.ours] = _typed(field, record[field.name])
    return SimpleNamespace(**values)


def read_notice(record: Mapping) -> SimpleNamespace:
    values = {}
    for field in NOTICE_FIELDS:
        if field.name not in record:
            raise RecordError(f"field {field.name!r} is missing")
        values[field.ours] = _typed(field, record[field.name])
    return SimpleNamespace(**values)


def _typed(field: ExportField, value):
    """Check a JSON value's type against the field's kind; times become datetimes."""
    if value is None:
        return None
    expected = {
        Kind.TEXT: str,
        Kind.INTEGER: int,
        Kind.BOOLEAN: bool,
        Kind.TIME: str,
        Kind.JSON: (dict, list),
    }[field.kind]
    if not isinstance(value, expected) or (field.kind is Kind.INTEGER and isinstance(value, bool)):
        raise RecordError(f"field {field.name!r} is not {field.kind.value}")
    if field.kind is Kind.TIME:
        try:
            return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise RecordError(f"field {field.name!r} is not a time like 2026-01-31T12:00:00.000000Z") from None
    return value


# CSV: every cell is text. An empty cell is null (the log never stores an empty text); integers in
# decimal; booleans `true` or `false`; times as in JSON; nested values as RFC 8785 canonical JSON.


def to_cell(field: ExportField, value) -> str:
    if value is None:
        return ""
    if field.kind is Kind.BOOLEAN:
        return "true" if value else "false"
    if field.kind is Kind.JSON:
        return chain.canonical_json(value).decode()
    return str(value)


def from_cell(field: ExportField, text: str):
    """A CSV cell as the JSON value it was written from (then read like a JSON lines value)."""
    if text == "":
        return None
    try:
        if field.kind is Kind.INTEGER:
            return int(text)
        if field.kind is Kind.BOOLEAN:
            return {"true": True, "false": False}[text]
        if field.kind is Kind.JSON:
            return json.loads(text)
    except (ValueError, KeyError):
        raise RecordError(f"field {field.name!r} is not {field.kind.value}") from None
    return text
