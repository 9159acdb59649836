"""Consent lookups: every reason code, bulk answers in one query, linked identifiers, scopes and sites."""

from __future__ import annotations

import random
from datetime import timedelta

import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import example, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError, fields
from sqlalchemy.pool import Pool

from cmp.extensions import _discard_closed_connections, db
from cmp.models import ConsentState, Subject, SubjectIdentifier
from cmp.models.types import utcnow
from cmp.schemas.lookup import SUBJECT, AnswerSchema, BulkLookupResultSchema, LookupResultSchema, Subjects
from cmp.services import lookup as lookup_service
from cmp.services import notices, sites
from cmp.services.identifiers import new_subject_id, parse_identifier
from cmp.services.lookup import NO_RECORD, SubjectFlags, decide
from tests.conftest import running_app
from tests.helpers import bearer, post_consent
from tests.test_extensions import terminate_other_connections

LOOKUP = "/api/v1/consents/lookup"
CONSENTS = "/api/v1/sites/shop/consents"

# Every reason a lookup can give: the tests that walk every case check they met each one.
EVERY_REASON = {
    "granted",
    "denied",
    "withdrawn",
    "expired",
    "notice_changed",
    "no_record",
    "gpc",
    "restricted",
    "guardian_required",
}


def ask(client, headers, subject, purpose="analytics", site_key="shop"):
    response = client.get(
        LOOKUP, query_string={"site": site_key, "subject": subject, "purpose": purpose}, headers=headers
    )
    assert response.status_code == 200, response.json
    return response.json


def record(client, writer, subject, **body):
    response = client.post(CONSENTS, json={"subject": subject, **body}, headers=writer)
    assert response.status_code == 201, response.json
    return response.json


def test_a_banner_grant_is_allowed_with_its_proof(client, site, reader):
    consent = post_consent(client, action="accept_all").json
    answer = ask(client, reader, f"visitor:{consent['visitor_id']}")
    assert answer["allowed"] is True and answer["reason"] == "granted"
    assert answer["event_id"] == consent["event_id"]
    assert answer["notice_version"] == 1
    assert answer["decided_at"] == consent["received_at"]
    assert answer["expires_at"] == consent["expires_at"]
    assert response_cache(client, reader) == "no-store"


def response_cache(client, headers):
    return client.get(
        LOOKUP, query_string={"site": "shop", "subject": "user:1", "purpose": "analytics"}, headers=headers
    ).headers["Cache-Control"]


def test_no_record_is_never_allowed(client, site, reader):
    answer = ask(client, reader, "user:nobody")
    assert answer == {
        "site": "shop",
        "subject": "user:nobody",
        "purpose": "analytics",
        "allowed": False,
        "reason": "no_record",
        "decided_at": None,
        "event_id": None,
        "notice_version": None,
        "expires_at": None,
    }


def test_a_refusal_is_denied(client, site, reader):
    visitor = post_consent(client, action="reject_all").json["visitor_id"]
    answer = ask(client, reader, f"visitor:{visitor}")
    assert (answer["allowed"], answer["reason"]) == (False, "denied")


def test_a_withdrawal_is_withdrawn(client, site, reader):
    visitor = post_consent(client, action="accept_all").json["visitor_id"]
    withdrawal = post_consent(client, action="withdraw", visitor_id=visitor).json
    answer = ask(client, reader, f"visitor:{visitor}")
    assert (answer["allowed"], answer["reason"], answer["event_id"]) == (False, "withdrawn", withdrawal["event_id"])


def test_an_expired_grant_is_expired(client, site, reader, monkeypatch):
    visitor = post_consent(client, action="accept_all").json["visitor_id"]
    monkeypatch.setattr(lookup_service, "utcnow", lambda: utcnow() + timedelta(days=366))
    answer = ask(client, reader, f"visitor:{visitor}")
    assert (answer["allowed"], answer["reason"]) == (False, "expired")


