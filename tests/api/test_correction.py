"""Correction of an identifier (GDPR Art. 16): the same subject under a new identifier, its history and state kept,
the old identifier naming no one, two histories never merged, no identifier ever stored or logged."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from cmp.extensions import db
from cmp.models import SubjectIdentifier
from cmp.services import chain, notices, sites
from tests.api.test_rights import access, assert_error, erase, lookup
from tests.conftest import running_app
from tests.helpers import bearer, counts, events
from tests.test_erasure_races import SubjectGate, assert_erased_for_good, in_thread, run_together
from tests.test_log_privacy import captured_logs

OLD = "ada.lovelace@example.org"
NEW = "ada.king@example.org"


def correct(client, dsr, subject: str, identifier: str, site_key: str = "shop"):
    return client.post(
        f"/api/v1/subjects/{subject}/correct", json={"site": site_key, "identifier": identifier}, headers=dsr
    )


def links() -> list[tuple[str, str, str]]:
    """Every identifier link: (subject id, kind, digest), sorted."""
    rows = db.session.execute(sa.select(SubjectIdentifier.subject_id, SubjectIdentifier.kind, SubjectIdentifier.digest))
    return sorted(tuple(row) for row in rows)


@pytest.fixture
def person(client, site, writer) -> dict:
    """user:42 with their email linked, who granted analytics and refused preferences; their ids."""
    linked = client.post("/api/v1/sites/shop/links", json={"subjects": ["user:42", f"email:{OLD}"]}, headers=writer)
    assert linked.status_code == 200, linked.json
    decided = client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": f"email:{OLD}", "decisions": {"analytics": "granted", "preferences": "denied"}},
        headers=writer,
    )
    assert decided.status_code == 201, decided.json
    db.session.remove()
    return {"subject_id": linked.json["subject_id"], "event_id": decided.json["event_id"]}


def test_a_changed_email_keeps_the_subject_its_history_and_its_state(client, runner, site, dsr, reader, person):
    before = access(client, dsr, f"email:{OLD}").json

    response = correct(client, dsr, f"email:{OLD}", f"email:{NEW}")

    assert response.status_code == 200, response.json
    assert response.headers["Cache-Control"] == "no-store"
    *earlier, event = events()
    assert response.json == {
        "subject_id": person["subject_id"],
        "event_id": event.id,
        "received_at": event.received_at.isoformat(),
    }
    assert (event.action, event.source, event.decisions, event.subject_id) == (
        "correct",
        "api",
        {},
        person["subject_id"],
    )
    assert [e.id for e in earlier] == [e["id"] for e in before["events"]]
    # The old identifier names no one: lookups answer no_record, rights requests 404.
    old = lookup(client, reader, f"email:{OLD}", "analytics")
    assert (old["allowed"], old["reason"]) == (False, "no_record")
    assert_error(access(client, dsr, f"email:{OLD}"), 404, "unknown_subject")
    # The new one answers the subject's own state and history, as do its other identifiers.
    new = lookup(client, reader, f"email:{NEW}", "analytics")
    assert (new["allowed"], new["reason"], new["event_id"]) == (True, "granted", person["event_id"])
    assert lookup(client, reader, f"email:{NEW}", "preferences")["reason"] == "denied"
    after = access(client, dsr, f"email:{NEW}").json
    assert after["subject_id"] == person["subject_id"]
    assert after["state"] == before["state"]
    assert after["events"][:-1] == before["events"] and after["events"][-1]["action"] == "correct"
    assert sorted(i["kind"] for i in after["identifiers"]) == ["email", "user"]
    assert access(client, dsr, "user:42").json["subject_id"] == person["subject_id"]
    assert chain.verify_site(site).ok
    assert runner.invoke(args=["verify"]).exit_code == 0


def test_neither_identifier_is_stored_in_the_log_or_the_answer(client, site, dsr, person):
    response = correct(client, dsr, f"email:{OLD}", f"email:{NEW}")
    assert response.status_code == 200, response.json

    event = events()[-1]
    stored = json.dumps(chain.event_payload(event, "shop")) + json.dumps([list(link) for link in links()])
    for text in (stored, response.get_data(as_text=True), json.dumps(access(client, dsr, "user:42").json)):
        assert "lovelace" not in text and "king" not in text


def test_the_request_log_names_neither_identifier(database_url):
    with captured_logs() as log_lines, running_app(database_url, CMP_LOG_LEVEL="DEBUG") as app:
        notices.publish_notice(sites.create_site("shop", "Shop"))
        db.session.commit()
        writer, dsr = bearer("consent:write"), bearer("dsr")
        client = app.test_client()
        recorded = client.post(
            "/api/v1/sites/shop/consents", json={"subject": f"email:{OLD}", "action": "accept_all"}, headers=writer
        )
        assert recorded.status_code == 201, recorded.json

        assert correct(client, dsr, f"email:{OLD}", f"email:{NEW}").status_code == 200
        assert correct(client, dsr, f"email:{OLD}", f"email:{NEW}").status_code == 404
        assert correct(client, dsr, f"email:{NEW}", "email:not-an-address").status_code == 422

    text = "\n".join(log_lines)
    assert '"message": "request"' in text
    assert "lovelace" not in text and "king" not in text and "not-an-address" not in text


def test_an_identifier_of_another_subject_is_409_and_nothing_changes(client, site, dsr, reader, writer, person):
    other = client.post(
        "/api/v1/sites/shop/consents", json={"subject": f"email:{NEW}", "action": "reject_all"}, headers=writer
    )
    assert other.status_code == 201, other.json
    before = (counts(), links())

    response = correct(client, dsr, f"email:{OLD}", f"email:{NEW}")

    assert_error(response, 409, "identifiers_conflict")
    assert response.json["error"]["details"] == {"kinds": ["email"]}
    assert (counts(), links()) == before
    # Each history stays with its own subject.
    assert lookup(client, reader, f"email:{OLD}", "analytics")["reason"] == "granted"
    assert lookup(client, reader, f"email:{NEW}", "analytics")["reason"] == "denied"
    assert access(client, dsr, f"email:{NEW}").json["subject_id"] == other.json["subject_id"]


def test_an_identifier_the_subject_already_has_just_drops_the_old_one(client, site, dsr, reader, writer, person):
    linked = client.post("/api/v1/sites/shop/links", json={"subjects": ["user:42", f"email:{NEW}"]}, headers=writer)
    assert linked.json["subject_id"] == person["subject_id"]
    assert len(links()) == 3

    response = correct(client, dsr, f"email:{OLD}", f"email:{NEW}")

    assert response.status_code == 200, response.json
    assert events()[-1].action == "correct" and response.json["event_id"] == events()[-1].id
    db.session.expire_all()
    assert [(subject, kind) for subject, kind, _ in links()] == [
        (person["subject_id"], "email"),
        (person["subject_id"], "user"),
    ]
    assert lookup(client, reader, f"email:{OLD}", "analytics")["reason"] == "no_record"
    assert lookup(client, reader, f"email:{NEW}", "analytics")["reason"] == "granted"


def test_a_merged_account_takes_the_new_user_id(client, site, dsr, reader, person):
    response = correct(client, dsr, "user:42", "user:tenants/eu/42")
    assert response.status_code == 200, response.json
    assert lookup(client, reader, "user:42", "analytics")["reason"] == "no_record"
    assert lookup(client, reader, "user:tenants/eu/42", "analytics")["reason"] == "granted"
    assert access(client, dsr, "user:tenants%2Feu%2F42").json["subject_id"] == person["subject_id"]


@pytest.mark.parametrize(
    "identifier",
    [f"email:{OLD}", f"email:{OLD.upper()}", f"email:  {OLD}"],
    ids=["same", "same-address-other-case", "same-address-spaces"],
)
def test_correcting_to_the_same_identifier_is_422_and_changes_nothing(client, site, dsr, person, identifier):
    before = (counts(), links())
    response = correct(client, dsr, f"email:{OLD}", identifier)
    assert_error(response, 422, "identifier_unchanged")
    assert (counts(), links()) == before


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"site": "shop"}, 422, "invalid", "identifier"),
        ({"site": "shop", "identifier": "phone:123"}, 422, "invalid", "identifier"),
        ({"site": "shop", "identifier": 42}, 422, "invalid", "identifier"),
        ({"site": "shop", "identifier": "email:not-an-address"}, 422, "invalid_subject", None),
        ({"site": "shop", "identifier": "visitor:abcdefghijklmnopqrstuv"}, 422, "invalid_subject", None),
        ({"identifier": f"email:{NEW}"}, 422, "invalid", "site"),
        ({"site": "nope", "identifier": f"email:{NEW}"}, 404, "unknown_site", None),
    ],
    ids=["no-identifier", "bad-kind", "not-a-string", "bad-email", "unsigned-visitor", "no-site", "unknown-site"],
)
def test_bad_corrections_are_refused_and_change_nothing(client, site, dsr, person, body, status, code, field):
    before = (counts(), links())
    response = client.post(f"/api/v1/subjects/email:{OLD}/correct", json=body, headers=dsr)
    assert_error(response, status, code)
    if field:
        assert field in response.json["error"]["details"]["fields"]
    elif code == "invalid_subject":
        assert response.json["error"]["details"] == {"identifier": "invalid"}
        assert "not-an-address" not in response.get_data(as_text=True)
    assert (counts(), links()) == before


@pytest.mark.parametrize(
    ("send", "status", "code"),
    [
        (lambda c, url, h: c.post(url, data="site=shop", headers=h), 415, "unsupported_media_type"),
        (lambda c, url, h: c.post(url, data="{", content_type="application/json", headers=h), 400, "malformed_json"),
        (lambda c, url, h: c.post(url, json={"identifier": "phone:1"}), 401, "missing_api_key"),
    ],
    ids=["form", "malformed", "no-key"],
)
def test_the_body_and_the_key_are_checked_before_the_fields(client, site, dsr, person, send, status, code):
    before = (counts(), links())
    assert_error(send(client, f"/api/v1/subjects/email:{OLD}/correct", dsr), status, code)
    assert (counts(), links()) == before


def test_correcting_an_unknown_identifier_is_404_and_changes_nothing(client, site, dsr, person):
    before = (counts(), links())
    response = correct(client, dsr, "email:nobody@example.org", f"email:{NEW}")
    assert_error(response, 404, "unknown_subject")
    assert "nobody" not in response.get_data(as_text=True)
    assert (counts(), links()) == before


def test_a_corrected_subject_can_be_erased_by_its_new_identifier(client, site, dsr, reader, person):
    assert correct(client, dsr, f"email:{OLD}", f"email:{NEW}").status_code == 200
    erased = erase(client, dsr, f"email:{NEW}")
    assert erased.status_code == 200, erased.json
    assert erased.json["removed"]["identifiers"] == 2
    assert_erased_for_good(person["subject_id"])


# --- corrections racing each other and erasure ---------------------------------------------------------------


def test_of_two_corrections_of_one_identifier_the_second_finds_it_gone(app, client, site, dsr, person, monkeypatch):
    gate = SubjectGate(monkeypatch)
    held_request = gate.hold(lambda: correct(app.test_client(), dsr, f"email:{OLD}", "email:other@example.org"))
    with in_thread(held_request) as held:
        gate.wait_for(1)  # it found the subject by the old identifier, and waits to take the lock
        assert correct(client, dsr, f"email:{OLD}", f"email:{NEW}").status_code == 200
        gate.open()

    assert_error(held[0], 404, "unknown_subject")
    db.session.expire_all()
    assert [e.action for e in events()].count("correct") == 1
    assert [kind for subject, kind, _ in links() if subject == person["subject_id"]] == ["email", "user"]
    assert access(client, dsr, f"email:{NEW}").json["subject_id"] == person["subject_id"]
    assert access(client, dsr, "email:other@example.org").status_code == 404


def test_a_correction_held_while_its_subject_is_erased_resurrects_nothing(app, client, site, dsr, person, monkeypatch):
    gate = SubjectGate(monkeypatch)
    with in_thread(gate.hold(lambda: correct(app.test_client(), dsr, f"email:{OLD}", f"email:{NEW}"))) as held:
        gate.wait_for(1)
        assert erase(client, dsr, "user:42").status_code == 200
        gate.open()

    assert_error(held[0], 404, "unknown_subject")
    assert_erased_for_good(person["subject_id"])
    assert access(client, dsr, f"email:{NEW}").status_code == 404


def test_an_erasure_held_while_its_subject_is_corrected_still_erases_the_new_link(
    app, client, site, dsr, reader, person, monkeypatch
):
    gate = SubjectGate(monkeypatch)
    with in_thread(gate.hold(lambda: erase(app.test_client(), dsr, f"email:{OLD}"))) as held:
        gate.wait_for(1)  # it found the subject by the old identifier, before the correction
        assert correct(client, dsr, f"email:{OLD}", f"email:{NEW}").status_code == 200
        gate.open()

    assert held[0].status_code == 200, held[0].json
    assert held[0].json["removed"]["identifiers"] == 2
    assert_erased_for_good(person["subject_id"])
    assert lookup(client, reader, f"email:{NEW}", "analytics")["reason"] == "no_record"


def test_corrections_erasures_and_consents_at_once_keep_every_promise(app, site, dsr, writer, person):
    """Free-running: whatever the order, one subject, its links whole or erased, nothing after the erasure."""
    db.session.remove()
    fresh = app.test_client
    responses = run_together(
        lambda: correct(fresh(), dsr, f"email:{OLD}", f"email:{NEW}"),
        lambda: correct(fresh(), dsr, f"email:{OLD}", "email:other@example.org"),
        lambda: erase(fresh(), dsr, "user:42"),
        *[
            lambda: fresh().post(
                "/api/v1/sites/shop/consents", json={"subject": "user:42", "action": "accept_all"}, headers=writer
            )
            for _ in range(3)
        ],
    )
    first, second, erased, *consents = responses
    assert erased.status_code == 200, erased.json
    assert sorted([first.status_code, second.status_code]) in ([200, 404], [404, 404])
    assert [r.status_code for r in consents] == [201] * 3
    assert_erased_for_good(person["subject_id"])
    corrections = [e for e in events() if e.action == "correct"]
    assert len(corrections) == [first.status_code, second.status_code].count(200)
    # Nothing of the erased subject is reachable under either new identifier.
    for identifier in (f"email:{NEW}", "email:other@example.org"):
        assert_error(access(fresh(), dsr, identifier), 404, "unknown_subject")
