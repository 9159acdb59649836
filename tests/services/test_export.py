"""The auditor's export and its offline verification: what was recorded comes out, and any tampering is named."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from flask import current_app
from hypothesis import given, settings
from hypothesis import strategies as st

from cmp.extensions import db
from cmp.models import ChainCheckpoint, ConsentEvent, ConsentState
from cmp.models.types import utcnow
from cmp.services import chain, export, notes, notices, sites, tlog
from cmp.services import consent as consent_service
from cmp.services.export_fields import (
    CANONICAL_TIME,
    FIELDS,
    NAMES,
    TIME_FORMAT,
    RecordError,
    _read_event_field_by_field,
    parse_time,
    read_event,
)
from cmp.services.export_verify import json_line, verify_file
from tests.conftest import LOG_KEY
from tests.helpers import bearer, events, post_consent, tree_root

EVENTS = ConsentEvent.__table__


def record(client, subject: str, action: str = "accept_all", site: str = "shop", **body):
    headers = bearer("consent:write")
    response = client.post(
        f"/api/v1/sites/{site}/consents", json={"subject": subject, "action": action, **body}, headers=headers
    )
    assert response.status_code == 201, response.json
    return response.json


@pytest.fixture
def logged(client, site):
    """Six events on `shop`: four banner decisions and two for user:ada, one of them with a partner purpose."""
    for action in ("accept_all", "reject_all", "accept_all", "withdraw"):
        assert post_consent(client, action=action, page_url="https://shop.example/p").status_code == 201
    record(client, "user:ada", "accept_all", ip="203.0.113.9", user_agent="Mozilla/5.0", country="FR")
    sites.add_purpose(site, "partner_sharing", texts={"en": {"name": "Partners", "description": "Shared"}})
    notices.publish_notice(site, material=True)
    db.session.commit()
    record(client, "user:ada", "save", decisions={"partner_sharing": "granted"}, notice_version=2)
    db.session.expire_all()
    return events()


def selection(site_objects, **filters):
    return export.select_events(
        site_objects,
        hmac_key=current_app.config["CMP_HMAC_KEY"],
        visitor_ids=current_app.extensions["cmp.visitor_ids"],
        **filters,
    )


def entries(site_objects=None, **filters) -> list[dict]:
    chosen = site_objects if site_objects is not None else sites.list_sites()
    return list(export.export_entries(selection(chosen, **filters), batch=2))


def event_entries(found: list[dict]) -> list[dict]:
    return [entry for entry in found if entry["entry"] == "event"]


def write(tmp_path, found: list[dict], fmt: str = "jsonl", name: str = "export") -> str:
    path = tmp_path / f"{name}.{fmt}"
    path.write_text("".join(export.render(found, fmt)), encoding="utf-8", newline="")
    return path


def test_export_holds_every_field_as_recorded_in_id_order(site, logged):
    found = entries()
    assert found[0]["entry"] == "export" and found[-1]["entry"] == "end"
    exported = event_entries(found)
    assert [e["id"] for e in exported] == sorted(e.id for e in logged)
    for entry, event in zip(exported, sorted(logged, key=lambda e: e.id), strict=True):
        back = read_event(entry)
        for name in ("id", "seq", "subject_id", "action", "source", "decisions", "notice_version", "notice_hash"):
            assert getattr(back, name) == getattr(event, name)
        for name in ("locale", "mode", "country", "gpc", "received_at", "expires_at", "given_by", "ip_prefix"):
            assert getattr(back, name) == getattr(event, name)
        for name in ("user_agent", "page_url", "evidence_salt", "evidence_digest", "prev_hash", "hash"):
            assert getattr(back, name) == getattr(event, name)
        assert back.site == "shop" and chain.event_hash(back, "shop") == event.hash
    assert found[-1]["meta"] == {"events": 6, "sites": {"shop": {"events": 6, "last_seq": 6}}}


def test_the_export_carries_the_signed_checkpoint_of_its_events(tmp_path, site, logged):
    manifest = entries()[0]["meta"]
    assert manifest["version"] == 3
    shop = manifest["sites"]["shop"]
    assert shop["checkpoint"] == tlog.latest_cosigned(site.id).note
    assert shop["log_key"] == tlog.log_key().verifier_key
    assert shop["purged"] == {"seq": 0, "hash": chain.GENESIS_HASH} and shop["purged_subtrees"] == []
    opened = notes.open_note(shop["checkpoint"], [tlog.log_key().verifier])
    signed = notes.Checkpoint.parse(opened.text)
    assert (signed.origin, signed.size) == ("cmp.test/shop", 6)
    assert signed.root.hex() == tree_root([e.hash for e in logged])
    report = verify_file(write(tmp_path, entries()), key=tlog.log_key().verifier)
    assert report.ok, report
    assert (report.sites[0].result.checkpoint_size, report.sites[0].result.head_hash) == (6, signed.root.hex())


def test_an_event_entry_carries_what_its_hash_covers_under_the_same_names(site, logged):
    # An auditor can recompute a hash from a JSON line alone: the payload's fields are the entry's, by name.
    for entry, event in zip(event_entries(entries()), sorted(logged, key=lambda e: e.id), strict=True):
        payload = chain.event_payload(event, "shop")
        assert {name: entry[name] for name in payload} == payload
        assert chain.sha256_hex(chain.canonical_json(payload)) == entry["hash"] == event.hash
    assert list(event_entries(entries())[0]) == ["entry", *NAMES]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_both_formats_read_back_to_the_same_events(tmp_path, site, logged, fmt):
    found = entries()
    path = write(tmp_path, found, fmt)
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
        assert [row["entry"] for row in rows] == ["export", *["event"] * 6, "end"]
        # Nested values are canonical JSON in their cell.
        assert rows[1]["decisions"] == chain.canonical_json(logged[0].decisions).decode()
    report = verify_file(path)
    assert report.ok, report
    assert [(s.site, s.result.checked, s.links_checked) for s in report.sites] == [("shop", 6, True)]


def test_filters_by_time_subject_and_purpose(site, logged):
    ada = {e.id for e in logged if e.source == "api"}
    assert {e["id"] for e in event_entries(entries(subject="user:ada"))} == ada
    assert event_entries(entries(subject="user:nobody")) == []
    assert [e["id"] for e in event_entries(entries(purpose="partner_sharing"))] == [logged[-1].id]
    analytics = [e.id for e in sorted(logged, key=lambda e: e.id) if "analytics" in e.decisions]
    assert len(analytics) == 5 and [e["id"] for e in event_entries(entries(purpose="analytics"))] == analytics
    middle = logged[2].received_at
    after = event_entries(entries(start=middle))
    assert {e["id"] for e in after} == {e.id for e in logged if e.received_at >= middle}
    before = event_entries(entries(end=middle))
    assert {e["id"] for e in before} == {e.id for e in logged if e.received_at < middle}
    manifest = entries(subject="user:ada")[0]["meta"]
    assert manifest["complete"] is False
    assert manifest["filters"]["subject"] == "user"  # the kind, never the identifier itself


def test_a_bad_filter_is_refused_before_anything_is_read(site, logged):
    from cmp.errors import Invalid

    with pytest.raises(Invalid):
        selection([site], subject="email:not-an-address")
    with pytest.raises(Invalid):
        now = utcnow()
        selection([site], start=now, end=now - timedelta(days=1))


def test_sites_are_exported_apart(tmp_path, client, site, logged):
    other = sites.create_site("blog", "Blog", origins=["https://shop.example"])
    notices.publish_notice(other)
    db.session.commit()
    post_consent(client, "blog", action="accept_all")
    assert {e["site"] for e in event_entries(entries([other]))} == {"blog"}
    both = entries()
    assert {e["site"] for e in event_entries(both)} == {"shop", "blog"}
    assert verify_file(write(tmp_path, both)).ok


def test_filtered_export_is_verified_event_by_event(tmp_path, site, logged):
    path = write(tmp_path, entries(subject="user:ada"))
    report = verify_file(path)
    assert report.ok
    [shop] = report.sites
    assert shop.result.checked == 2 and not shop.links_checked
    assert "its place in the log was not checkable" in shop.notes[0]


def test_an_edit_in_a_filtered_export_is_caught_at_that_event(tmp_path, site, logged):
    found = entries(subject="user:ada")
    event_entries(found)[0]["action"] = "reject_all"
    result = verify_file(write(tmp_path, found)).sites[0].result
    assert not result.ok and result.first_bad == logged[4].id and "altered" in result.reason


# Tampering with a complete export file: each kind is caught, at the event a database check would name.


def lines(tmp_path, fmt="jsonl"):
    path = write(tmp_path, entries(), fmt)
    return path, path.read_text(encoding="utf-8").splitlines(keepends=True)


def verdict(path, text_lines):
    path.write_text("".join(text_lines), encoding="utf-8", newline="")
    return verify_file(path).sites[0].result


def edit(line: str, **changes) -> str:
    entry = json.loads(line)
    entry.update(changes)
    return json.dumps(entry) + "\n"


def test_edited_field_is_caught(tmp_path, site, logged):
    path, text = lines(tmp_path)
    text[3] = edit(text[3], decisions={"analytics": "granted", "necessary": "granted"})
    result = verdict(path, text)
    assert result.first_bad == logged[2].id and "altered" in result.reason


def test_edited_evidence_is_caught(tmp_path, site, logged):
    path, text = lines(tmp_path)
    text[2] = edit(text[2], page_url="https://elsewhere.example/")
    result = verdict(path, text)
    assert result.first_bad == logged[1].id and "evidence" in result.reason


def test_edited_csv_cell_is_caught(tmp_path, site, logged):
    path, text = lines(tmp_path, "csv")
    rows = list(csv.reader(io.StringIO("".join(text))))
    rows[3][1 + NAMES.index("received_at")] = chain.format_time(logged[0].received_at)
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    result = verdict(path, [buffer.getvalue()])
    assert result.first_bad == logged[1].id


def test_deleted_line_is_caught_at_the_next_event(tmp_path, site, logged):
    path, text = lines(tmp_path)
    del text[3]
    result = verdict(path, text)
    assert result.first_bad == logged[3].id and "gap" in result.reason


def test_deleted_last_line_is_caught_by_the_end_entry(tmp_path, site, logged):
    path, text = lines(tmp_path)
    del text[-2]
    result = verdict(path, text)
    assert not result.ok and result.first_bad_seq == 6 and "removed from the end" in result.reason


def test_a_file_cut_short_is_caught(tmp_path, site, logged):
    path, text = lines(tmp_path)
    result = verdict(path, text[:-1])
    assert not result.ok and "cut short" in result.reason


def test_inserted_line_is_caught(tmp_path, site, logged):
    path, text = lines(tmp_path)
    forged = edit(text[3], id=logged[2].id[:-1] + "Z", seq=4, prev_hash=logged[2].hash)
    renumbered = [edit(line, seq=json.loads(line)["seq"] + 1) for line in text[4:-1]]
    end = json.loads(text[-1])
    end["meta"]["sites"]["shop"]["last_seq"] = 7
    end["meta"]["sites"]["shop"]["events"] = 7
    result = verdict(path, [*text[:4], forged, *renumbered, json.dumps(end) + "\n"])
    assert not result.ok and result.first_bad == logged[2].id[:-1] + "Z"


def test_two_lines_swapped_are_caught(tmp_path, site, logged):
    path, text = lines(tmp_path)
    text[2], text[3] = text[3], text[2]
    result = verdict(path, text)
    assert not result.ok and result.first_bad == logged[2].id  # it came before the event it follows


NOT_SIGNED = "the tree of 6 events is not the one the log signed"


def test_two_events_swapped_in_the_log_are_caught(tmp_path, site, logged):
    # The places exchanged, lines left where they are: no hash covers a place, but the tree's leaves are in seq order.
    path, text = lines(tmp_path)
    text[2], text[3] = edit(text[2], seq=3), edit(text[3], seq=2)
    result = verdict(path, text)
    assert not result.ok and result.reason.startswith(NOT_SIGNED) and result.checked == 6


def test_a_recomputed_hash_no_longer_makes_the_signed_root(tmp_path, site, logged):
    path, text = lines(tmp_path)
    entry = json.loads(text[3])
    entry["action"] = "reject_all"
    entry["hash"] = chain.event_hash(read_event(entry), "shop")
    text[3] = json.dumps(entry) + "\n"
    result = verdict(path, text)
    assert not result.ok and result.reason.startswith(NOT_SIGNED)


def resign(found: list[dict], signer: notes.Signer) -> None:
    """What a forger with `signer` does after changing events: recompute every hash and the root, sign again."""
    chained = sorted(event_entries(found), key=lambda e: e["seq"])
    for entry in chained:
        entry["hash"] = chain.event_hash(read_event(entry), entry["site"])
    shop = found[0]["meta"]["sites"]["shop"]
    origin = notes.Checkpoint.parse(notes.parse_note(shop["checkpoint"]).text).origin
    root = bytes.fromhex(tree_root([e["hash"] for e in chained]))
    shop["checkpoint"] = notes.sign_note(notes.Checkpoint(origin, len(chained), root).body(), signer)
    shop["log_key"] = signer.verifier_key


def test_a_log_rewritten_and_signed_with_another_key_fails_under_the_logs_key(tmp_path, site, logged):
    found = entries()
    event_entries(found)[2]["action"] = "reject_all"
    forger = notes.Signer.from_private(notes.generate_key("cmp.test")[0])  # the log's name, not its key
    resign(found, forger)
    path = write(tmp_path, found)
    for key in (tlog.log_key().verifier, None):  # given, or the app's own
        result = verify_file(path, key=key).sites[0].result
        assert not result.ok and result.checked == 0
        assert result.reason.startswith("the checkpoint does not verify under the log's key cmp.test")
    # Everything but the signature holds together: the key is what tells the log from a forgery.
    assert verify_file(path, key=forger.verifier()).ok


def test_an_older_checkpoint_put_in_fails_unless_the_file_ends_with_it(tmp_path, site, logged):
    found = entries()
    older = tlog.checkpoint_of_size(site.id, 4)
    found[0]["meta"]["sites"]["shop"]["checkpoint"] = older.note
    result = verify_file(write(tmp_path, found)).sites[0].result
    # Events 5 and 6 would be under no signature: they could have been made up after the checkpoint.
    assert not result.ok and result.first_bad_seq == 5
    assert result.reason.startswith("the export holds 6 events but its checkpoint signs 4")
    # Cut at the checkpoint, the file is what an export of that moment was, and proves that much.
    earlier = [found[0], *[e for e in event_entries(found) if e["seq"] <= 4], found[-1]]
    earlier[-1] = {"entry": "end", "meta": {"events": 4, "sites": {"shop": {"events": 4, "last_seq": 4}}}}
    report = verify_file(write(tmp_path, earlier, name="earlier"))
    assert report.ok and report.sites[0].result.checkpoint_size == 4


def test_a_checkpoint_of_another_site_is_refused(tmp_path, client, site, logged):
    other = sites.create_site("blog", "Blog", origins=["https://shop.example"])
    notices.publish_notice(other)
    db.session.commit()
    assert post_consent(client, "blog", action="accept_all").status_code == 201
    found = entries([site])
    found[0]["meta"]["sites"]["shop"]["checkpoint"] = tlog.latest_checkpoint(other.id).note
    result = verify_file(write(tmp_path, found)).sites[0].result
    assert not result.ok and "is of the log 'cmp.test/blog', not this site's ('cmp.test/shop')" in result.reason


def test_notices_file_checks_each_notice_and_what_events_refer_to(tmp_path, site, logged):
    path = write(tmp_path, entries())
    notices_path = tmp_path / "notices.jsonl"
    notice_lines = "".join(export.render(export.notice_entries([site]), "jsonl", notices=True))
    notices_path.write_text(notice_lines, encoding="utf-8")
    assert verify_file(path, notices_path).ok
    assert [json.loads(line)["version"] for line in notice_lines.splitlines()] == [1, 2]

    first, second = notice_lines.splitlines()
    altered = json.loads(first)
    altered["content"]["policy_url"] = "https://shop.example/other"
    notices_path.write_text(json.dumps(altered) + "\n" + second + "\n", encoding="utf-8")
    result = verify_file(path, notices_path).sites[0].result
    assert not result.ok and "notice shop version 1" in result.reason

    # Rewritten with a matching hash, it is no longer the notice the events were shown.
    altered["content_hash"] = chain.sha256_hex(chain.canonical_json(altered["content"]))
    notices_path.write_text(json.dumps(altered) + "\n" + second + "\n", encoding="utf-8")
    result = verify_file(path, notices_path).sites[0].result
    assert result.first_bad == logged[0].id and "notice version 1" in result.reason

    notices_path.write_text(second + "\n", encoding="utf-8")
    result = verify_file(path, notices_path).sites[0].result
    assert result.first_bad == logged[0].id and "not in the notices file" in result.reason


def _purge_first(site, logged, count: int) -> None:
    """What retention leaves: a checkpoint at the last removed event, the events after it, and every leaf."""
    removed = logged[:count]
    state = ConsentState.__table__
    ids = [event.id for event in removed]
    db.session.execute(sa.delete(state).where(state.c.event_id.in_(ids)))
    db.session.execute(sa.delete(EVENTS).where(EVENTS.c.id.in_(ids)))
    db.session.add(
        ChainCheckpoint(site_id=site.id, seq=removed[-1].seq, hash=removed[-1].hash, removed=count, created_at=utcnow())
    )
    db.session.commit()


@pytest.mark.parametrize(("count", "subtrees"), [(2, [(0, 2)]), (3, [(0, 2), (2, 3)]), (5, [(0, 4), (4, 5)])])
def test_an_export_after_a_retention_checkpoint_verifies_and_says_so(tmp_path, site, logged, count, subtrees):
    _purge_first(site, logged, count)
    found = entries()
    shop = found[0]["meta"]["sites"]["shop"]
    assert shop["purged"] == {"seq": count, "hash": logged[count - 1].hash}
    leaves = [e.hash for e in logged]
    assert shop["purged_subtrees"] == [tree_root(leaves[lo:hi]) for lo, hi in subtrees]
    report = verify_file(write(tmp_path, found))
    assert report.ok, report
    assert (report.sites[0].result.checked, report.sites[0].result.checkpoint_size) == (6 - count, 6)
    assert report.sites[0].notes[0].startswith(f"positions 1 to {count} were purged by retention")
    assert chain.verify_site(site).ok


def test_a_purged_subtree_hash_changed_is_caught(tmp_path, site, logged):
    _purge_first(site, logged, 3)
    found = entries()
    found[0]["meta"]["sites"]["shop"]["purged_subtrees"][1] = logged[0].hash
    result = verify_file(write(tmp_path, found)).sites[0].result
    assert not result.ok and result.reason.startswith(NOT_SIGNED)
    del found[0]["meta"]["sites"]["shop"]["purged_subtrees"][1]
    result = verify_file(write(tmp_path, found)).sites[0].result
    assert not result.ok and "1 subtree hashes given where 2 cover 3 leaves" in result.reason


def test_first_event_after_a_checkpoint_deleted_is_caught(tmp_path, site, logged):
    _purge_first(site, logged, 2)
    path = write(tmp_path, entries())
    text = path.read_text(encoding="utf-8").splitlines(keepends=True)
    del text[1]
    result = verdict(path, text)
    assert result.first_bad == logged[3].id and "gap" in result.reason


def test_a_file_in_id_order_unlike_seq_order_still_verifies(tmp_path, site, logged):
    # Writers take their id before their place in the log, so under concurrency seq 4 may hold the lower id: such
    # a log is made here by exchanging two ids and signing its tree with the log's key.
    found = entries()
    chained = event_entries(found)
    chained[2]["id"], chained[3]["id"] = chained[3]["id"], chained[2]["id"]
    resign(found, notes.Signer.from_private(LOG_KEY))
    in_id_order = sorted(chained, key=lambda e: e["id"])
    assert [e["seq"] for e in in_id_order] == [1, 2, 4, 3, 5, 6]
    assert verify_file(write(tmp_path, [found[0], *in_id_order, found[-1]])).ok


def test_every_field_in_the_mapping_is_exported_once(site, logged):
    assert len(set(NAMES)) == len(NAMES) == len(FIELDS)
    assert set(chain.event_payload(logged[0], "shop")) <= {f.name for f in FIELDS}


def test_verify_from_the_database_catches_a_recomputed_hash_at_that_event(site, logged):
    target = logged[2]
    row = db.session.execute(sa.select(EVENTS).where(EVENTS.c.id == target.id)).one()
    new_hash = chain.event_hash(SimpleNamespace(**{**row._mapping, "action": "reject_all"}), "shop")
    db.session.execute(sa.update(EVENTS).where(EVENTS.c.id == target.id).values(action="reject_all", hash=new_hash))
    db.session.commit()
    result = chain.verify_site(site)
    # The tree stores the event's leaf at its place: the recomputed hash no longer matches it.
    assert not result.ok and result.first_bad == target.id and "not the one the tree holds" in result.reason


@pytest.mark.parametrize(
    "change",
    [
        lambda text: text[1:],  # the export entry removed
        lambda text: [text[0].replace('"sites":{"shop":{', '"sites":{"shop":7,"x":{', 1), *text[1:]],
        lambda text: [*text[:-1], '{"entry":"end","meta":{"sites":{"shop":7}}}\n'],
        lambda text: [*text[:-1], text[-1], text[1]],  # an entry after the end
        lambda text: ["not json\n", *text],
    ],
)
def test_a_malformed_export_fails_as_a_whole(tmp_path, site, logged, change):
    path, text = lines(tmp_path)
    result = verdict(path, change(text))
    assert not result.ok and result.reason


# CSV injection (OWASP): a cell a spreadsheet would run as a formula is written as text, and read back exactly.

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
RISKY = ["-tMk9rQ", '=HYPERLINK("https://x.example")', "+1", "@SUM(A1:A2)", "\tx", "\rx", "'quoted", "''", "plain"]


def test_csv_cells_never_start_a_formula_and_read_back_exactly(tmp_path, client, site, monkeypatch):
    # Subject ids are random: some begin with `-`. Here each begins with a character a spreadsheet acts on.
    made = iter(RISKY)
    monkeypatch.setattr(consent_service, "new_subject_id", lambda: next(made))
    for number in range(len(RISKY)):
        record(client, f"user:{number}")
    sites.add_purpose(site, "partner_sharing", texts={"en": {"name": "Partners", "description": "Shared"}})
    notices.publish_notice(site, note="=cmd|' /C calc'!A0")
    db.session.commit()
    path = write(tmp_path, entries(), "csv")
    notices_path = tmp_path / "notices.csv"
    notices_path.write_text("".join(export.render(export.notice_entries([site]), "csv", notices=True)), newline="")

    def read(written):
        with open(written, encoding="utf-8", newline="") as stream:
            return stream.read()

    for written in (path, notices_path):
        text = read(written)
        assert text.startswith('"')  # every field quoted
        cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
        assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS)]
    rows = list(csv.DictReader(io.StringIO(read(path))))
    column = [row["subject_id"] for row in rows if row["entry"] == "event"]
    assert column == [value if value == "plain" else "'" + value for value in RISKY]
    notes = [row["note"] for row in csv.DictReader(io.StringIO(read(notices_path)))]
    assert notes == ["", "'=cmd|' /C calc'!A0"]

    # Offline verification strips the one quote it added: every hash still matches what was recorded.
    report = verify_file(path, notices_path)
    assert report.ok, report
    assert [read_event(e).subject_id for e in event_entries(entries())] == RISKY


# Written by the release before field names changed (format 1): four events of one site, evidence included.
FORMAT_1 = Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_export_in_format_1_still_verifies(fmt):
    report = verify_file(FORMAT_1 / f"export-format-1.{fmt}")
    assert report.ok, report
    [site] = report.sites
    assert (site.site, site.result.checked, site.links_checked) == ("shop", 4, True)


def test_an_edit_in_a_format_1_export_is_caught(tmp_path):
    lines = (FORMAT_1 / "export-format-1.jsonl").read_text().splitlines()
    event = json.loads(lines[2])
    event["eventType"] = "accept_all" if event["eventType"] != "accept_all" else "reject_all"
    lines[2] = json.dumps(event)
    edited = tmp_path / "edited.jsonl"
    edited.write_text("\n".join(lines) + "\n")
    report = verify_file(edited)
    assert not report.ok
    assert "altered" in report.sites[0].result.reason


def outcome(read, value):
    """What reading `value` gives, as something comparable: the value's repr (types included), or the error."""
    try:
        result = read(value)
    except (ValueError, RecordError) as exc:
        return type(exc), str(exc)
    return repr(vars(result)) if isinstance(result, SimpleNamespace) else repr(result)


