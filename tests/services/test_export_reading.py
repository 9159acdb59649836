"""Offline verification reads an export once: the framing and every site's log are checked in one pass.

The one pass only ever accepts. A site whose log it cannot accept is walked again on its own (the plain walk),
which names the fault; a fault of the framing anywhere in the file is reported before any fault of a log. So for
any file, tampered with or not, the report is the one the plain walk gives: these tests hold the two side by side.
"""

from __future__ import annotations

import copy
import json
from unittest import mock

import pytest
from flask import current_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmp.extensions import db
from cmp.services import chain, export, export_verify, notices, sites
from cmp.services.export_fields import FIELDS, RecordError, from_cell
from tests.helpers import post_consent

FORMATS = ("jsonl", "csv")


@pytest.fixture
def exported(client, site):
    """A complete export of two sites, entries as written: shop's five events and blog's three, in id order."""
    blog = sites.create_site("blog", "Blog", origins=["https://shop.example"])
    notices.publish_notice(blog)
    db.session.commit()
    for site_key, action in [("shop", "accept_all"), ("blog", "reject_all"), ("shop", "reject_all")] * 2:
        assert post_consent(client, site_key, action=action, page_url="https://shop.example/p").status_code == 201
    assert post_consent(client, "blog", action="withdraw").status_code == 201
    selection = export.select_events(
        sites.list_sites(),
        hmac_key=current_app.config["CMP_HMAC_KEY"],
        visitor_ids=current_app.extensions["cmp.visitor_ids"],
    )
    found = list(export.export_entries(selection, batch=2))
    assert [e["site"] for e in found if e["entry"] == "event"].count("blog") == 3
    return found


def write(tmp_path, found: list[dict], fmt: str):
    path = tmp_path / f"export.{fmt}"
    path.write_text("".join(export.render(found, fmt)), encoding="utf-8", newline="")
    return path


def plainly(path, **options) -> export_verify.FileReport:
    """The report of the plain walk alone: every site's log read again from the file, as before the one pass."""
    with mock.patch.object(export_verify._SiteCheck, "report", lambda check, end: None):
        return export_verify.verify_file(path, **options)


def reads(path) -> tuple[export_verify.FileReport, int]:
    """The report, and how many times the file was read to make it."""
    with mock.patch.object(export_verify, "_entries", wraps=export_verify._entries) as entries:
        report = export_verify.verify_file(path)
    return report, entries.call_count


