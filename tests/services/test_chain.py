"""The consent log: any edit, deletion, insertion or reordering made directly in the database is caught, by each
event's hash, the tree's root in the head, or the checkpoint the log signed."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import rfc8785
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from cmp.extensions import db
from cmp.models import (
    ChainHead,
    ConsentEvent,
    ConsentState,
    ImmutableRecordError,
    LogCheckpoint,
    LogTile,
    NoticeVersion,
)
from cmp.services import chain, merkle, notes, notices, tlog
from tests.helpers import events, post_consent, tree_root

# The table itself: statements on it bypass the ORM guards, as direct database access would.
EVENTS = ConsentEvent.__table__


@pytest.fixture
def logged(client, site):
    """Six events on the `shop` site's log, integrated (each request's writes are integrated once committed)."""
    for action in ("accept_all", "reject_all", "accept_all", "withdraw", "accept_all", "reject_all"):
        assert post_consent(client, action=action, page_url="https://shop.example/p").status_code == 201
    db.session.expire_all()
    return events()


def _raw(statement, rows=None):
    """Change the table behind the application's back, as an intruder with database access would."""
    db.session.execute(statement, rows)
    db.session.commit()
    db.session.expire_all()


def test_untouched_chain_verifies(site, logged):
    result = chain.verify_site(site)
    assert result.ok and result.checked == 6 and result.first_bad is None


def test_hash_is_sha256_of_the_canonical_payload(site, logged):
    event = logged[2]
    payload = chain.event_payload(event, site.key)
    assert event.hash == hashlib.sha256(rfc8785.dumps(payload)).hexdigest()
    assert payload["v"] == chain.HASH_VERSION == 2
    assert payload["evidence_digest"] == event.evidence_digest
    # An event is hashed before it has a place: the tree, not the hash, orders it.
    assert not {"seq", "prev_hash"} & set(payload) and event.prev_hash is None
    # Evidence enters only through its digest, so it can be erased without breaking the chain.
    assert not {"ip_prefix", "user_agent", "page_url"} & set(payload)


def test_integrated_events_are_the_leaves_of_the_signed_tree(site, logged):
    assert [event.seq for event in logged] == [1, 2, 3, 4, 5, 6]
    root = tree_root([event.hash for event in logged])
    head = db.session.get(ChainHead, site.id)
    assert (head.seq, head.hash) == (6, root)
    latest = tlog.latest_checkpoint(site.id)
    signed = notes.Checkpoint.parse(notes.open_note(latest.note, [tlog.log_key().verifier]).text)
    assert (signed.origin, signed.size, signed.root.hex()) == (tlog.log_key().origin(site.key), 6, root)
    result = chain.verify_site(site)
    assert (result.head_hash, result.checkpoint_size) == (root, 6)


def test_an_event_written_outside_a_request_waits_for_the_sequencer(app, site, logged):
    from cmp.services.consent import ConsentRequest, Lifetimes, record_consent
    from cmp.vocabulary import Action, Source

    request = ConsentRequest(
        site=site,
        identifier=None,
        subject_id=logged[0].subject_id,
        action=Action.WITHDRAW,
        source=Source.SYSTEM,
        decisions={},
        notice_version=1,
    )
    written = record_consent(
        request, hmac_key=app.config["CMP_HMAC_KEY"], lifetimes=Lifetimes.from_settings(app.config)
    ).id
    db.session.expire_all()
    assert db.session.get(ConsentEvent, written).seq is None
    assert chain.verify_site(site).checked == 6  # verification covers integrated events only
    assert tlog.integrate(site).integrated == 1
    db.session.expire_all()
    assert db.session.get(ConsentEvent, written).seq == 7
    result = chain.verify_site(site)
    assert result.ok and (result.checked, result.checkpoint_size) == (7, 7)


def test_edited_decision_is_caught(site, logged):
    target = logged[2]
    decisions = {**target.decisions, "analytics": "denied" if target.decisions["analytics"] == "granted" else "granted"}
    _raw(sa.update(EVENTS).where(EVENTS.c.id == target.id).values(decisions=decisions))
    result = chain.verify_site(site)
    assert not result.ok
    assert result.first_bad == target.id
    assert "altered" in result.reason


