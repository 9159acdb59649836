"""People's rights: access by any identifier, withdrawal, erasure, and consent given by a guardian.

Restriction, correction and children have their own modules (test_restriction, test_correction, test_children).
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from cmp.extensions import db
from cmp.models import ConsentEvent, ConsentState, EmailActivity, SubjectIdentifier
from cmp.models.types import utcnow
from cmp.services import chain, sites, tlog
from cmp.services.identifiers import new_event_id
from tests.helpers import ORIGIN, bearer, counts, events, post_consent, tree_root

ADDRESS = "Ada.Lovelace@Example.org"
EVENTS = ConsentEvent.__table__


@pytest.fixture
def person(client, site, writer) -> dict:
    """A visitor who accepted in the banner, then signed in as user 42 with their email linked."""
    accepted = post_consent(client, action="accept_all", page_url="https://shop.example/help")
    assert accepted.status_code == 201
    visitor = f"visitor:{accepted.json['visitor_id']}"
    linked = client.post(
        "/api/v1/sites/shop/links", json={"subjects": [visitor, "user:42", f"email:{ADDRESS}"]}, headers=writer
    )
    assert linked.status_code == 200, linked.json
    tracked = client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": "user:42", "decisions": {"email_tracking": "granted"}, "ip": "203.0.113.9"},
        headers=writer,
    )
    assert tracked.status_code == 201, tracked.json
    return {"visitor": visitor, "subject_id": accepted.json["subject_id"]}


def access(client, dsr, subject: str, site_key: str = "shop"):
    return client.get(f"/api/v1/subjects/{subject}/consents", query_string={"site": site_key}, headers=dsr)


def withdraw(client, dsr, subject: str, site_key: str = "shop"):
    return client.post(f"/api/v1/subjects/{subject}/withdraw", json={"site": site_key}, headers=dsr)


def erase(client, dsr, subject: str, site_key: str = "shop"):
    return client.post(f"/api/v1/subjects/{subject}/erase", json={"site": site_key}, headers=dsr)


def lookup(client, reader, subject: str, purpose: str) -> dict:
    response = client.get(
        "/api/v1/consents/lookup", query_string={"site": "shop", "subject": subject, "purpose": purpose}, headers=reader
    )
    assert response.status_code == 200, response.json
    return response.json


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.json
    assert set(response.json) == {"error"}
    assert response.json["error"]["code"] == code


# --- access ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["visitor", "user", "email"])
def test_access_by_each_identifier_kind_answers_the_whole_record(client, site, dsr, person, kind):
    subject = {"visitor": person["visitor"], "user": "user:42", "email": f"email:{ADDRESS}"}[kind]
    response = access(client, dsr, subject)

    assert response.status_code == 200, response.json
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body["site"] == "shop" and body["subject_id"] == person["subject_id"]
    assert body["restricted"] is False and body["child"] is False
    assert sorted(i["kind"] for i in body["identifiers"]) == ["email", "user", "visitor"]
    # No identifier value is stored, so none can be answered.
    assert "lovelace" not in response.get_data(as_text=True).lower()
    assert all(set(linked) == {"kind", "linked_at"} for linked in body["identifiers"])

    stored = events()
    assert [e["id"] for e in body["events"]] == [e.id for e in stored]
    first, second = body["events"]
    assert first["action"] == "accept_all" and first["source"] == "banner"
    assert first["seq"] == 1 and first["prev_hash"] is None and first["hash"] == stored[0].hash
    assert first["notice_version"] == 1 and first["notice_hash"] == stored[0].notice_hash
    assert first["evidence"]["page_url"] == "https://shop.example/help"
    assert first["evidence"]["ip_prefix"] == "127.0.0.0"
    assert first["given_by"] is None and first["evidence_digest"] == stored[0].evidence_digest
    assert second["seq"] == 2 and second["evidence"]["ip_prefix"] == "203.0.113.0"
    # The record's events are the leaves of the tree the log signed.
    assert tlog.latest_checkpoint(site.id).root == tree_root([first["hash"], second["hash"]])

    assert body["state"]["analytics"]["decision"] == "granted"
    assert body["state"]["analytics"]["allowed"] is True and body["state"]["analytics"]["reason"] == "granted"
    assert body["state"]["email_tracking"]["event_id"] == second["id"]
    assert body["state"]["email_tracking"]["source"] == "api"


def test_a_user_id_with_slashes_is_one_subject_in_the_path(client, site, dsr, writer, reader):
    """A site's account ids may contain `/`: sent as they are or percent-encoded, the routes take the whole id."""
    recorded = client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": "user:tenants/eu/42", "decisions": {"analytics": "granted"}},
        headers=writer,
    )
    assert recorded.status_code == 201, recorded.json
    for path in ("user:tenants/eu/42", "user:tenants%2Feu%2F42"):
        response = access(client, dsr, path)
        assert response.status_code == 200, response.json
        assert response.json["subject_id"] == recorded.json["subject_id"]
    assert access(client, dsr, "user:tenants/eu").status_code == 404
    assert withdraw(client, dsr, "user:tenants%2Feu%2F42").status_code == 200
    assert lookup(client, reader, "user:tenants/eu/42", "analytics")["reason"] == "withdrawn"
    assert erase(client, dsr, "user:tenants/eu/42").status_code == 200
    assert lookup(client, reader, "user:tenants/eu/42", "analytics")["reason"] == "no_record"


