"""The integrity check finds what an erasure must not leave behind, in a database corrupted by hand."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cmp.extensions import db
from cmp.models import ConsentEvent, ConsentState, EmailActivity, Subject
from cmp.models.types import utcnow
from cmp.services import chain, integrity, notices, sites, tlog
from cmp.services.identifiers import new_event_id
from tests.helpers import bearer

STATE = ConsentState.__table__


@pytest.fixture
def erased(client, site) -> dict:
    """user:gone consented and was erased; user:kept consented. Their subject ids, and the erase event's."""
    writer, dsr = bearer("consent:write"), bearer("dsr")
    subjects = {}
    for name in ("gone", "kept"):
        response = client.post(
            "/api/v1/sites/shop/consents",
            json={"subject": f"user:{name}", "action": "accept_all", "ip": "203.0.113.9"},
            headers=writer,
        )
        assert response.status_code == 201, response.json
        subjects[name] = response.json["subject_id"]
    erasure = client.post("/api/v1/subjects/user:gone/erase", json={"site": "shop"}, headers=dsr)
    assert erasure.status_code == 200, erasure.json
    return {**subjects, "erase_event": erasure.json["event_id"]}


def codes(site) -> dict[str, tuple[int, list[str]]]:
    db.session.expire_all()
    return {f.code: (f.count, f.examples) for f in integrity.check_site(site).findings}


def test_a_database_after_an_erasure_is_clean(site, erased):
    assert integrity.check_site(site).ok
    assert integrity.check_site(site).as_dict() == {"ok": True, "findings": []}


def _state_row(site, subject_id: str, event_id: str, purpose: str) -> None:
    now = utcnow()
    db.session.execute(
        sa.insert(STATE).values(
            site_id=site.id,
            subject_id=subject_id,
            purpose=purpose,
            decision="granted",
            action="accept_all",
            source="api",
            event_id=event_id,
            notice_version=1,
            decided_at=now,
            expires_at=now,
        )
    )
    db.session.commit()


def test_state_rows_of_an_erased_subject_are_found(site, erased):
    for purpose in ("analytics", "preferences"):
        _state_row(site, erased["gone"], erased["erase_event"], purpose)

    assert codes(site) == {"state_without_identifier": (2, [erased["gone"]])}


@pytest.mark.parametrize("mark", ["restricted", "child"])
def test_a_mark_left_on_an_erased_subject_is_found(site, erased, mark):
    """Erasure clears what was known about the person: a restriction or a child's age outcome must go too."""
    db.session.execute(sa.update(Subject).where(Subject.id == erased["gone"]).values({mark: True}))
    # A live subject may carry either mark: that is no finding.
    db.session.execute(sa.update(Subject).where(Subject.id == erased["kept"]).values({mark: True}))
    db.session.commit()

    assert codes(site) == {"marks_without_identifier": (1, [erased["gone"]])}


def test_email_activity_of_an_erased_subject_is_found(site, erased):
    db.session.add(
        EmailActivity(
            id=new_event_id(),
            site_id=site.id,
            subject_id=erased["gone"],
            kind="open",
            message_id="m-1",
            occurred_at=utcnow(),
        )
    )
    db.session.commit()

    assert codes(site) == {"email_activity_without_identifier": (1, [erased["gone"]])}


def _event_of(site, subject_id: str) -> ConsentEvent:
    """What the race used to store: a well-formed event, so the log alone still verifies."""
    event = ConsentEvent(
        id=new_event_id(),
        subject_id=subject_id,
        action="accept_all",
        source="api",
        decisions={"analytics": "granted"},
        notice_version=1,
        notice_hash=notices.current_notice(site).content_hash,
        mode="opt_in",
        gpc=False,
        evidence_digest=chain.evidence_digest(None, None, None, None),
        received_at=utcnow(),
    )
    chain.seal(event, site)
    db.session.commit()
    return event


def test_an_event_sealed_into_the_chain_after_its_subjects_erasure_is_found(site, erased):
    event_id = _event_of(site, erased["gone"]).id
    tlog.integrate(site)

    assert chain.verify_site(site).ok
    assert codes(site) == {"event_after_erasure": (1, [event_id])}  # the erase event itself is no finding


def test_an_event_still_pending_after_its_subjects_erasure_is_found(site, erased):
    """Pending events come after every integrated one: found before the sequencer places them."""
    event_id = _event_of(site, erased["gone"]).id
    assert db.session.get(ConsentEvent, event_id).seq is None
    assert codes(site) == {"event_after_erasure": (1, [event_id])}


def test_findings_belong_to_their_site(site, erased):
    blog = sites.create_site("blog", "Blog", origins=["https://blog.example"])
    db.session.commit()
    _state_row(site, erased["gone"], erased["erase_event"], "analytics")

    assert set(codes(site)) == {"state_without_identifier"}
    assert integrity.check_site(blog).ok