def test_a_grant_under_an_older_notice_is_notice_changed_after_a_material_change(client, site, reader):
    visitor = post_consent(client, action="accept_all").json["visitor_id"]
    sites.add_cookie(site, "_gid", purpose="analytics", provider="Google", storage="persistent", lifetime_seconds=86400)
    notices.publish_notice(site)  # not material: the grant still stands
    db.session.commit()
    assert ask(client, reader, f"visitor:{visitor}")["reason"] == "granted"
    sites.add_cookie(site, "_gat", purpose="analytics", provider="Google", storage="persistent", lifetime_seconds=60)
    notices.publish_notice(site, material=True)
    db.session.commit()
    answer = ask(client, reader, f"visitor:{visitor}")
    assert (answer["allowed"], answer["reason"], answer["notice_version"]) == (False, "notice_changed", 1)


def test_gpc_in_opt_out_is_gpc(client, site, reader, writer):
    sites.add_purpose(site, "partner_sharing", texts={"en": {"name": "Partners"}}, default_opt_out="granted", gpc=True)
    notices.publish_notice(site)
    db.session.commit()
    record(client, writer, "user:7", decisions={"partner_sharing": "granted", "analytics": "granted"}, country="US")
    # The person's signal, seen later by the site's server: sale and sharing stop; the rest stands.
    record(client, writer, "user:7", action="gpc", gpc=True, country="US")
    assert (ask(client, reader, "user:7", "partner_sharing")["reason"]) == "gpc"
    assert ask(client, reader, "user:7", "analytics")["reason"] == "granted"


def test_email_subjects_are_matched_through_the_hmac(client, site, reader, writer):
    record(client, writer, "email:Ada@Example.org", decisions={"email_tracking": "denied"})
    assert ask(client, reader, "email:ada@example.org", "email_tracking")["reason"] == "denied"


def test_a_banner_consent_answers_by_user_id_once_linked(client, site, reader, writer):
    consent = post_consent(client, action="accept_all").json
    assert ask(client, reader, "user:42")["reason"] == "no_record"
    linked = client.post(
        "/api/v1/sites/shop/links", json={"subjects": [f"visitor:{consent['visitor_id']}", "user:42"]}, headers=writer
    )
    assert linked.status_code == 200
    assert linked.json["subject_id"] == consent["subject_id"]
    answer = ask(client, reader, "user:42")
    assert (answer["allowed"], answer["event_id"]) == (True, consent["event_id"])


def test_identifiers_of_two_people_are_not_merged(client, site, writer):
    record(client, writer, "user:1", action="accept_all")
    record(client, writer, "user:2", action="reject_all")
    response = client.post("/api/v1/sites/shop/links", json={"subjects": ["user:1", "user:2"]}, headers=writer)
    assert response.status_code == 409
    assert response.json["error"]["code"] == "identifiers_conflict"


def test_a_forged_visitor_id_cannot_be_linked_or_looked_up(client, site, reader, writer):
    forged = "visitor:AAAAAAAAAAAAAAAAAAAAAA.c2lnbmF0dXJl"
    linked = client.post("/api/v1/sites/shop/links", json={"subjects": [forged, "user:9"]}, headers=writer)
    assert linked.status_code == 422
    looked = client.get(
        LOOKUP, query_string={"site": "shop", "subject": forged, "purpose": "analytics"}, headers=reader
    )
    assert looked.status_code == 422
    assert looked.json["error"]["details"] == {"subjects": {"0": "the visitor id is not one this service signed"}}


def test_bulk_answers_every_subject_in_order(client, site, reader, writer):
    record(client, writer, "user:1", action="accept_all")
    record(client, writer, "user:2", action="reject_all")
    body = {"site": "shop", "subjects": ["user:2", "user:3", "user:1"], "purposes": ["analytics", "preferences"]}
    response = client.post(LOOKUP, json=body, headers=reader)
    assert response.status_code == 200
    results = response.json["results"]
    assert [r["subject"] for r in results] == ["user:2", "user:3", "user:1"]
    assert [r["allowed"] for r in results] == [False, False, True]
    assert results[0]["purposes"]["analytics"]["reason"] == "denied"
    assert results[1]["purposes"]["preferences"]["reason"] == "no_record"
    assert results[2]["purposes"]["preferences"]["reason"] == "granted"