def test_access_to_an_unknown_subject_is_404(client, site, dsr, person):
    response = access(client, dsr, "email:nobody@example.org")
    assert_error(response, 404, "unknown_subject")
    assert "nobody" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "subject",
    ["phone:123", "email:not-an-address", "visitor:abcdefghijklmnopqrstuv"],
    ids=["kind", "email", "unsigned"],
)
def test_an_identifier_that_cannot_be_read_is_422(client, site, dsr, subject):
    assert_error(access(client, dsr, subject), 422, "invalid_subject")


def test_access_needs_a_known_site(client, site, dsr, person):
    assert_error(access(client, dsr, "user:42", site_key="nope"), 404, "unknown_site")
    response = client.get("/api/v1/subjects/user:42/consents", headers=dsr)
    assert_error(response, 422, "invalid")
    assert "site" in response.json["error"]["details"]["fields"]


def test_a_subject_of_one_site_is_unknown_on_another(client, site, person):
    sites.create_site("blog", "Blog")
    db.session.commit()
    assert_error(access(client, bearer("dsr"), "user:42", site_key="blog"), 404, "unknown_subject")


# --- withdrawal --------------------------------------------------------------------------------------------------


def test_withdraw_denies_every_refusable_purpose_and_leaves_earlier_events_alone(client, site, dsr, reader, person):
    before = {e.id: (e.hash, dict(e.decisions), e.page_url, e.ip_prefix) for e in events()}
    assert lookup(client, reader, f"email:{ADDRESS}", "email_tracking")["allowed"] is True

    response = withdraw(client, dsr, "user:42")

    assert response.status_code == 200, response.json
    body = response.json
    assert body["action"] == "withdraw" and body["source"] == "api"
    assert body["subject_id"] == person["subject_id"]
    # Web and email purposes alike; strictly necessary is not refusable and stays as it was.
    assert body["decisions"] == {
        "preferences": "denied",
        "analytics": "denied",
        "marketing_email": "denied",
        "email_tracking": "denied",
    }
    *earlier, last = events()
    assert last.id == body["event_id"] and last.seq == len(before) + 1
    assert {e.id: (e.hash, dict(e.decisions), e.page_url, e.ip_prefix) for e in earlier} == before
    for purpose in ("analytics", "preferences", "marketing_email", "email_tracking"):
        answer = lookup(client, reader, "user:42", purpose)
        assert answer["allowed"] is False and answer["reason"] == "withdrawn", purpose
    assert lookup(client, reader, person["visitor"], "analytics")["reason"] == "withdrawn"
    assert chain.verify_site(site).ok


def test_withdrawing_an_unknown_subject_writes_nothing(client, site, dsr, person):
    before = counts()
    assert_error(withdraw(client, dsr, "user:7"), 404, "unknown_subject")
    assert counts() == before


@pytest.mark.parametrize(
    ("send", "status"),
    [
        (lambda c, h: c.post("/api/v1/subjects/user:42/withdraw", data="site=shop", headers=h), 415),
        (
            lambda c, h: c.post(
                "/api/v1/subjects/user:42/withdraw", data="{", content_type="application/json", headers=h
            ),
            400,
        ),
        (lambda c, h: c.post("/api/v1/subjects/user:42/withdraw", json={"site": "Not A Key"}, headers=h), 422),
        (lambda c, h: c.post("/api/v1/subjects/user:42/withdraw", json={}, headers=h), 422),
    ],
    ids=["form", "malformed", "bad-site", "no-site"],
)
def test_bad_withdrawal_requests_write_nothing(client, site, dsr, person, send, status):
    before = counts()
    assert send(client, dsr).status_code == status
    assert counts() == before


