"""Restriction of processing (GDPR Art. 18): recorded, honoured by every lookup, lifted, and kept apart from
withdrawal and erasure."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cmp.extensions import db
from cmp.models import ConsentEvent, Subject
from cmp.services import chain, integrity, sites
from tests.api.test_rights import access, assert_error, erase, lookup, withdraw
from tests.helpers import counts, events
from tests.test_erasure_races import SubjectGate, assert_erased_for_good, in_thread

PURPOSES = ["preferences", "analytics", "marketing_email", "email_tracking"]


def restrict(client, dsr, subject: str = "user:42", site_key: str = "shop"):
    return client.post(f"/api/v1/subjects/{subject}/restrict", json={"site": site_key}, headers=dsr)


def unrestrict(client, dsr, subject: str = "user:42", site_key: str = "shop"):
    return client.post(f"/api/v1/subjects/{subject}/unrestrict", json={"site": site_key}, headers=dsr)


def bulk(client, reader, subjects: list[str], purposes: list[str] = PURPOSES) -> list[dict]:
    response = client.post(
        "/api/v1/consents/lookup", json={"site": "shop", "subjects": subjects, "purposes": purposes}, headers=reader
    )
    assert response.status_code == 200, response.json
    return [result["purposes"] for result in response.json["results"]]


@pytest.fixture
def person(client, site, writer) -> str:
    """user:42, who granted preferences and analytics through the site's server; their subject id."""
    granted = client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": "user:42", "decisions": {"preferences": "granted", "analytics": "granted"}},
        headers=writer,
    )
    assert granted.status_code == 201, granted.json
    return granted.json["subject_id"]


def test_a_restricted_subject_is_allowed_nothing_until_the_restriction_is_lifted(client, site, dsr, reader, person):
    assert lookup(client, reader, "user:42", "analytics")["allowed"] is True
    before = [e.id for e in events()]

    response = restrict(client, dsr)

    assert response.status_code == 200, response.json
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body["subject_id"] == person and body["restricted"] is True
    *earlier, event = events()
    assert [e.id for e in earlier] == before
    assert body["event_id"] == event.id and body["received_at"] == event.received_at.isoformat()
    assert (event.action, event.source, event.decisions, event.subject_id) == ("restrict", "api", {}, person)
    assert (event.evidence_salt, event.ip_prefix, event.user_agent, event.page_url) == (None, None, None, None)
    # Every purpose, decided or not: a lookup cannot be told apart from "no" by what was chosen.
    for purpose in PURPOSES:
        answer = lookup(client, reader, "user:42", purpose)
        assert (answer["allowed"], answer["reason"]) == (False, "restricted"), purpose
    [answers] = bulk(client, reader, ["user:42"])
    assert {p: (a["allowed"], a["reason"]) for p, a in answers.items()} == dict.fromkeys(
        PURPOSES, (False, "restricted")
    )
    record = access(client, dsr, "user:42").json
    assert record["restricted"] is True and record["child"] is False
    assert record["events"][-1]["action"] == "restrict" and record["events"][-1]["decisions"] == {}
    assert {p: s["reason"] for p, s in record["state"].items()} == {
        "preferences": "restricted",
        "analytics": "restricted",
    }
    # The decisions themselves are untouched, and count again once the restriction is lifted.
    assert {p: s["decision"] for p, s in record["state"].items()} == {"preferences": "granted", "analytics": "granted"}

    lifted = unrestrict(client, dsr)

    assert lifted.status_code == 200, lifted.json
    assert lifted.json["restricted"] is False and lifted.json["event_id"] == events()[-1].id
    assert events()[-1].action == "unrestrict"
    assert lookup(client, reader, "user:42", "analytics")["reason"] == "granted"
    assert lookup(client, reader, "user:42", "marketing_email")["reason"] == "no_record"
    assert access(client, dsr, "user:42").json["restricted"] is False
    assert chain.verify_site(site).ok


def test_a_restriction_holds_for_every_identifier_of_the_subject(client, site, dsr, reader, writer, person):
    linked = client.post(
        "/api/v1/sites/shop/links", json={"subjects": ["user:42", "email:ada@example.org"]}, headers=writer
    )
    assert linked.status_code == 200, linked.json
    assert restrict(client, dsr, "email:ada@example.org").status_code == 200
    assert lookup(client, reader, "user:42", "analytics")["reason"] == "restricted"
    # Another subject is not touched.
    other = client.post(
        "/api/v1/sites/shop/consents", json={"subject": "user:7", "decisions": {"analytics": "granted"}}, headers=writer
    )
    assert other.status_code == 201
    answers = bulk(client, reader, ["user:42", "email:ada@example.org", "user:7"], ["analytics"])
    assert [a["analytics"]["reason"] for a in answers] == ["restricted", "restricted", "granted"]


@pytest.mark.parametrize("route", ["restrict", "unrestrict"])
def test_asking_again_for_the_state_the_subject_is_in_records_nothing(client, site, dsr, person, route):
    if route == "restrict":
        assert restrict(client, dsr).json["event_id"] is not None
    before = counts()

    response = client.post(f"/api/v1/subjects/user:42/{route}", json={"site": "shop"}, headers=dsr)

    assert response.status_code == 200, response.json
    assert response.json == {
        "subject_id": person,
        "restricted": route == "restrict",
        "event_id": None,
        "received_at": None,
    }
    assert counts() == before
    assert chain.verify_site(site).ok