def test_bulk_lookup_is_one_query_however_many_subjects(client, site, reader, writer, app):
    for n in range(5):
        record(client, writer, f"user:{n}", action="accept_all")
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    def lookups(n):
        statements.clear()
        response = client.post(
            LOOKUP,
            json={"site": "shop", "subjects": [f"user:{i}" for i in range(n)], "purposes": ["analytics"]},
            headers=reader,
        )
        assert response.status_code == 200
        return [s for s in statements if "consent_state" in s]

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        few, many = lookups(2), lookups(2000)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert len(few) == len(many) == 1


def test_bulk_accepts_ten_thousand_subjects_and_no_more(client, site, reader):
    ten_thousand = [f"user:{i}" for i in range(10_000)]
    response = client.post(
        LOOKUP, json={"site": "shop", "subjects": ten_thousand, "purposes": ["analytics"]}, headers=reader
    )
    assert response.status_code == 200
    assert len(response.json["results"]) == 10_000
    too_many = client.post(
        LOOKUP, json={"site": "shop", "subjects": [*ten_thousand, "user:x"], "purposes": ["analytics"]}, headers=reader
    )
    assert too_many.status_code in (413, 422)


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"site": "shop", "subject": "user:1", "purpose": "telemetry"}, "unknown_purpose"),
        ({"site": "shop", "subject": "phone:123", "purpose": "analytics"}, "invalid"),
        ({"site": "shop", "subject": "email:not-an-address", "purpose": "analytics"}, "invalid_subject"),
        ({"site": "shop", "subject": "user:1"}, "invalid"),
    ],
)
def test_bad_questions_are_422(client, site, reader, query, code):
    response = client.get(LOOKUP, query_string=query, headers=reader)
    assert response.status_code == 422
    assert response.json["error"]["code"] == code


def test_unknown_site_is_404(client, site):
    headers = bearer("consent:read")
    response = client.get(
        LOOKUP, query_string={"site": "nowhere", "subject": "user:1", "purpose": "analytics"}, headers=headers
    )
    assert response.status_code == 404


def test_bulk_gives_the_single_answer_for_every_reason(client, site, reader, writer, app):
    """Bulk and single answers, and `lookup` in Python, match field for field for every reason there is."""
    sites.add_purpose(site, "partner_sharing", texts={"en": {"name": "Partners"}}, default_opt_out="granted", gpc=True)
    notices.publish_notice(site)
    db.session.commit()
    record(client, writer, "user:granted-before", decisions={"analytics": "granted"})
    record(client, writer, "user:denied", decisions={"analytics": "denied"})
    record(client, writer, "user:withdrawn", decisions={"analytics": "granted"})
    record(client, writer, "user:withdrawn", action="withdraw")
    record(client, writer, "email:Ada@Example.org", decisions={"analytics": "granted"})
    record(client, writer, "user:expired", decisions={"analytics": "granted"})
    record(client, writer, "user:gpc", decisions={"analytics": "granted", "partner_sharing": "granted"}, country="US")
    record(client, writer, "user:gpc", action="gpc", gpc=True, country="US")
    sites.add_cookie(site, "_gat", purpose="analytics", provider="Google", storage="persistent", lifetime_seconds=60)
    notices.publish_notice(site, material=True)
    db.session.commit()
    record(client, writer, "user:granted", decisions={"analytics": "granted"})
    record(client, writer, "user:restricted", decisions={"analytics": "granted"})
    record(client, writer, "user:child", decisions={"analytics": "granted"})
    for subject, flag in (("user:restricted", "restricted"), ("user:child", "child")):
        db.session.execute(sa.update(Subject).where(Subject.id == _subject_id(app, subject)).values({flag: True}))
    # A grant that ended, and a decision on a whole second (no fraction in its ISO 8601 time).
    whole_second = utcnow().replace(microsecond=0)
    db.session.execute(
        sa.update(ConsentState)
        .where(ConsentState.subject_id == _subject_id(app, "user:expired"), ConsentState.purpose == "analytics")
        .values(expires_at=utcnow() - timedelta(days=1), decided_at=whole_second)
    )
    db.session.commit()
    subjects = [
        "user:granted",
        "user:denied",
        "user:withdrawn",
        "user:expired",
        "user:granted-before",
        "user:gpc",
        "user:nobody",
        "email:ada@example.org",
        "user:granted",
        "user:restricted",
        "user:child",
    ]
    purposes = ["analytics", "partner_sharing"]
    response = client.post(LOOKUP, json={"site": "shop", "subjects": subjects, "purposes": purposes}, headers=reader)
    assert response.status_code == 200
    assert response.json["site"] == "shop" and response.json["purposes"] == purposes
    reasons = set()
    # And both are what `lookup` decides in Python, as SQLite answers them.
    context = {"hmac_key": app.config["CMP_HMAC_KEY"], "visitor_ids": app.extensions["cmp.visitor_ids"]}
    decided = lookup_service.lookup(site, subjects, purposes, **context)
    for subject, result, in_python in zip(subjects, response.json["results"], decided, strict=True):
        assert result["subject"] == subject
        singles = {purpose: ask(client, reader, subject, purpose) for purpose in purposes}
        for purpose, single in singles.items():
            assert {"site": "shop", "subject": subject, "purpose": purpose, **result["purposes"][purpose]} == single
            assert AnswerSchema().dump(in_python[purpose]._asdict()) == result["purposes"][purpose]
            reasons.add(single["reason"])
        assert result["allowed"] is all(single["allowed"] for single in singles.values())
    assert reasons == EVERY_REASON
    expired = response.json["results"][3]["purposes"]["analytics"]
    assert (expired["reason"], expired["decided_at"]) == ("expired", whole_second.isoformat())


