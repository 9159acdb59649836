"""`cmp filter-events`: the analytics pipeline's gate, fed JSON lines the way a pipeline would pipe them."""

from __future__ import annotations

import json

import pytest

from cmp.extensions import db
from cmp.services import keys, notices, sites
from cmp.services import lookup as lookup_service
from tests.helpers import post_consent

CONSENTS = "/api/v1/sites/shop/consents"


@pytest.fixture
def record(client, site):
    """Record a decision set server-side (scope consent:write), as an account sign-up would."""
    token = keys.create_key("writer", ["consent:write"]).token
    db.session.commit()

    def record(subject: str, **body):
        response = client.post(
            CONSENTS, json={"subject": subject, **body}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 201, response.json

    return record


def event(subject, page="/", **more) -> str:
    return json.dumps({"event": "page_view", "subject": subject, "page": page, **more})


def gate(runner, lines: list[str], *options: str, purpose="analytics"):
    result = runner.invoke(
        args=["filter-events", "--site", "shop", "--purpose", purpose, *options],
        input="".join(f"{line}\n" for line in lines),
    )
    return result


def kept(result) -> list[str]:
    return result.stdout.splitlines()


def test_only_events_with_a_grant_pass_unchanged_and_in_order(runner, client, record):
    granted = post_consent(client, action="accept_all").json["visitor_id"]
    refused = post_consent(client, action="reject_all").json["visitor_id"]
    withdrawn = post_consent(client, action="accept_all").json["visitor_id"]
    post_consent(client, action="withdraw", visitor_id=withdrawn)
    record("user:42", decisions={"analytics": "granted"})
    record("user:43", decisions={"analytics": "denied"})
    lines = [
        event(f"visitor:{granted}", "/a"),
        event("user:43", "/b"),
        event(f"visitor:{refused}", "/c"),
        '{"subject":"user:42",  "page": "/d", "odd spacing": true}',
        event(f"visitor:{withdrawn}", "/e"),
        event("user:7", "/f"),
        event(f"visitor:{granted}", "/g", duration_ms=1200),
    ]
    result = gate(runner, lines)
    assert result.exit_code == 0, result.output
    assert kept(result) == [lines[0], lines[3], lines[6]]
    assert result.stderr.strip() == ("filter-events: read 7, kept 3, dropped 4 (denied 2, no_record 1, withdrawn 1)")


def test_one_lookup_per_batch(runner, client, record, monkeypatch):
    for n in range(0, 7, 2):
        record(f"user:{n}", decisions={"analytics": "granted"})
    batches: list[list[str]] = []
    real_lookup = lookup_service.lookup

    def counting(site, subjects, purposes, **options):
        batches.append(list(subjects))
        return real_lookup(site, subjects, purposes, **options)

    monkeypatch.setattr(lookup_service, "lookup", counting)
    lines = [event(f"user:{n}", f"/{n}") for n in range(7)]
    result = gate(runner, lines, "--batch", "2")
    assert result.exit_code == 0, result.output
    assert batches == [["user:0", "user:1"], ["user:2", "user:3"], ["user:4", "user:5"], ["user:6"]]
    assert kept(result) == [lines[0], lines[2], lines[4], lines[6]]
    assert "read 7, kept 4, dropped 3 (no_record 3)" in result.stderr


def test_a_subject_repeated_in_a_batch_is_asked_about_once(runner, record, monkeypatch):
    record("user:1", decisions={"analytics": "granted"})
    asked: list[list[str]] = []
    real_lookup = lookup_service.lookup
    monkeypatch.setattr(
        lookup_service,
        "lookup",
        lambda site, subjects, *a, **k: asked.append(subjects) or real_lookup(site, subjects, *a, **k),
    )
    lines = [event("user:1", f"/{n}") for n in range(5)]
    result = gate(runner, lines)
    assert asked == [["user:1"]]
    assert kept(result) == lines


def test_malformed_lines_are_dropped_and_counted(runner, record):
    record("user:1", decisions={"analytics": "granted"})
    lines = [
        "not json",
        event("user:1", "/kept-1"),
        "[1, 2, 3]",
        json.dumps({"page": "/no-subject"}),
        event(None),
        event(""),
        event(42),
        event("phone:123"),
        event("visitor:forged-and-unsigned"),
        "",
        '{"subject": "user:1", "page": "/kept-2"}',
    ]
    result = gate(runner, lines)
    assert result.exit_code == 0, result.output
    assert kept(result) == [lines[1], lines[10]]
    assert result.stderr.strip() == (
        "filter-events: read 11, kept 2, dropped 9 (invalid_json 3, no_subject 3, unreadable_subject 3)"
    )


def test_another_subject_field_and_purpose(runner, record):
    record("user:1", decisions={"analytics": "denied", "preferences": "granted"})
    lines = [json.dumps({"uid": "user:1", "theme": "dark"}), json.dumps({"subject": "user:1"})]
    result = gate(runner, lines, "--subject-field", "uid", purpose="preferences")
    assert kept(result) == [lines[0]]
    assert "dropped 1 (no_subject 1)" in result.stderr


def test_a_material_notice_change_stops_older_grants(runner, client, site):
    visitor = post_consent(client, action="accept_all").json["visitor_id"]
    line = event(f"visitor:{visitor}")
    assert kept(gate(runner, [line])) == [line]
    sites.add_cookie(site, "_gat", purpose="analytics", provider="Google", storage="persistent", lifetime_seconds=60)
    notices.publish_notice(site, material=True)
    db.session.commit()
    result = gate(runner, [line])
    assert kept(result) == []
    assert "notice_changed 1" in result.stderr


def test_bytes_pass_through_untouched(runner, record):
    record("user:1", decisions={"analytics": "granted"})
    line = '{"subject": "user:1", "title": "Überblick \\u00e9t\\u00e9", "city": "北京"}'
    result = runner.invoke(
        args=["filter-events", "--site", "shop", "--purpose", "analytics"], input=line.encode() + b"\r\n"
    )
    assert result.stdout_bytes == line.encode() + b"\r\n"


def test_an_empty_input_is_fine(runner, site):
    result = gate(runner, [])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr.strip() == "filter-events: read 0, kept 0, dropped 0"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--site", "nowhere", "--purpose", "analytics"], "no site 'nowhere'"),
        (["--site", "shop", "--purpose", "telemetry"], "has no purpose 'telemetry'"),
        (["--site", "shop", "--purpose", "analytics", "--batch", "0"], "--batch"),
        (["--site", "shop", "--purpose", "analytics", "--batch", "10001"], "--batch"),
    ],
)
def test_bad_options_are_usage_errors(runner, site, options, message):
    result = runner.invoke(args=["filter-events", *options], input=event("user:1"))
    assert result.exit_code == 2
    assert message in result.output
    assert result.stdout.count("\n") == 0 or "Usage" in result.stdout