@pytest.mark.parametrize("route", ["restrict", "unrestrict"])
def test_restricting_an_unknown_subject_is_404_and_records_nothing(client, site, dsr, person, route):
    before = counts()
    response = client.post(f"/api/v1/subjects/email:nobody@example.org/{route}", json={"site": "shop"}, headers=dsr)
    assert_error(response, 404, "unknown_subject")
    assert "nobody" not in response.get_data(as_text=True)
    assert counts() == before


@pytest.mark.parametrize("route", ["restrict", "unrestrict"])
@pytest.mark.parametrize(
    ("send", "status", "code"),
    [
        (lambda c, url, h: c.post(url, data="site=shop", headers=h), 415, "unsupported_media_type"),
        (lambda c, url, h: c.post(url, data="{", content_type="application/json", headers=h), 400, "malformed_json"),
        (lambda c, url, h: c.post(url, json={"site": "shop"}), 401, "missing_api_key"),
        (lambda c, url, h: c.post(url, json={"site": "Not A Key"}, headers=h), 422, "invalid"),
        (lambda c, url, h: c.post(url, json={}, headers=h), 422, "invalid"),
        (lambda c, url, h: c.post(url, json={"site": "nope"}, headers=h), 404, "unknown_site"),
    ],
    ids=["form", "malformed", "no-key", "bad-site", "no-site", "unknown-site"],
)
def test_bad_restriction_requests_are_refused_and_change_nothing(client, site, dsr, person, route, send, status, code):
    before = counts()
    assert_error(send(client, f"/api/v1/subjects/user:42/{route}", dsr), status, code)
    assert counts() == before
    assert access(client, dsr, "user:42").json["restricted"] is False


def test_a_key_without_dsr_cannot_restrict(client, site, writer, reader, person):
    for key in (writer, reader):
        assert_error(restrict(client, key), 403, "insufficient_scope")
    assert lookup(client, reader, "user:42", "analytics")["reason"] == "granted"


def test_a_restricted_subject_can_still_withdraw(client, site, dsr, reader, person):
    assert restrict(client, dsr).status_code == 200

    withdrawn = withdraw(client, dsr, "user:42")

    assert withdrawn.status_code == 200, withdrawn.json
    assert lookup(client, reader, "user:42", "analytics")["reason"] == "restricted"
    assert unrestrict(client, dsr).status_code == 200
    # Lifting the restriction does not bring back what was withdrawn meanwhile.
    assert lookup(client, reader, "user:42", "analytics")["reason"] == "withdrawn"


def test_erasing_a_restricted_child_clears_what_was_known_about_them(client, runner, site, dsr, reader, person):
    assert restrict(client, dsr).status_code == 200
    aged = client.post("/api/v1/subjects/user:42/age", json={"site": "shop", "age": 9}, headers=dsr)
    assert aged.status_code == 200 and aged.json["child"] is True

    erased = erase(client, dsr, "user:42")

    assert erased.status_code == 200, erased.json
    db.session.expire_all()
    # The subject's row stays (its events refer to it) with nothing known about the person in it.
    row = db.session.get(Subject, person)
    assert (row.restricted, row.child) == (False, False)
    assert lookup(client, reader, "user:42", "analytics")["reason"] == "no_record"
    assert_erased_for_good(person)
    assert runner.invoke(args=["verify"]).exit_code == 0


def test_a_restriction_held_while_its_subject_is_erased_records_nothing(app, client, site, dsr, person, monkeypatch):
    db.session.remove()
    gate = SubjectGate(monkeypatch)
    with in_thread(gate.hold(lambda: restrict(app.test_client(), dsr))) as held:
        gate.wait_for(1)
        assert erase(client, dsr, "user:42").status_code == 200
        gate.open()

    assert_error(held[0], 404, "unknown_subject")
    assert_erased_for_good(person)
    assert db.session.get(Subject, person).restricted is False


def test_restriction_events_export_and_verify_and_have_a_receipt_without_purposes(
    app, client, runner, tmp_path, site, dsr, person
):
    assert restrict(client, dsr).status_code == 200
    assert unrestrict(client, dsr).status_code == 200
    path = tmp_path / "export.jsonl"

    assert runner.invoke(args=["export", "-o", str(path)]).exit_code == 0
    result = runner.invoke(args=["verify", "--file", str(path)])

    assert result.exit_code == 0, result.output
    assert result.output == "shop: ok, 3 events checked (tree checked against the signed checkpoint of 3)\n"
    assert runner.invoke(args=["verify"]).exit_code == 0
    assert integrity.check_site(sites.get_site("shop")).ok
    assert receipts_name_no_purpose(client, app, ["restrict", "unrestrict"]) == ["restrict", "unrestrict"]


def receipts_name_no_purpose(client, app, actions: list[str]) -> list[str]:
    """As for an erasure: the receipt of each event of `actions`, which decided nothing, names no purpose.

    Returns the actions found, sorted, so a caller sees every kind was recorded.
    """
    tokens = app.extensions["cmp.receipt_tokens"]
    recorded = list(db.session.scalars(sa.select(ConsentEvent).where(ConsentEvent.action.in_(actions))))
    for event in recorded:
        receipt = client.get(
            f"/api/v1/sites/shop/receipts/{event.id}", query_string={"token": tokens.sign("shop", event.id)}
        )
        assert receipt.status_code == 200, receipt.json
        assert receipt.json["action"] == event.action
        assert receipt.json["services"] == [{"service": "Shop", "purposes": []}]
    return sorted(event.action for event in recorded)