def _subject_id(app, subject: str) -> str:
    digest = parse_identifier(subject).digest(app.config["CMP_HMAC_KEY"], "shop")
    return db.session.scalar(sa.select(SubjectIdentifier.subject_id).where(SubjectIdentifier.digest == digest))


def test_the_documents_are_the_answers_as_their_schemas_dump_them(client, site, writer, reader, app):
    """The lookup routes write their JSON without marshmallow, for speed: it must be what the schemas write."""
    record(client, writer, "user:1", action="accept_all")
    record(client, writer, "user:2", action="reject_all")
    subjects, purposes = ["user:1", "user:2", "user:9", "user:1"], ["analytics", "marketing_email"]
    context = {"hmac_key": app.config["CMP_HMAC_KEY"], "visitor_ids": app.extensions["cmp.visitor_ids"]}
    answers = lookup_service.lookup(site, subjects, purposes, **context)
    bulk = client.post(LOOKUP, json={"site": "shop", "subjects": subjects, "purposes": purposes}, headers=reader)
    single = ask(client, reader, "user:1")
    results = [
        {
            "subject": subject,
            "allowed": all(answer.allowed for answer in by_purpose.values()),
            "purposes": {purpose: answer._asdict() for purpose, answer in by_purpose.items()},
        }
        for subject, by_purpose in zip(subjects, answers, strict=True)
    ]
    assert bulk.json == BulkLookupResultSchema().dump({"site": "shop", "purposes": purposes, "results": results})
    expected = {"site": "shop", "subject": "user:1", "purpose": "analytics", **answers[0]["analytics"]._asdict()}
    assert single == LookupResultSchema().dump(expected)


