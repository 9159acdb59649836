"""Children (GDPR Art. 8, policy section 6): a site's server marks a subject a child by age and country; for a child
only a guardian's grant allows anything, and lookups otherwise answer guardian_required."""

from __future__ import annotations

import pytest

from cmp.extensions import db
from cmp.models import Subject
from cmp.services import chain, integrity, sites
from tests.api.test_restriction import receipts_name_no_purpose
from tests.api.test_rights import access, assert_error, lookup
from tests.helpers import counts, events, post_consent

WEB = ["preferences", "analytics"]


def age(client, dsr, subject: str = "user:kid", site_key: str = "shop", **body):
    return client.post(f"/api/v1/subjects/{subject}/age", json={"site": site_key, **body}, headers=dsr)


def decide(client, writer, subject: str = "user:kid", **body):
    response = client.post("/api/v1/sites/shop/consents", json={"subject": subject, **body}, headers=writer)
    assert response.status_code == 201, response.json
    return response.json


def reasons(client, reader, subject: str = "user:kid", purposes=WEB) -> dict[str, str]:
    return {purpose: lookup(client, reader, subject, purpose)["reason"] for purpose in purposes}


@pytest.fixture
def kid(client, site, writer) -> str:
    """user:kid, who accepted everything themself through the site's sign-up; their subject id."""
    return decide(client, writer, action="accept_all")["subject_id"]


def test_a_child_is_allowed_only_what_a_guardian_granted(client, runner, site, dsr, reader, writer, kid):
    assert reasons(client, reader) == {"preferences": "granted", "analytics": "granted"}

    marked = age(client, dsr, age=12)

    assert marked.status_code == 200, marked.json
    assert marked.headers["Cache-Control"] == "no-store"
    event = events()[-1]
    assert marked.json == {
        "subject_id": kid,
        "child": True,
        "age_of_consent": 16,
        "event_id": event.id,
        "received_at": event.received_at.isoformat(),
    }
    assert (event.action, event.source, event.decisions, event.subject_id) == ("child", "api", {}, kid)
    # The child's own grants no longer count.
    assert reasons(client, reader) == {"preferences": "guardian_required", "analytics": "guardian_required"}
    assert lookup(client, reader, "user:kid", "analytics")["allowed"] is False
    record = access(client, dsr, "user:kid").json
    assert record["child"] is True and record["restricted"] is False
    assert {p: s["reason"] for p, s in record["state"].items() if p in WEB} == dict.fromkeys(WEB, "guardian_required")

    # A parent grants analytics for them, through the site's server.
    guardian = decide(client, writer, decisions={"analytics": "granted"}, given_by="guardian")

    answer = lookup(client, reader, "user:kid", "analytics")
    assert (answer["allowed"], answer["reason"], answer["event_id"]) == (True, "granted", guardian["event_id"])
    assert lookup(client, reader, "user:kid", "preferences")["reason"] == "guardian_required"
    # Their own refusal still counts: a child may always say no.
    decide(client, writer, decisions={"preferences": "denied"})
    assert lookup(client, reader, "user:kid", "preferences")["reason"] == "denied"
    # So does their own grant over a guardian's: it replaces the guardian's decision, and is not enough.
    decide(client, writer, decisions={"analytics": "granted"})
    assert lookup(client, reader, "user:kid", "analytics")["reason"] == "guardian_required"

    grown_up = age(client, dsr, age=17)

    assert grown_up.status_code == 200, grown_up.json
    assert grown_up.json["child"] is False and grown_up.json["event_id"] == events()[-1].id
    assert events()[-1].action == "adult"
    # Their own grant counts again.
    assert reasons(client, reader) == {"preferences": "denied", "analytics": "granted"}
    assert access(client, dsr, "user:kid").json["child"] is False
    assert chain.verify_site(site).ok
    assert runner.invoke(args=["verify"]).exit_code == 0


def test_in_the_banner_only_the_guardians_accept_counts_for_a_child(client, site, dsr, reader):
    own = post_consent(client, action="accept_all")
    assert own.status_code == 201, own.json
    visitor = f"visitor:{own.json['visitor_id']}"
    assert age(client, dsr, visitor, age=10).json["child"] is True
    assert reasons(client, reader, visitor) == dict.fromkeys(WEB, "guardian_required")

    by_guardian = post_consent(client, action="accept_all", visitor_id=own.json["visitor_id"], given_by="guardian")

    assert by_guardian.status_code == 201, by_guardian.json
    assert reasons(client, reader, visitor) == dict.fromkeys(WEB, "granted")


def test_the_bulk_lookup_answers_guardian_required_too(client, site, dsr, reader, writer, kid):
    decide(client, writer, subject="user:adult", action="accept_all")
    assert age(client, dsr, age=9).status_code == 200
    response = client.post(
        "/api/v1/consents/lookup",
        json={"site": "shop", "subjects": ["user:kid", "user:adult"], "purposes": ["analytics"]},
        headers=reader,
    )
    assert response.status_code == 200, response.json
    assert [r["purposes"]["analytics"]["reason"] for r in response.json["results"]] == ["guardian_required", "granted"]


