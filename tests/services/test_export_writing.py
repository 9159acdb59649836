"""Writing the export: each event's record, and each entry's line of JSON, are what the plain definitions give.

event_record builds a record in one literal from a row read by position, and a line of JSON is written by orjson
where it writes json's bytes: both are checked here against the plain path (chain.event_payload and the event's
fields by name; `json.dumps(ensure_ascii=False, separators=(",", ":"))`) for values of every shape.
"""

from __future__ import annotations

import json
import operator
from datetime import UTC
from types import SimpleNamespace

import sqlalchemy as sa
from flask import current_app
from hypothesis import given, settings
from hypothesis import strategies as st

from cmp.extensions import db
from cmp.models import ConsentEvent
from cmp.services import chain, export, sites
from cmp.services.export_fields import FIELDS, NAMES, RECORD_COLUMNS, event_record
from tests.helpers import events, post_consent

EVENTS = ConsentEvent.__table__
record_values = operator.attrgetter(*RECORD_COLUMNS)

# Any text, lone surrogates included (no database stores one, and neither writer can encode one).
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
TEXT = st.text(max_size=12) | ANY_TEXT
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        # Past 64 bits both ways: orjson refuses those, and json writes them.
        st.integers(-(2**70), 2**70),
        st.sampled_from((-(2**63), 2**64 - 1, 2**64, -(2**63) - 1)),
        st.floats(),
        TEXT,
        st.sampled_from(("\x00\x1f\x7f", '"\\/', "\u2028\u2029", "é€𝄞", "\ud800")),
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
UTC_TIMES = st.datetimes(timezones=st.just(UTC))


def optional(strategy):
    return st.none() | strategy


EVENT_SHAPES = st.builds(
    SimpleNamespace,
    id=TEXT,
    seq=st.integers(1, 2**63 - 1),
    subject_id=TEXT,
    action=TEXT,
    given_by=optional(TEXT),
    source=TEXT,
    decisions=st.dictionaries(TEXT, JSON_VALUES, max_size=4),
    notice_version=optional(st.integers(-(2**31), 2**31 - 1)),
    notice_hash=optional(TEXT),
    locale=optional(TEXT),
    mode=TEXT,
    country=optional(TEXT),
    gpc=st.booleans() | st.sampled_from((0, 1)),
    received_at=UTC_TIMES,
    expires_at=optional(UTC_TIMES),
    ip_prefix=optional(TEXT),
    user_agent=optional(JSON_VALUES),
    page_url=optional(TEXT),
    evidence_salt=optional(TEXT),
    evidence_digest=TEXT,
    # Version 1 events carry a chain link, version 2 events none.
    prev_hash=optional(TEXT),
    hash=TEXT,
)


def plain_record(event, site_key: str) -> dict:
    """The record by its definition: the hash payload, then the evidence and log fields, by name, in FIELDS order."""
    values = {
        **chain.event_payload(event, site_key),
        "seq": event.seq,
        "prev_hash": event.prev_hash,
        "given_by": event.given_by,
        "ip_prefix": event.ip_prefix,
        "user_agent": event.user_agent,
        "page_url": event.page_url,
        "evidence_salt": event.evidence_salt,
        "hash": event.hash,
    }
    return {field.name: values[field.name] for field in FIELDS}


def plain_line(entry: dict) -> bytes:
    return (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def outcome(write, entry):
    """What writing gives: the bytes, or the kind of error."""
    try:
        return write(entry)
    except (TypeError, ValueError) as exc:
        return type(exc)


@settings(max_examples=500, deadline=None)
@given(EVENT_SHAPES, TEXT)
def test_a_record_is_the_events_payload_and_log_fields_in_field_order(event, site_key):
    record = event_record(record_values(event), site_key)
    assert list(record.items()) == list(plain_record(event, site_key).items())
    assert tuple(record) == NAMES
    payload = chain.event_payload(event, site_key)
    assert {name: record[name] for name in payload} == payload


@settings(max_examples=1000, deadline=None)
@given(EVENT_SHAPES, TEXT)
def test_an_event_entry_is_written_as_json_writes_it(event, site_key):
    entry = {"entry": "event", **event_record(record_values(event), site_key)}
    assert outcome(export.jsonl_line, entry) == outcome(plain_line, entry)


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(TEXT, JSON_VALUES, max_size=6))
def test_any_entry_is_written_as_json_writes_it(entry):
    assert outcome(export.jsonl_line, entry) == outcome(plain_line, entry)


def test_values_orjson_writes_otherwise_are_left_to_json():
    for value in (1e16, 1e-7, float("nan"), float("inf"), 2**64, -(2**63) - 1, "\ud800", {1: "a"}, (1, 2)):
        entry = {"entry": "export", "meta": {"value": [value]}}
        assert outcome(export.jsonl_line, entry) == outcome(plain_line, entry)
    assert not export._orjson_alike({"meta": {"value": [1.5]}})
    assert not export._orjson_alike({"meta": (1,)})
    assert export._orjson_alike({"meta": {"value": [1, "a", None, True, {"b": []}]}})


def test_an_export_of_odd_values_is_written_as_json_writes_it(client, site):
    """Through the database: values past 64 bits, floats, control characters and any script, on either backend."""
    for action in ("accept_all", "reject_all", "accept_all"):
        assert post_consent(client, action=action, page_url="https://shop.example/p").status_code == 201
    first, second, _ = sorted(events(), key=lambda event: event.id)
    odd = {"brands": [{"brand": "Ch\u2028rome\x01", "version": 2**70}], "ratio": 1e16, "small": 1e-7, "mobile": True}
    db.session.execute(sa.update(EVENTS).where(EVENTS.c.id == first.id).values(user_agent=odd))
    db.session.execute(
        sa.update(EVENTS).where(EVENTS.c.id == second.id).values(decisions={"analytics": "granted", "é€𝄞": "denied"})
    )
    db.session.commit()
    selection = export.select_events(
        sites.list_sites(),
        hmac_key=current_app.config["CMP_HMAC_KEY"],
        visitor_ids=current_app.extensions["cmp.visitor_ids"],
    )
    found = list(export.export_entries(selection, batch=2))
    assert len(found) == 5
    written = "".join(export.jsonl(found, chunk=2))
    assert written == "".join(plain_line(entry).decode() for entry in found)
    # The odd event leaves through json, the others through orjson.
    assert [export._orjson_alike(entry["user_agent"]) for entry in found[1:-1]] == [False, True, True]