def test_edited_time_is_caught(site, logged):
    target = logged[1]
    _raw(sa.update(EVENTS).where(EVENTS.c.id == target.id).values(received_at=logged[0].received_at))
    assert chain.verify_site(site).first_bad == target.id


def test_edited_evidence_is_caught(site, logged):
    target = logged[4]
    _raw(sa.update(EVENTS).where(EVENTS.c.id == target.id).values(page_url="https://elsewhere.example/"))
    result = chain.verify_site(site)
    assert result.first_bad == target.id
    assert "evidence" in result.reason


def _delete(event_id: str):
    """Delete an event, and first the state rows that point to it (the foreign key would refuse otherwise)."""
    state = ConsentState.__table__
    _raw(sa.delete(state).where(state.c.event_id == event_id))
    _raw(sa.delete(EVENTS).where(EVENTS.c.id == event_id))


def test_deleted_event_is_caught_at_the_next_one(site, logged):
    _delete(logged[2].id)
    result = chain.verify_site(site)
    assert not result.ok
    assert result.first_bad == logged[3].id
    assert "gap" in result.reason


def test_deleted_last_event_is_caught_by_the_head(site, logged):
    _delete(logged[-1].id)
    result = chain.verify_site(site)
    assert not result.ok
    assert result.first_bad_seq == 6
    assert "removed from the end" in result.reason


def test_inserted_event_is_caught(site, logged):
    # A forged copy of event 3 slipped in as the new event 4; later events moved up one place.
    for event in reversed(logged[3:]):
        _raw(sa.update(EVENTS).where(EVENTS.c.id == event.id).values(seq=event.seq + 1))
    forged = {c.name: getattr(logged[2], c.key) for c in ConsentEvent.__table__.columns}
    forged.update(id="01ZZZZZZZZZZZZZZZZZZZZZZZZ", seq=4, prev_hash=logged[2].hash)
    _raw(sa.insert(ConsentEvent.__table__).values(**forged))
    _raw(sa.update(ChainHead).where(ChainHead.site_id == site.id).values(seq=7))
    result = chain.verify_site(site)
    assert not result.ok
    assert result.first_bad == forged["id"]


def _forge(template: ConsentEvent, site, **values) -> dict:
    """A row copied from `template` with `values` changed and its hash recomputed, as a careful forger would."""
    forged = {c.name: getattr(template, c.key) for c in EVENTS.columns}
    forged.update(values)
    row = ConsentEvent(**{c.key: forged[c.name] for c in EVENTS.columns})
    forged["hash"] = chain.event_hash(row, site.key)
    return forged


def test_inserted_event_with_every_hash_recomputed_is_caught_by_the_signed_checkpoint(site, logged):
    """The intruder shifts later events up, inserts a well-hashed event and writes the new tree's root into the
    head: every event and the head agree, but the log signed a different tree of six."""
    for event in reversed(logged[3:]):
        _raw(sa.update(EVENTS).where(EVENTS.c.id == event.id).values(seq=event.seq + 1))
    forged = _forge(logged[2], site, id="01ZZZZZZZZZZZZZZZZZZZZZZZX", seq=4, decisions={"analytics": "granted"})
    _raw(sa.insert(EVENTS).values(**forged))
    hashes = [e.hash for e in logged[:3]] + [forged["hash"]] + [e.hash for e in logged[3:]]
    _raw(sa.update(ChainHead).where(ChainHead.site_id == site.id).values(seq=7, hash=tree_root(hashes)))
    # With the stored tree left as it was, the first event out of place is named.
    result = chain.verify_site(site)
    assert not result.ok and result.first_bad == forged["id"]
    assert "not the one the tree holds at its place" in result.reason
    # With the tree rebuilt too, everything in the database agrees: only the signed checkpoint tells.
    _raw(sa.delete(LogTile.__table__).where(LogTile.__table__.c.site_id == site.id))
    tiles, _ = merkle.append(0, {}, [merkle.leaf_hash(bytes.fromhex(h)) for h in hashes])
    _raw(
        sa.insert(LogTile.__table__),
        [{"site_id": site.id, "level": level, "idx": idx, "hashes": data} for (level, idx), data in tiles.items()],
    )
    result = chain.verify_site(site)
    assert not result.ok
    assert "the tree of 6 events is not the one the log signed" in result.reason