# --- erasure -----------------------------------------------------------------------------------------------------


@pytest.fixture
def bystander(client, site):
    """Another visitor, whose record erasure must not touch."""
    response = post_consent(client, action="reject_all", page_url="https://shop.example/other")
    assert response.status_code == 201
    return response.json


def _activity(site_id: int, subject_id: str) -> None:
    db.session.add(
        EmailActivity(
            id=new_event_id(),
            site_id=site_id,
            subject_id=subject_id,
            kind="open",
            message_id="m-1",
            occurred_at=utcnow(),
        )
    )
    db.session.commit()


def _rows(model, subject_id: str) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(model.subject_id == subject_id))


def test_erase_removes_links_state_activity_and_evidence_and_keeps_the_chain(
    client, runner, site, dsr, reader, person, bystander
):
    subject_id = person["subject_id"]
    _activity(site.id, subject_id)
    _activity(site.id, bystander["subject_id"])
    before = {e.id: e.hash for e in events()}

    response = erase(client, dsr, f"email:{ADDRESS}")

    assert response.status_code == 200, response.json
    body = response.json
    assert body["subject_id"] == subject_id
    assert body["removed"] == {"identifiers": 3, "states": 4, "email_activity": 1}
    assert body["evidence_emptied"] == 3  # two decisions and the erase event itself
    db.session.expire_all()
    for model in (SubjectIdentifier, ConsentState, EmailActivity):
        assert _rows(model, subject_id) == 0, model.__tablename__
        assert _rows(model, bystander["subject_id"]) > 0, model.__tablename__

    *kept, last = events()
    assert {e.id: e.hash for e in kept} == before  # no event rewritten or removed
    assert last.id == body["event_id"] and last.action == "erase" and last.source == "api"
    assert last.subject_id == subject_id and last.decisions == {} and last.seq == len(before) + 1
    for event in [*kept, last]:
        evidence = (event.ip_prefix, event.user_agent, event.page_url, event.evidence_salt)
        if event.subject_id == subject_id:
            assert evidence == (None, None, None, None)
        else:
            assert event.page_url == "https://shop.example/other" and event.evidence_salt

    assert chain.verify_site(site).ok
    result = runner.invoke(args=["verify"])
    assert result.exit_code == 0, result.output
    for subject in (person["visitor"], "user:42", f"email:{ADDRESS}"):
        answer = lookup(client, reader, subject, "analytics")
        assert answer["allowed"] is False and answer["reason"] == "no_record"
        assert_error(access(client, dsr, subject), 404, "unknown_subject")
    assert lookup(client, reader, f"visitor:{bystander['visitor_id']}", "analytics")["reason"] == "denied"


def test_a_second_erasure_is_404_and_records_nothing(client, site, dsr, person):
    assert erase(client, dsr, "user:42").status_code == 200
    before = counts()
    assert_error(erase(client, dsr, "user:42"), 404, "unknown_subject")
    assert counts() == before


def test_erasing_an_unknown_subject_records_nothing(client, site, dsr, person):
    before = counts()
    assert_error(erase(client, dsr, "email:someone@example.org"), 404, "unknown_subject")
    assert counts() == before
    assert chain.verify_site(site).ok


def test_concurrent_erasures_of_one_subject_record_one(app, site, dsr, person, bystander):
    """Requests racing to erase the same person, while the banner keeps recording: one erasure, one chain."""
    db.session.remove()
    start = threading.Barrier(6)
    results: list[int] = []

    def eraser():
        client = app.test_client()
        start.wait()
        results.append(erase(client, dsr, "user:42").status_code)

    def visitor():
        client = app.test_client()
        start.wait()
        results.append(post_consent(client, action="accept_all").status_code)

    pool = [threading.Thread(target=eraser) for _ in range(4)] + [threading.Thread(target=visitor) for _ in range(2)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()

    assert sorted(results) == [200, 201, 201, 404, 404, 404]
    assert [e.action for e in events()].count("erase") == 1
    assert chain.verify_site(sites.get_site("shop")).ok


def test_the_same_identifier_starts_afresh_after_erasure(client, site, dsr, reader, writer, person):
    assert erase(client, dsr, "user:42").status_code == 200
    again = client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": "user:42", "decisions": {"analytics": "granted"}},
        headers=writer,
    )
    assert again.status_code == 201
    assert again.json["subject_id"] != person["subject_id"]
    assert [e["action"] for e in access(client, dsr, "user:42").json["events"]] == ["save"]
    assert chain.verify_site(site).ok