@pytest.mark.parametrize(
    ("years", "country", "child", "threshold"),
    [
        (13, "AT", True, 14),
        (14, "AT", False, 14),
        (14, "FR", True, 15),
        (15, "FR", False, 15),
        (12, None, True, 13),  # no country: the site's "*"
        (13, "US", False, 13),  # a country the site names no age for: its "*"
        (0, "AT", True, 14),
        (130, None, False, 13),
    ],
)
def test_the_age_of_consent_is_the_sites_for_the_country(client, site, dsr, kid, years, country, child, threshold):
    sites.update_site(site, child_ages={"AT": 14, "FR": 15, "*": 13})
    db.session.commit()

    response = age(client, dsr, age=years, country=country)

    assert response.status_code == 200, response.json
    assert (response.json["child"], response.json["age_of_consent"]) == (child, threshold)
    db.session.expire_all()
    assert db.session.get(Subject, kid).child is child


@pytest.mark.parametrize(("years", "child"), [(15, True), (16, False)])
def test_a_site_that_names_no_age_uses_16(client, site, dsr, kid, years, child):
    response = age(client, dsr, age=years, country="DE")
    assert (response.json["child"], response.json["age_of_consent"]) == (child, 16)


def test_only_the_outcome_is_kept_never_the_age_or_the_country(client, site, dsr, kid):
    sites.update_site(site, child_ages={"FR": 15})
    db.session.commit()
    assert age(client, dsr, age=11, country="FR").status_code == 200

    event = events()[-1]
    payload = chain.event_payload(event, "shop")
    assert (payload["decisions"], payload["country"], payload["locale"]) == ({}, None, None)
    assert (event.ip_prefix, event.user_agent, event.page_url, event.evidence_salt) == (None, None, None, None)
    record = access(client, dsr, "user:kid").json
    assert "age" not in record and record["child"] is True
    assert record["events"][-1]["country"] is None and record["events"][-1]["action"] == "child"


@pytest.mark.parametrize(("first", "again"), [(10, 11), (None, 30)], ids=["still-a-child", "still-an-adult"])
def test_an_age_with_the_same_outcome_records_nothing(client, site, dsr, kid, first, again):
    if first is not None:
        assert age(client, dsr, age=first).json["event_id"] is not None
    before = counts()

    response = age(client, dsr, age=again)

    assert response.status_code == 200, response.json
    assert response.json["event_id"] is None and response.json["received_at"] is None
    assert response.json["child"] is (first is not None)
    assert counts() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "age"),
        ({"age": -1}, "age"),
        ({"age": 131}, "age"),
        ({"age": "12"}, "age"),
        ({"age": 12.5}, "age"),
        ({"age": True}, "age"),
        ({"age": None}, "age"),
        ({"age": 12, "country": "de"}, "country"),
        ({"age": 12, "country": "DEU"}, "country"),
        ({"age": 12, "country": 276}, "country"),
    ],
    ids=["no-age", "negative", "too-old", "text", "fraction", "boolean", "null", "lower-case", "alpha-3", "number"],
)
def test_a_bad_age_is_422_and_changes_nothing(client, site, dsr, kid, body, field):
    before = counts()
    response = age(client, dsr, **body)
    assert_error(response, 422, "invalid")
    assert field in response.json["error"]["details"]["fields"]
    assert counts() == before
    assert db.session.get(Subject, kid).child is False


@pytest.mark.parametrize(
    ("send", "status", "code"),
    [
        (lambda c, url, h: c.post(url, data="site=shop&age=9", headers=h), 415, "unsupported_media_type"),
        (lambda c, url, h: c.post(url, data="{", content_type="application/json", headers=h), 400, "malformed_json"),
        (lambda c, url, h: c.post(url, json={"age": -1}), 401, "missing_api_key"),
        (lambda c, url, h: c.post(url, json={"site": "nope", "age": 9}, headers=h), 404, "unknown_site"),
        (
            lambda c, url, h: c.post(url.replace("kid", "nobody"), json={"site": "shop", "age": 9}, headers=h),
            404,
            "unknown_subject",
        ),
    ],
    ids=["form", "malformed", "no-key", "unknown-site", "unknown-subject"],
)
def test_bad_age_requests_are_refused_and_change_nothing(client, site, dsr, kid, send, status, code):
    before = counts()
    assert_error(send(client, "/api/v1/subjects/user:kid/age", dsr), status, code)
    assert counts() == before


def test_child_adult_and_correct_events_export_verify_and_have_receipts_without_purposes(
    app, client, runner, tmp_path, site, dsr, kid
):
    assert age(client, dsr, age=8).status_code == 200
    assert age(client, dsr, age=18).status_code == 200
    corrected = client.post(
        "/api/v1/subjects/user:kid/correct", json={"site": "shop", "identifier": "user:grown-up"}, headers=dsr
    )
    assert corrected.status_code == 200, corrected.json
    path = tmp_path / "export.csv"

    assert runner.invoke(args=["export", "--format", "csv", "-o", str(path)]).exit_code == 0
    result = runner.invoke(args=["verify", "--file", str(path)])

    assert result.exit_code == 0, result.output
    assert result.output == "shop: ok, 4 events checked (tree checked against the signed checkpoint of 4)\n"
    assert integrity.check_site(sites.get_site("shop")).ok
    assert receipts_name_no_purpose(client, app, ["child", "adult", "correct"]) == ["adult", "child", "correct"]