def test_answers_for_many_purposes_at_once_come_once_each_in_the_order_asked(client, site, writer, reader):
    """Every purpose of a site in one call, a purpose asked twice answered once, in the order asked."""
    for number in range(10):
        sites.add_purpose(site, f"extra_{number}", texts={"en": {"name": f"Extra {number}"}})
    notices.publish_notice(site)
    db.session.commit()
    record(client, writer, "user:1", action="accept_all")
    record(client, writer, "user:2", decisions={"extra_3": "granted", "analytics": "denied"})
    purposes = sorted(purpose.key for purpose in site.purposes)[::-1]
    assert len(purposes) > 12
    subjects = ["user:2", "user:1", "user:unknown", "user:2"]
    body = {"site": "shop", "subjects": subjects, "purposes": [*purposes, purposes[0]]}
    response = client.post(LOOKUP, json=body, headers=reader)
    assert response.status_code == 200, response.json
    assert response.json["purposes"] == purposes
    results = response.json["results"]
    assert [list(result["purposes"]) for result in results] == [purposes] * 4
    assert results[0]["purposes"]["extra_3"]["reason"] == "granted"
    assert results[1]["purposes"]["extra_9"]["reason"] == "granted"
    assert {answer["reason"] for answer in results[2]["purposes"].values()} == {"no_record"}
    assert results[3] == {**results[0], "subject": "user:2"}


def test_a_single_lookup_is_one_statement(client, site, reader, writer, backend, monkeypatch):
    """No pre-ping, no transaction around it: the state query is the only thing sent to the database."""
    record(client, writer, "user:1", action="accept_all")
    ask(client, reader, "user:1")  # the key and the site are now kept by the worker
    db.session.remove()  # as in a request of its own: no session, no transaction
    statements: list[str] = []
    # Counted at the driver, below SQLAlchemy: lookups run their statement on the driver's connection.
    if backend == "postgresql":
        execute = psycopg.Cursor.execute

        def counted(cursor, query, *args, **kwargs):
            statements.append(query)
            return execute(cursor, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, "execute", counted)
        assert ask(client, reader, "user:1")["reason"] == "granted"
    else:

        def trace(dbapi_connection, record, proxy):
            dbapi_connection.set_trace_callback(statements.append)

        sa.event.listen(db.engine.pool, "checkout", trace)
        try:
            assert ask(client, reader, "user:1")["reason"] == "granted"
        finally:
            sa.event.remove(db.engine.pool, "checkout", trace)
            db.engine.dispose()  # no connection keeps the callback
    assert len(statements) == 1 and "consent_state" in statements[0]


def test_a_query_with_a_field_the_schema_does_not_know_is_422(client, site, reader):
    query = {"site": "shop", "subject": "user:1", "purpose": "analytics", "extra": "1"}
    response = client.get(LOOKUP, query_string=query, headers=reader)
    assert response.status_code == 422
    assert response.json["error"]["details"] == {"fields": {"extra": ["Unknown field."]}}


@pytest.mark.postgres
def test_lookups_survive_connections_the_server_closed(postgres_url):
    """After a database restart (here: every connection terminated) the next lookup still answers."""
    with running_app(postgres_url) as app:
        site = sites.create_site("shop", "Shop", origins=["https://shop.example"])
        notices.publish_notice(site)
        headers = bearer("consent:read")
        client = app.test_client()
        assert ask(client, headers, "user:1")["reason"] == "no_record"
        db.session.remove()  # every pooled connection is now idle
        closed = terminate_other_connections(postgres_url)
        assert closed >= 1
        assert ask(client, headers, "user:1")["reason"] == "no_record"


@pytest.mark.postgres
def test_a_lookup_whose_connection_died_runs_again(postgres_url):
    """A connection the server closed after the pool last looked fails the statement; the lookup runs once more."""
    with running_app(postgres_url, CMP_LOOKUP_CACHE_SECONDS=600) as app:
        site = sites.create_site("shop", "Shop", origins=["https://shop.example"])
        notices.publish_notice(site)
        headers = bearer("consent:read")
        client = app.test_client()
        assert ask(client, headers, "user:1")["reason"] == "no_record"
        db.session.remove()
        db.engine.dispose()
        assert ask(client, headers, "user:1")["reason"] == "no_record"  # the key and site kept: one connection
        # Without the checkout's look at the socket, the pool hands out the dead connection.
        sa.event.remove(Pool, "checkout", _discard_closed_connections)
        try:
            assert terminate_other_connections(postgres_url) >= 1
            assert ask(client, headers, "user:1")["reason"] == "no_record"
            bulk = {"site": "shop", "subjects": ["user:1", "user:2"], "purposes": ["analytics"]}
            assert terminate_other_connections(postgres_url) >= 1
            assert client.post(LOOKUP, json=bulk, headers=headers).status_code == 200
        finally:
            sa.event.listen(Pool, "checkout", _discard_closed_connections)