# --- guardian ----------------------------------------------------------------------------------------------------


def test_a_guardian_consent_is_stored_hashed_and_shown(client, site, dsr, writer):
    response = client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": "user:child-7", "decisions": {"analytics": "granted"}, "given_by": "guardian"},
        headers=writer,
    )
    assert response.status_code == 201, response.json
    assert response.json["given_by"] == "guardian"
    [event] = events()
    assert event.given_by == "guardian"
    assert chain.event_payload(event, "shop")["given_by"] == "guardian"
    assert chain.verify_site(site).ok

    shown = access(client, dsr, "user:child-7").json["events"]
    assert [e["given_by"] for e in shown] == ["guardian"]
    receipt = client.get(response.json["receipt_url"]).json
    assert receipt["givenBy"] == "guardian"


def test_omitting_given_by_means_the_subject_themself(client, site, writer):
    response = client.post(
        "/api/v1/sites/shop/consents", json={"subject": "user:1", "decisions": {"analytics": "granted"}}, headers=writer
    )
    assert response.json["given_by"] is None
    [event] = events()
    assert event.given_by is None and "given_by" not in chain.event_payload(event, "shop")
    assert client.get(response.json["receipt_url"]).json["givenBy"] is None


@pytest.mark.parametrize("changed", [None, "subject"], ids=["removed", "edited"])
def test_an_edit_of_given_by_is_caught(client, site, writer, changed):
    client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": "user:child-7", "decisions": {"analytics": "granted"}, "given_by": "guardian"},
        headers=writer,
    )
    [event] = events()
    db.session.execute(sa.update(EVENTS).where(EVENTS.c.id == event.id).values(given_by=changed))
    db.session.commit()
    db.session.expire_all()
    result = chain.verify_site(site)
    assert not result.ok and result.first_bad == event.id


def test_the_banner_may_say_a_guardian_decided(client, site):
    response = post_consent(client, action="accept_all", given_by="guardian")
    assert response.status_code == 201
    assert events()[0].given_by == "guardian"


@pytest.mark.parametrize("given_by", ["parent", "", 1, True])
def test_an_unknown_given_by_is_refused_and_nothing_written(client, site, writer, given_by):
    before = counts()
    response = client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": "user:1", "decisions": {"analytics": "granted"}, "given_by": given_by},
        headers=writer,
    )
    assert_error(response, 422, "invalid")
    assert "given_by" in response.json["error"]["details"]["fields"]
    banner = post_consent(client, action="accept_all", given_by=given_by)
    assert banner.status_code == 422
    assert counts() == before


def test_a_bound_key_of_another_site_cannot_reach_a_subject(client, site, person):
    sites.create_site("blog", "Blog", origins=[ORIGIN])
    db.session.commit()
    response = access(client, bearer("dsr", bound_to=["blog"]), "user:42")
    assert_error(response, 403, "site_not_allowed")


def test_old_email_links_of_an_erased_person_record_nothing(client, site, dsr, person):
    """Erasure removes their links: an unsubscribe or tracked link mailed before it records nothing about them."""
    sender = bearer("email:write")
    unsubscribe = client.get("/api/v1/email/headers", query_string={"site": "shop", "email": ADDRESS}, headers=sender)
    tracking = client.post(
        "/api/v1/email/tracking-links",
        json={"site": "shop", "email": ADDRESS, "message_id": "m-1", "destinations": ["https://shop.example/sale"]},
        headers=sender,
    )
    assert unsubscribe.status_code == 200 and tracking.status_code == 200
    assert erase(client, dsr, "user:42").status_code == 200
    before = (counts(), _rows(EmailActivity, person["subject_id"]))

    page = unsubscribe.json["unsubscribe_url"].split("://", 1)[1].split("/", 1)[1]
    shown = client.get(f"/{page}")
    assert shown.status_code == 404, (page, shown.headers.get("Location"))
    one_click = client.post(f"/{page}", data={"List-Unsubscribe": "One-Click"}, headers={"User-Agent": "mail/1"})
    assert one_click.status_code == 404
    click = tracking.json["links"][0]["url"].split("://", 1)[1].split("/", 1)[1]
    followed = client.get(f"/{click}")
    assert followed.status_code == 302 and followed.headers["Location"] == "https://shop.example/sale"
    pixel = tracking.json["open_pixel_url"].split("://", 1)[1].split("/", 1)[1]
    assert client.get(f"/{pixel}").status_code == 200

    assert (counts(), _rows(EmailActivity, person["subject_id"])) == before