TIMES = st.datetimes(min_value=datetime(1, 1, 1), timezones=st.just(UTC))
TIME_LIKE = st.one_of(
    TIMES.map(chain.format_time),
    st.from_regex(r"[0-9]{1,5}-[0-9]{1,3}-[0-9]{1,3}T[0-9]{1,2}:[0-9]{2}:[0-9]{1,2}\.[0-9]{1,7}Z?", fullmatch=True),
    st.text(max_size=30),
)


def strptime_reading(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


@settings(max_examples=2000, deadline=None)
@given(TIME_LIKE)
def test_parse_time_reads_what_strptime_reads(text):
    assert outcome(parse_time, text) == outcome(strptime_reading, text)


def test_parse_time_takes_the_fast_path_for_canonical_times():
    assert CANONICAL_TIME.fullmatch("2026-01-31T12:00:00.000000Z")
    assert parse_time("2026-01-31T12:00:00.000001Z") == datetime(2026, 1, 31, 12, 0, 0, 1, tzinfo=UTC)
    assert parse_time("2026-1-31T12:00:00.5Z") == datetime(2026, 1, 31, 12, 0, 0, 500000, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_time("2026-02-30T12:00:00.000000Z")


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8), TIME_LIKE)
FIELD_VALUES = st.one_of(
    SCALARS, st.dictionaries(st.text(max_size=4), SCALARS, max_size=3), st.lists(SCALARS, max_size=3)
)