def test_a_lookup_without_its_database_is_503(site, reader, app, monkeypatch):
    """The key and site are kept a few seconds, so the database going away shows at the state query."""
    client = app.test_client()
    assert ask(client, reader, "user:1")["reason"] == "no_record"
    db.session.remove()
    unreachable = sa.create_engine("postgresql+psycopg://cmp@127.0.0.1:1/cmp", connect_args={"connect_timeout": 2})
    monkeypatch.setattr(type(db), "engine", property(lambda self: unreachable))
    response = client.get(
        LOOKUP, query_string={"site": "shop", "subject": "user:1", "purpose": "analytics"}, headers=reader
    )
    assert response.status_code == 503
    assert response.json["error"]["code"] == "unavailable"
    assert response.headers["Retry-After"] == "5"


def test_lookups_say_how_long_they_took_and_how_much_of_it_was_the_database(client, site, reader, writer):
    """W3C Server-Timing: `app` from key check to body, `db` the state query within it, on every lookup route."""
    record(client, writer, "user:1", action="accept_all")
    single = client.get(
        LOOKUP, query_string={"site": "shop", "subject": "user:1", "purpose": "analytics"}, headers=reader
    )
    bulk = client.post(
        LOOKUP, json={"site": "shop", "subjects": ["user:1", "user:2"], "purposes": ["analytics"]}, headers=reader
    )
    for response in (single, bulk):
        assert response.status_code == 200
        timings = dict(part.strip().split(";dur=") for part in response.headers["Server-Timing"].split(","))
        assert set(timings) == {"app", "db"}
        assert 0 <= float(timings["db"]) <= float(timings["app"])


@pytest.fixture(params=["suite", pytest.param("postgres", marks=pytest.mark.postgres)])
def each_database(request) -> str:
    """The suite's database, then PostgreSQL: the lookup statement is written per dialect, the rule is not."""
    return request.getfixturevalue("database_url" if request.param == "suite" else "postgres_url")


# What a state row can hold, as writers store it: (decision, action).
_STORED = [
    ("granted", "accept_all"),
    ("granted", "save"),
    ("denied", "reject_all"),
    ("denied", "withdraw"),
    ("denied", "unsubscribe"),
    ("denied", "gpc"),
    ("denied", "expire"),
]