def test_last_event_deleted_with_the_head_rewound_is_caught_by_the_signed_checkpoint(site, logged):
    _delete(logged[-1].id)
    root = tree_root([event.hash for event in logged[:-1]])
    _raw(sa.update(ChainHead).where(ChainHead.site_id == site.id).values(seq=5, hash=root))
    result = chain.verify_site(site)
    assert not result.ok
    assert "signed a checkpoint of 6 events but holds 5" in result.reason


def test_a_forged_checkpoint_is_caught_by_its_signature(site, logged):
    """Rewriting the log and signing a checkpoint of it needs the log's key, which the database does not hold."""
    forger = notes.Signer.generate(tlog.log_key().name)
    body = notes.Checkpoint(tlog.log_key().origin(site.key), 6, bytes(32)).body()
    table = LogCheckpoint.__table__
    _raw(
        sa.update(table)
        .where(table.c.site_id == site.id, table.c.size == 6)
        .values(root=bytes(32).hex(), note=notes.sign_note(body, forger))
    )
    result = chain.verify_site(site)
    assert not result.ok
    assert "does not verify under the log's key" in result.reason


def test_event_appended_outside_the_chain_is_caught(site, logged):
    last = logged[-1]
    forged = _forge(last, site, id="01ZZZZZZZZZZZZZZZZZZZZZZZY", seq=7)
    _raw(sa.insert(EVENTS).values(**forged))  # even a correctly computed hash does not help
    result = chain.verify_site(site)
    assert not result.ok
    assert result.first_bad == forged["id"]
    assert "beyond the chain head" in result.reason


def test_reordered_events_are_caught(site, logged):
    (a, a_seq), (b, b_seq) = ((e.id, e.seq) for e in logged[1:3])
    _raw(sa.update(EVENTS).where(EVENTS.c.id == a).values(seq=-1))
    _raw(sa.update(EVENTS).where(EVENTS.c.id == b).values(seq=a_seq))
    _raw(sa.update(EVENTS).where(EVENTS.c.id == a).values(seq=b_seq))
    result = chain.verify_site(site)
    assert not result.ok
    # Places are not in the hashes: the first event at another place than the tree holds it is named.
    assert result.first_bad == b and "not the one the tree holds at its place" in result.reason


def test_forged_hash_is_caught(site, logged):
    target = logged[3]
    _raw(sa.update(EVENTS).where(EVENTS.c.id == target.id).values(hash="f" * 64))
    result = chain.verify_site(site)
    assert result.first_bad == target.id


def test_erasing_evidence_keeps_the_chain_verifiable(site, logged):
    target = logged[2]
    _raw(
        sa.update(EVENTS)
        .where(EVENTS.c.id == target.id)
        .values(ip_prefix=None, user_agent=None, page_url=None, evidence_salt=None)
    )
    assert chain.verify_site(site).ok


def test_erased_evidence_cannot_be_guessed_from_its_digest(site, logged):
    target = logged[2]
    unsalted = hashlib.sha256(
        rfc8785.dumps(
            {"salt": None, "ip_prefix": target.ip_prefix, "user_agent": target.user_agent, "page_url": target.page_url}
        )
    ).hexdigest()
    assert target.evidence_digest != unsalted


def test_emptying_only_the_salt_is_caught(site, logged):
    target = logged[2]
    _raw(sa.update(EVENTS).where(EVENTS.c.id == target.id).values(evidence_salt=None))
    result = chain.verify_site(site)
    assert result.first_bad == target.id


def test_chains_are_per_site(client, site, logged):
    from cmp.services import notices, sites

    other = sites.create_site("blog", "Blog", origins=["https://shop.example"])
    notices.publish_notice(other)
    body = post_consent(client, "blog", action="accept_all").json
    db.session.expire_all()
    assert [(event.id, event.seq) for event in events(other.id)] == [(body["event_id"], 1)]
    assert tlog.latest_checkpoint(other.id).root == tree_root([body["hash"]])
    assert tlog.latest_checkpoint(site.id).size == 6
    assert chain.verify_site(other).ok and chain.verify_site(site).ok


