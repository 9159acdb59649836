"""The auditor's routes: a streamed export with the right headers, filters checked first, sites enforced, verify."""

from __future__ import annotations

import csv
import io
import json

import pytest
import sqlalchemy as sa

from cmp.extensions import db
from cmp.models import ConsentEvent
from cmp.services import notices, sites
from cmp.services.export_fields import NAMES
from cmp.services.export_verify import verify_file
from tests.helpers import bearer, events, post_consent, tree_root

EVENTS_URL = "/api/v1/audit/events"
EVENTS = ConsentEvent.__table__


@pytest.fixture
def logged(client, site):
    for action in ("accept_all", "reject_all", "accept_all"):
        assert post_consent(client, action=action, page_url="https://shop.example/p").status_code == 201
    headers = bearer("consent:write")
    body = {"subject": "email:Ada@Example.org", "action": "accept_all"}
    assert client.post("/api/v1/sites/shop/consents", json=body, headers=headers).status_code == 201
    db.session.expire_all()
    return events()


@pytest.fixture
def auditor():
    return bearer("audit:read")


def lines(response) -> list[dict]:
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def test_export_streams_json_lines_with_download_headers(client, site, logged, auditor):
    response = client.get(EVENTS_URL, query_string={"site": "shop"}, headers=auditor)
    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    assert response.headers["Cache-Control"] == "no-store"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="cmp-events-shop-') and disposition.endswith('.jsonl"')
    entries = lines(response)
    assert [e["entry"] for e in entries] == ["export", "event", "event", "event", "event", "end"]
    assert [e["id"] for e in entries[1:-1]] == sorted(e.id for e in logged)
    assert [e["hash"] for e in sorted(entries[1:-1], key=lambda e: e["seq"])] == [e.hash for e in logged]


def test_export_as_csv_verifies_offline(tmp_path, client, site, logged, auditor):
    response = client.get(EVENTS_URL, query_string={"site": "shop", "format": "csv"}, headers=auditor)
    assert response.status_code == 200
    assert response.mimetype == "text/csv" and response.headers["Content-Disposition"].endswith('.csv"')
    text = response.get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["entry", *NAMES, "meta"]
    assert len(rows) == 1 + 1 + len(logged) + 1
    path = tmp_path / "export.csv"
    path.write_text(text, encoding="utf-8", newline="")
    report = verify_file(path)
    assert report.ok and report.sites[0].result.checked == 4


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"subject": "email:ada@example.org"}, [3]),
        ({"subject": "email:ADA@example.org"}, [3]),  # addresses are compared normalised
        ({"subject": "user:nobody"}, []),
        ({"purpose": "marketing_email"}, []),
        ({"purpose": "analytics"}, [0, 1, 2, 3]),
    ],
)
def test_export_filters(client, site, logged, auditor, query, expected):
    response = client.get(EVENTS_URL, query_string={"site": "shop", **query}, headers=auditor)
    assert response.status_code == 200
    entries = lines(response)
    by_id = sorted(logged, key=lambda e: e.id)
    assert [e["id"] for e in entries[1:-1]] == [by_id[i].id for i in expected]
    assert entries[0]["meta"]["complete"] is False