@st.composite
def records(draw) -> dict:
    """Records as an export holds them, each field of its own kind or, now and then, of another or missing."""
    sample = {
        "decisions": {"analytics": "granted"},
        "user_agent": {"browser": "Firefox"},
        "gpc": False,
        "received_at": "2026-01-31T12:00:00.000000Z",
        "expires_at": None,
    }
    record = {"entry": "event"}
    for field in FIELDS:
        if draw(st.integers(0, 49)) == 0:
            continue
        typical = sample.get(field.name, 7 if field.kind.value == "integer" else "text")
        record[field.name] = draw(st.one_of(st.none(), FIELD_VALUES)) if draw(st.integers(0, 19)) == 0 else typical
    return record


@settings(max_examples=2000, deadline=None)
@given(records())
def test_read_event_reads_what_the_field_by_field_reading_reads(record):
    assert outcome(read_event, record) == outcome(_read_event_field_by_field, record)


JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**80), 2**80),
        st.floats(),
        st.text(st.characters(codec=None, exclude_categories=()), max_size=8),
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=2000, deadline=None)
@given(JSON_VALUES, st.booleans())
def test_json_line_reads_what_json_reads(value, ascii_only):
    line = json.dumps({"entry": "event", "value": value}, ensure_ascii=ascii_only) + "\n"
    assert outcome(json_line, line) == outcome(json.loads, line)


@settings(max_examples=1000, deadline=None)
@given(st.text(st.sampled_from('{}[]":,0123456789-+.eE \\uNaIfity'), max_size=24))
def test_json_line_refuses_what_json_refuses(line):
    assert outcome(json_line, line) == outcome(json.loads, line)


def test_json_line_reads_large_integers_and_floats_as_json_does():
    for line in ('{"seq": 123456789012345678901234567890}', '{"seq": -9223372036854775809}', '{"a": 1e400}'):
        assert repr(json_line(line)) == repr(json.loads(line))
    assert type(json_line('{"seq": 18446744073709551615}')["seq"]) is int


def test_on_sqlite_the_sequencer_keeps_statistics_so_an_export_reads_the_log_without_sorting_it(site, logged):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's autovacuum keeps its statistics")
    query = export._where(sa.select(export.EVENTS), selection([site])).order_by(export.EVENTS.c.id)
    compiled = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))

    plan = " / ".join(row[-1] for row in db.session.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}")))

    # Six events integrated: the tree doubled on its way, and each doubling refreshed the statistics.
    assert db.session.scalar(sa.text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'consent_events'")) > 0
    assert "TEMP B-TREE" not in plan, plan