def test_the_orm_refuses_to_change_events(site, logged):
    event = db.session.get(ConsentEvent, logged[0].id)
    event.decisions = {"analytics": "denied"}
    with pytest.raises(ImmutableRecordError):
        db.session.commit()
    db.session.rollback()
    event = db.session.get(ConsentEvent, logged[0].id)
    db.session.delete(event)
    with pytest.raises(ImmutableRecordError):
        db.session.commit()
    db.session.rollback()
    assert chain.verify_site(site).ok


def test_verify_result_serialises(site, logged):
    data = json.loads(json.dumps(chain.verify_site(site).as_dict()))
    assert data == {
        "ok": True,
        "checked": 6,
        "first_bad": None,
        "first_bad_seq": None,
        "reason": None,
        "head_hash": tree_root([event.hash for event in logged]),
        "checkpoint_size": 6,
    }


def test_edited_notice_text_is_caught_at_the_first_event_shown_it(site, logged):
    notices_table = NoticeVersion.__table__
    content = notices.current_notice(site).content
    content["texts"]["en"]["accept_all"] = "OK"
    _raw(sa.update(notices_table).where(notices_table.c.site_id == site.id).values(content=content))
    result = chain.verify_site(site)
    assert not result.ok
    assert result.first_bad == logged[0].id
    assert "notice" in result.reason


def test_notice_rewritten_with_a_matching_hash_is_still_caught(site, logged):
    notices_table = NoticeVersion.__table__
    content = notices.current_notice(site).content
    content["policy_url"] = "https://shop.example/other-policy"
    forged = hashlib.sha256(rfc8785.dumps(content)).hexdigest()
    _raw(
        sa.update(notices_table).where(notices_table.c.site_id == site.id).values(content=content, content_hash=forged)
    )
    assert chain.verify_site(site).first_bad == logged[0].id  # events carry the hash of what they were shown


def test_the_orm_refuses_bulk_changes_to_the_log_and_notices(site, logged):
    for statement in (
        sa.update(ConsentEvent).values(action="admin"),
        sa.delete(ConsentEvent),
        sa.update(NoticeVersion).values(note="rewritten"),
        sa.delete(NoticeVersion),
    ):
        with pytest.raises(ImmutableRecordError):
            db.session.execute(statement)
        db.session.rollback()
    assert chain.verify_site(site).ok


ANY_TIME = st.datetimes(min_value=datetime(1, 1, 1), timezones=st.sampled_from([None, UTC]))


@settings(max_examples=2000, deadline=None)
@given(ANY_TIME)
def test_format_time_writes_what_strftime_writes(value):
    assert chain.format_time(value) == value.strftime(chain.TIME_FORMAT)


def test_format_time_keeps_every_field():
    value = datetime(2026, 1, 2, 3, 4, 5, 60, tzinfo=UTC)
    assert chain.format_time(value) == "2026-01-02T03:04:05.000060Z"
    assert chain.format_time(None) is None


def test_a_version_1_payload_keeps_its_fields_in_their_order():
    event = SimpleNamespace(
        id="01J0000000000000000000000",
        seq=7,
        prev_hash="ab" * 32,
        subject_id="s",
        action="accept_all",
        source="banner",
        decisions={"analytics": "granted"},
        notice_version=1,
        notice_hash="cd" * 32,
        locale="en",
        mode="opt_in",
        country=None,
        gpc=False,
        received_at=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
        expires_at=None,
        evidence_digest="ef" * 32,
        given_by="guardian",
    )
    payload = chain.event_payload(event, "shop")
    assert list(payload) == [
        "v", "id", "site", "seq", "subject_id", "action", "source", "decisions", "notice_version", "notice_hash",
        "locale", "mode", "country", "gpc", "received_at", "expires_at", "evidence_digest", "prev_hash", "given_by",
    ]  # fmt: skip
    assert (payload["v"], payload["seq"], payload["prev_hash"]) == (1, 7, "ab" * 32)
    unlinked = chain.event_payload(SimpleNamespace(**{**vars(event), "prev_hash": None}), "shop")
    assert list(unlinked) == [name for name in payload if name not in ("seq", "prev_hash")]
    assert unlinked["v"] == 2