def events_of(found: list[dict]) -> list[dict]:
    return [entry for entry in found if entry["entry"] == "event"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_good_export_is_read_once_and_reported_as_the_plain_walk_reports_it(tmp_path, exported, fmt):
    path = write(tmp_path, exported, fmt)
    report, times = reads(path)
    assert report.ok and times == 1
    assert {(s.site, s.result.checked) for s in report.sites} == {("shop", 4), ("blog", 3)}
    assert report == plainly(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_site_whose_log_fails_is_read_again_to_name_its_fault(tmp_path, exported, fmt):
    events_of(exported)[1]["action"] = "accept_all"  # blog's first event
    path = write(tmp_path, exported, fmt)
    report, times = reads(path)
    shop, blog = sorted(report.sites, key=lambda s: s.site != "shop")  # CSV states the sites in key order
    assert shop.result.ok and times == 2  # the one pass, then blog's plain walk
    assert not blog.result.ok and blog.result.first_bad == events_of(exported)[1]["id"]
    assert blog.result.reason == "hash does not match the event's content (the event was altered)"
    assert report == plainly(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_framing_fault_late_in_the_file_comes_before_a_log_fault_early_in_it(tmp_path, exported, fmt):
    events_of(exported)[0]["action"] = "withdraw"
    exported[-2]["v"] = 9  # the last event's hash version
    report = export_verify.verify_file(write(tmp_path, exported, fmt))
    [whole] = report.sites
    assert (whole.site, whole.result.reason) == ("file", "hash version 9 is not one this version can check")
    assert report == plainly(write(tmp_path, exported, fmt))


def edited(found: list[dict], index: int, **changes) -> list[dict]:
    found = copy.deepcopy(found)
    found[index].update(changes)
    return found


def without(found: list[dict], index: int) -> list[dict]:
    return found[:index] + found[index + 1 :]


def swapped(found: list[dict], one: int, other: int) -> list[dict]:
    found = list(found)
    found[one], found[other] = found[other], found[one]
    return found


def end_edited(found: list[dict], site_key: str, **changes) -> list[dict]:
    found = copy.deepcopy(found)
    found[-1]["meta"]["sites"][site_key].update(changes)
    return found


# Each tampering the export tests name, on a file of two sites, with the verdict the plain walk gives.
TAMPERINGS = {
    "an edited field": lambda f: edited(f, 3, decisions={"necessary": "granted"}),
    "edited evidence": lambda f: edited(f, 1, page_url="https://elsewhere.example/"),
    "a deleted event": lambda f: without(f, 3),
    "the last event deleted": lambda f: without(f, len(f) - 2),
    "the end cut": lambda f: f[:-1],
    "two lines swapped": lambda f: swapped(f, 1, 3),
    "two places swapped": lambda f: edited(edited(f, 1, seq=2), 3, seq=1),
    "a place past the head": lambda f: edited(f, len(f) - 2, seq=9),
    "a head moved back": lambda f: end_edited(f, "blog", last_seq=2),
    "a head moved on": lambda f: end_edited(f, "shop", last_seq=5),
    "a head that is not a number": lambda f: end_edited(f, "shop", last_seq="4"),
    "a count changed": lambda f: end_edited(f, "shop", events=5),
    "an event repeated": lambda f: [*f[:4], {**f[3], "id": f[3]["id"] + "0"}, *f[4:]],
    "a seq missing": lambda f: edited(f, 2, seq=None),
    "an id missing": lambda f: edited(f, 1, id=None),
    "an unknown site": lambda f: edited(f, 2, site="news"),
    "a hash that is not hex": lambda f: edited(f, 4, hash="not hex"),
    "an entry after the end": lambda f: [*f, f[1]],
    "the checkpoint removed": lambda f: _manifest_edited(f, "shop", checkpoint="no note"),
    "a start that is not a number": lambda f: _manifest_edited(f, "blog", purged={"seq": "x"}),
}


def _manifest_edited(found: list[dict], site_key: str, **changes) -> list[dict]:
    found = copy.deepcopy(found)
    found[0]["meta"]["sites"][site_key].update(changes)
    return found


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_every_tampering_gets_the_plain_walks_verdict_and_message(tmp_path, exported, name, fmt):
    path = write(tmp_path, TAMPERINGS[name](exported), fmt)
    report = export_verify.verify_file(path)
    assert not report.ok
    assert report == plainly(path)


def test_a_log_later_in_the_file_than_the_reordering_window_is_walked_alike(tmp_path, exported):
    # Places out of id order by more than the window: the lowest held back is released, a gap the check names.
    with mock.patch.object(export_verify, "REORDER_WINDOW", 1):
        for found in (exported, swapped(exported, 1, 3), edited(edited(exported, 1, seq=2), 3, seq=1)):
            path = write(tmp_path, found, "jsonl")
            assert export_verify.verify_file(path) == plainly(path)


def test_a_filtered_export_is_checked_in_the_one_pass_too(tmp_path, exported):
    found = copy.deepcopy(exported)
    found[0]["meta"]["complete"] = False
    path = write(tmp_path, found, "jsonl")
    report, times = reads(path)
    assert report.ok and times == 1 and report == plainly(path)
    events_of(found)[2]["action"] = "withdraw"
    path = write(tmp_path, found, "jsonl")
    assert not export_verify.verify_file(path).ok
    assert export_verify.verify_file(path) == plainly(path)


def test_a_log_checked_in_batches_is_checked_as_one(tmp_path, exported):
    with mock.patch.object(export_verify, "CHECK_BATCH", 2):
        for found in (exported, edited(exported, 4, action="withdraw"), end_edited(exported, "shop", last_seq=3)):
            path = write(tmp_path, found, "csv")
            assert export_verify.verify_file(path) == plainly(path)


# Any few changes to a file's entries: the one pass and the plain walk report alike.

FIELD_VALUES = {
    "seq": st.one_of(st.none(), st.integers(-1, 9)),
    "id": st.one_of(st.none(), st.sampled_from(["", "01", "zz"])),
    "site": st.sampled_from(["shop", "blog", "news"]),
    "action": st.sampled_from(["accept_all", "reject_all", "withdraw"]),
    "prev_hash": st.one_of(st.none(), st.just(chain.GENESIS_HASH)),
    "hash": st.sampled_from(["", "ab", chain.GENESIS_HASH]),
    "v": st.integers(0, 3),
    "received_at": st.sampled_from(["2026-01-31T12:00:00.000000Z", "2026-1-31T12:00:00.0Z", "yesterday"]),
    "notice_version": st.one_of(st.none(), st.integers(0, 3)),
}
CHANGES = st.one_of(
    st.tuples(
        st.just("edit"),
        st.integers(0, 20),
        st.sampled_from(sorted(FIELD_VALUES)).flatmap(lambda name: st.tuples(st.just(name), FIELD_VALUES[name])),
    ),
    st.tuples(st.just("delete"), st.integers(0, 20), st.none()),
    st.tuples(st.just("repeat"), st.integers(0, 20), st.none()),
    st.tuples(st.just("swap"), st.integers(0, 20), st.integers(0, 20)),
    st.tuples(
        st.just("end"),
        st.sampled_from(["shop", "blog"]),
        st.tuples(st.sampled_from(["last_seq", "events"]), st.one_of(st.none(), st.integers(0, 6))),
    ),
)


def changed(found: list[dict], changes) -> list[dict]:
    found = copy.deepcopy(found)
    for kind, where, what in changes:
        if kind == "end":
            found[-1]["meta"]["sites"][where][what[0]] = what[1]
            continue
        index = 1 + where % (len(found) - 2) if len(found) > 2 else 0
        if kind == "edit" and found[index]["entry"] == "event":
            found[index][what[0]] = what[1]
        elif kind == "delete":
            del found[index]
        elif kind == "repeat":
            found.insert(index, copy.deepcopy(found[index]))
        elif kind == "swap":
            other = 1 + what % (len(found) - 2) if len(found) > 2 else 0
            found[index], found[other] = found[other], found[index]
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(CHANGES, min_size=1, max_size=3), fmt=st.sampled_from(FORMATS))
def test_any_changes_get_the_plain_walks_report(tmp_path, exported, changes, fmt):
    path = write(tmp_path, changed(exported, changes), fmt)
    assert export_verify.verify_file(path) == plainly(path)


# A CSV event row: its cells of text taken as they are, the others through from_cell, as from_cell reads each.

CELLS = st.one_of(
    st.sampled_from(["", "'", "''", "'=1", "true", "false", "7", "-3", "x7", "{}", '{"a":1}', "[1]", "null"]),
    st.text(max_size=6),
)


def cell_by_cell(cells: list[str], escaped: bool):
    try:
        return {spec.name: from_cell(spec, cell, escaped=escaped) for spec, cell in zip(FIELDS, cells, strict=True)}
    except RecordError as exc:
        return str(exc)


@settings(max_examples=300)
@given(cells=st.lists(CELLS, min_size=len(FIELDS), max_size=len(FIELDS)), escaped=st.booleans())
def test_a_csv_row_reads_as_from_cell_reads_each_cell(cells, escaped):
    try:
        read = export_verify._csv_event(cells, escaped)
    except RecordError as exc:
        read = str(exc)
    assert json.dumps(read, sort_keys=True) == json.dumps(cell_by_cell(cells, escaped), sort_keys=True)