def test_a_bulk_lookup_answers_what_the_rule_answers_from_each_subjects_stored_rows(each_database):
    """Cross-check of the bulk path (one statement, rows read as tuples, flags joined only where set, answers
    shared per subject) against the plain one: each subject's rows read one by one through the ORM, then `decide`.

    Several hundred subjects with random flags and states, some purposes without a row, identifiers asked twice
    and identifiers no one has, on the suite's database and on PostgreSQL.
    """
    chooser = random.Random(14)
    with running_app(each_database) as app:
        site = sites.create_site("shop", "Shop", origins=["https://shop.example"])
        notices.publish_notice(site)
        db.session.commit()
        event_id = record(app.test_client(), bearer("consent:write"), "user:first", action="accept_all")["event_id"]
        sites.add_cookie(
            site, "_gat", purpose="analytics", provider="Google", storage="persistent", lifetime_seconds=60
        )
        notices.publish_notice(site, material=True)
        db.session.commit()
        purposes = ["analytics", "marketing_email", "preferences"]
        now = utcnow()
        hmac_key = app.config["CMP_HMAC_KEY"]
        subjects, identifiers, states = [], [], []
        for n in range(400):
            subject_id = new_subject_id()
            subjects.append(
                {
                    "id": subject_id,
                    "site_id": site.id,
                    "restricted": chooser.random() < 0.1,
                    "child": chooser.random() < 0.15,
                }
            )
            digest = parse_identifier(f"user:{n}").digest(hmac_key, site.key)
            identifiers.append({"site_id": site.id, "subject_id": subject_id, "kind": "user", "digest": digest})
            for purpose in purposes:
                if chooser.random() < 0.2:
                    continue  # no row: no_record, or restricted
                decision, action = chooser.choice(_STORED)
                states.append(
                    {
                        "site_id": site.id,
                        "subject_id": subject_id,
                        "purpose": purpose,
                        "decision": decision,
                        "action": action,
                        "source": "api",
                        "event_id": event_id,
                        "notice_version": chooser.choice([None, 1, 2, 2]),
                        "decided_at": now - timedelta(days=chooser.randint(1, 300), microseconds=n),
                        "expires_at": chooser.choice([None, now - timedelta(days=1), now + timedelta(days=90)]),
                        "given_by": chooser.choice([None, None, "guardian"]),
                    }
                )
        db.session.execute(sa.insert(Subject), subjects)
        db.session.execute(sa.insert(SubjectIdentifier), identifiers)
        db.session.execute(sa.insert(ConsentState), states)
        db.session.commit()
        asked = [f"user:{n}" for n in chooser.sample(range(420), 420)] + ["user:3", "user:first", "user:3"]
        context = {"hmac_key": hmac_key, "visitor_ids": app.extensions["cmp.visitor_ids"], "now": now}

        def plain(subject: str, purpose: str):
            digest = parse_identifier(subject).digest(hmac_key, site.key)
            subject_id = db.session.scalar(
                sa.select(SubjectIdentifier.subject_id).where(
                    SubjectIdentifier.site_id == site.id, SubjectIdentifier.digest == digest
                )
            )
            if subject_id is None:
                return NO_RECORD
            person = db.session.get(Subject, subject_id)
            state = db.session.get(ConsentState, (site.id, subject_id, purpose))
            flags = SubjectFlags(person.restricted, person.child)
            return decide(state, flags, now, notices.last_material_version(site))

        reasons = set()
        for asking in (purposes, ["marketing_email"], ["preferences", "analytics"]):
            answers = lookup_service.lookup(site, asked, asking, **context)
            assert len(answers) == len(asked)
            for subject, by_purpose in zip(asked, answers, strict=True):
                assert list(by_purpose) == asking
                assert by_purpose == {purpose: plain(subject, purpose) for purpose in asking}, subject
                reasons.update(answer.reason for answer in by_purpose.values())
        assert reasons == EVERY_REASON


def test_the_lookup_rows_are_read_by_the_names_of_their_columns():
    """`lookup` reads each row as a named tuple, by position: its fields are the statements' columns, in order."""
    for queries in lookup_service._STATE_QUERIES.values():
        for statement in (queries.batch, queries.one):
            assert tuple(statement.selected_columns.keys()) == lookup_service._Found._fields


# Kinds right and wrong, then short text of any character, or a run of letters about the longest allowed.
_SUBJECT_LIKE = st.builds(
    "{}:{}".format,
    st.sampled_from(["user", "email", "visitor", "phone", "User", ""]),
    st.text(max_size=12) | st.integers(305, 325).map("a".__mul__),
)


@settings(max_examples=300, deadline=None)
@example(["user:" + "a" * 315, "email:" + "a" * 315])  # the longest there may be, and one longer
@example(["user:1", "user:\x07", "phone:1", 7, None, "user:"])
@example("user:1")
@given(st.lists(st.one_of(_SUBJECT_LIKE, st.text(max_size=8), st.integers(), st.none()), max_size=6) | st.text())
def test_the_bulk_subjects_field_reads_and_refuses_as_a_list_of_subject_fields(value):
    """`Subjects` reads a well-formed list in one pass: it must accept, refuse and name each error as the plain
    list of SUBJECT fields does, whatever it is sent."""

    def outcome(field):
        try:
            return field.deserialize(value)
        except ValidationError as exc:
            return exc.messages

    assert outcome(Subjects(SUBJECT)) == outcome(fields.List(SUBJECT))