def test_export_by_time_range(client, site, logged, auditor):
    start = logged[1].received_at.isoformat()
    end = logged[3].received_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    response = client.get(EVENTS_URL, query_string={"site": "shop", "from": start, "to": end}, headers=auditor)
    assert [e["seq"] for e in lines(response)[1:-1]] == [2, 3]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01T00:00:00Z"}, "to"),
        ({"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to"),
        ({"subject": "phone:123"}, "subject"),
        ({"purpose": "Not A Purpose"}, "purpose"),
        ({"format": "xml"}, "format"),
        ({"site": "Bad Key!"}, "site"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_filters_are_422_before_anything_streams(client, site, logged, auditor, query, field):
    response = client.get(EVENTS_URL, query_string={"site": "shop", **query}, headers=auditor)
    assert response.status_code == 422
    assert response.mimetype == "application/json"
    assert response.json["error"]["code"] == "invalid"
    assert field in response.json["error"]["details"]["fields"]


def test_unreadable_visitor_id_is_422(client, site, logged, auditor):
    response = client.get(EVENTS_URL, query_string={"site": "shop", "subject": "visitor:forged"}, headers=auditor)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "invalid_subject"


def test_unknown_site_is_404(client, site, auditor):
    response = client.get(EVENTS_URL, query_string={"site": "nope"}, headers=auditor)
    assert response.status_code == 404


def test_a_bound_key_sees_only_its_sites(client, site, logged):
    other = sites.create_site("blog", "Blog", origins=["https://shop.example"])
    notices.publish_notice(other)
    db.session.commit()
    assert post_consent(client, "blog", action="accept_all").status_code == 201
    bound = bearer("audit:read", bound_to=["blog"])
    everything = lines(client.get(EVENTS_URL, headers=bound))
    assert {e["site"] for e in everything[1:-1]} == {"blog"}
    assert everything[0]["meta"]["filters"]["sites"] == ["blog"]
    refused = client.get(EVENTS_URL, query_string={"site": ["blog", "shop"]}, headers=bound)
    assert refused.status_code == 403 and refused.json["error"]["code"] == "site_not_allowed"
    unbound = lines(client.get(EVENTS_URL, query_string={"site": ["shop", "blog"]}, headers=bearer("audit:read")))
    assert {e["site"] for e in unbound[1:-1]} == {"shop", "blog"}


def test_notices_export(tmp_path, client, site, logged, auditor):
    response = client.get("/api/v1/audit/notices", query_string={"site": "shop"}, headers=auditor)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    [notice] = lines(response)
    assert notice["version"] == 1 and notice["site"] == "shop"
    assert set(notice) == {"site", "version", "published_at", "material", "note", "content", "content_hash"}
    assert notice["content_hash"] == logged[0].notice_hash
    notices_path = tmp_path / "notices.jsonl"
    notices_path.write_bytes(response.data)
    export_path = tmp_path / "events.jsonl"
    export_path.write_bytes(client.get(EVENTS_URL, query_string={"site": "shop"}, headers=auditor).data)
    assert verify_file(export_path, notices_path).ok
    as_csv = client.get("/api/v1/audit/notices", query_string={"site": "shop", "format": "csv"}, headers=auditor)
    assert as_csv.mimetype == "text/csv"
    csv_path = tmp_path / "notices.csv"
    csv_path.write_text(as_csv.get_data(as_text=True), encoding="utf-8", newline="")
    assert verify_file(export_path, csv_path).ok


def test_verify_reports_an_intact_chain(client, site, logged, auditor):
    response = client.get("/api/v1/audit/verify", query_string={"site": "shop"}, headers=auditor)
    assert response.status_code == 200
    assert response.json == {
        "site": "shop",
        "ok": True,
        "checked": 4,
        "first_bad": None,
        "first_bad_seq": None,
        "reason": None,
        "head_hash": tree_root([e.hash for e in logged]),
        "checkpoint": {"seq": 0, "hash": "0" * 64},
    }


def test_verify_names_the_first_bad_event(client, site, logged, auditor):
    db.session.execute(sa.update(EVENTS).where(EVENTS.c.id == logged[1].id).values(country="ZZ"))
    db.session.commit()
    response = client.get("/api/v1/audit/verify", query_string={"site": "shop"}, headers=auditor)
    assert response.json["ok"] is False
    assert response.json["first_bad"] == logged[1].id and response.json["first_bad_seq"] == 2
    assert "altered" in response.json["reason"]


def test_verify_needs_a_site(client, site, auditor):
    response = client.get("/api/v1/audit/verify", headers=auditor)
    assert response.status_code == 422
