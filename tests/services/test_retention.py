"""Retention: old grants expire into the log, old evidence is emptied, old events go behind a checkpoint."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cmp.extensions import db
from cmp.models import ChainCheckpoint, ConsentEvent, EmailActivity, LogTile, SubjectIdentifier
from cmp.models.types import utcnow
from cmp.services import chain, merkle, notes, retention, tlog
from cmp.services import consent as consent_service
from cmp.services.identifiers import new_event_id
from cmp.vocabulary import Action, Source
from tests.helpers import counts, events, post_consent, tree_root
from tests.services.test_rollups import assert_rollups_match_the_scan, rollup_rows

LOOKUP = "/api/v1/consents/lookup"
NOW = utcnow()
# Seven years ago: past the default proof period (life of consent plus five years). 400 days ago: a grant
# of the default 12 months has run out, but the event is still within every retention limit.
OLD = NOW - timedelta(days=7 * 365)
RECENT = NOW - timedelta(days=400)


def record(client, headers, monkeypatch, subject: str, action: str, at):
    """Record a server-side decision as if it happened at `at`."""
    monkeypatch.setattr(consent_service, "utcnow", lambda: at)
    response = client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": subject, "action": action, "ip": "203.0.113.9", "user_agent": "curl/8", "page_url": None},
        headers=headers,
    )
    monkeypatch.undo()
    assert response.status_code == 201, response.json
    return response.json["event_id"]


def answer(client, headers, subject: str, purpose: str = "analytics") -> dict:
    response = client.get(
        LOOKUP, query_string={"site": "shop", "subject": subject, "purpose": purpose}, headers=headers
    )
    assert response.status_code == 200, response.json
    return response.json


@pytest.fixture
def history(client, site, writer, monkeypatch):
    """Three decisions seven years old, two 400 days old, each by another user."""
    ids = {}
    for subject, action, at in (
        ("user:a", "accept_all", OLD),
        ("user:b", "reject_all", OLD),
        ("user:c", "accept_all", OLD),
        ("user:d", "accept_all", RECENT),
        ("user:e", "reject_all", RECENT),
    ):
        ids[subject] = record(client, writer, monkeypatch, subject, action, at)
    return ids


def purge(app, site, **options):
    with app.app_context():
        return retention.purge_site(
            site, retention.Policy.from_settings(app.config), hmac_key=app.config["CMP_HMAC_KEY"], **options
        )


def test_a_dry_run_reports_what_would_go_and_changes_nothing(app, site, history):
    before = counts()
    report = purge(app, site, dry_run=True)
    # Two purposes each of a, c and d: accept all never grants email tracking, which needs its own decision.
    assert (report.expired_subjects, report.expired_grants) == (3, 6)
    assert report.evidence_emptied == 3
    assert report.events_removed == 3 and report.checkpoint["seq"] == 3
    assert report.state_rows_removed == 4  # user:b's refusal of every refusable purpose
    db.session.expire_all()
    assert counts() == before
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ChainCheckpoint)) == 0
    assert all(event.evidence_salt is not None for event in events())


def integrate(app, site) -> None:
    """Place the events a purge recorded (expiries): a service called outside a request leaves them pending."""
    with app.app_context():
        tlog.integrate(site)
    db.session.expire_all()


def test_purge_expires_empties_removes_and_the_chain_still_verifies(app, client, site, history, reader):
    removed_hash = events()[2].hash
    report = purge(app, site)

    assert (report.expired_subjects, report.expired_grants, report.skipped) == (3, 6, 0)
    assert report.events_removed == 3 and report.subjects_removed == 1
    integrate(app, site)
    log = events()
    # What is left: the two recent decisions, then one expire event for each expired grant.
    assert [e.seq for e in log] == [4, 5, 6, 7, 8]
    assert [e.action for e in log[2:]] == ["expire"] * 3
    assert all(e.source == "system" and set(e.decisions.values()) == {"denied"} for e in log[2:])
    checkpoint = db.session.scalars(sa.select(ChainCheckpoint)).one()
    assert (checkpoint.seq, checkpoint.hash, checkpoint.removed) == (3, removed_hash, 3)

    result = chain.verify_site(site)
    assert result.ok and result.checked == 5 and result.checkpoint_size == 8, result

    assert answer(client, reader, "user:a")["reason"] == "expired"
    assert answer(client, reader, "user:d")["reason"] == "expired"
    assert answer(client, reader, "user:e")["reason"] == "denied"
    # user:b's only decision is past its proof period: nothing is left of them, and nothing is allowed.
    gone = answer(client, reader, "user:b")
    assert gone["reason"] == "no_record" and gone["allowed"] is False
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SubjectIdentifier)) == 4


def test_purge_keeps_the_leaves_and_a_removed_position_is_still_in_the_signed_tree(app, site, history):
    removed = [(e.id, e.seq, e.hash) for e in events()[:3]]
    purge(app, site)
    integrate(app, site)
    ids = [event_id for event_id, _, _ in removed]
    assert db.session.scalars(sa.select(ConsentEvent).where(ConsentEvent.id.in_(ids))).all() == []
    hashes = [digest for _, _, digest in removed]
    assert chain.removed_leaves(site.id, 3) == [merkle.leaf_hash(bytes.fromhex(digest)) for digest in hashes]

    latest = tlog.latest_checkpoint(site.id)
    signed = notes.Checkpoint.parse(notes.open_note(latest.note, [tlog.log_key().verifier]).text)
    assert signed.root.hex() == tree_root(hashes + [e.hash for e in events()])
    # No row is left for the second event, but its leaf is, and the log's signed tree still includes it.
    _, seq, digest = removed[1]
    index = seq - 1
    proof = merkle.inclusion_proof(index, signed.size, tlog.tile_reader(site.id))
    leaf = merkle.leaf_hash(bytes.fromhex(digest))
    assert merkle.verify_inclusion(leaf, index, signed.size, proof, signed.root)
    assert not merkle.verify_inclusion(leaf, index + 1, signed.size, proof, signed.root)


def test_the_proof_endpoint_says_which_positions_were_removed_and_every_proof_verifies(app, client, site, history):
    leaves = [merkle.leaf_hash(bytes.fromhex(event.hash)) for event in events()]
    purge(app, site)  # removes the first three events: their leaves stay in the tree
    integrate(app, site)
    latest = notes.Checkpoint.parse(
        notes.open_note(client.get("/api/v1/sites/shop/log/checkpoint").text, [tlog.log_key().verifier]).text
    )

    for index, leaf in enumerate(leaves):
        proof = client.get(f"/api/v1/sites/shop/log/proofs/inclusion?index={index}").json
        hashes = [base64.b64decode(h) for h in proof["hashes"]]
        assert base64.b64decode(proof["leaf_hash"]) == leaf
        assert merkle.verify_inclusion(leaf, index, latest.size, hashes, latest.root)
        assert proof["removed"] is (index < 3)


def test_a_removed_leaf_changed_in_the_tiles_is_caught(app, site, history):
    purge(app, site)
    integrate(app, site)
    tiles = LogTile.__table__
    where = (tiles.c.site_id == site.id) & (tiles.c.level == 0) & (tiles.c.idx == 0)
    stored = db.session.scalar(sa.select(tiles.c.hashes).where(where))
    db.session.execute(sa.update(tiles).where(where).values(hashes=bytes(32) + stored[32:]))
    db.session.commit()
    result = chain.verify_site(site)
    assert not result.ok
    assert "root" in result.reason


def test_purge_removes_only_integrated_events(app, site, history, monkeypatch):
    """An old event still waiting for the sequencer has no place yet: no prefix of the tree can hold it."""
    monkeypatch.setattr(consent_service, "utcnow", lambda: OLD)
    request = consent_service.ConsentRequest(
        site=site,
        identifier=None,
        subject_id=events()[4].subject_id,  # user:e, who refused: nothing of theirs expires
        action=Action.WITHDRAW,
        source=Source.SYSTEM,
        notice_version=1,
    )
    pending = consent_service.record_consent(
        request, hmac_key=app.config["CMP_HMAC_KEY"], lifetimes=consent_service.Lifetimes.from_settings(app.config)
    ).id
    monkeypatch.undo()
    report = purge(app, site)
    assert report.events_removed == 3
    integrate(app, site)
    assert db.session.get(ConsentEvent, pending).seq == 6  # placed after the five decisions, before the expiries
    result = chain.verify_site(site)
    assert result.ok and result.checked == 6, result


def test_evidence_is_emptied_after_its_limit_and_the_digest_stays(app, site, history, monkeypatch):
    app.config["CMP_PROOF_PERIOD_DAYS"] = 10 * 365  # keep the events: only their evidence is old enough to go
    digests = {e.id: e.evidence_digest for e in events()}
    report = purge(app, site)
    assert report.evidence_emptied == 3 and report.events_removed == 0
    integrate(app, site)
    for event in events():
        assert event.evidence_digest == digests.get(event.id, event.evidence_digest)
        emptied = event.received_at < NOW - timedelta(days=3 * 365)
        values = (event.ip_prefix, event.user_agent, event.evidence_salt)
        assert (values == (None, None, None)) is emptied, event
    assert chain.verify_site(site).ok


def test_old_email_activity_goes_with_the_evidence(app, site, history):
    subject_id = events()[0].subject_id
    for kind, at in (("open", OLD), ("click", NOW)):
        db.session.add(
            EmailActivity(
                id=new_event_id(), site_id=site.id, subject_id=subject_id, kind=kind, message_id="m-1", occurred_at=at
            )
        )
    db.session.commit()
    app.config["CMP_PROOF_PERIOD_DAYS"] = 10 * 365
    assert purge(app, site).activity_removed == 1
    assert db.session.scalars(sa.select(EmailActivity.kind)).all() == ["click"]


def test_purging_again_changes_nothing(app, site, history):
    purge(app, site)
    db.session.expire_all()
    before = (counts(), [(e.id, e.evidence_salt) for e in events()])
    again = purge(app, site)
    assert (again.expired_grants, again.evidence_emptied, again.events_removed, again.checkpoint) == (0, 0, 0, None)
    db.session.expire_all()
    assert (counts(), [(e.id, e.evidence_salt) for e in events()]) == before
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ChainCheckpoint)) == 1


def test_the_chain_continues_after_a_checkpoint(app, client, site, history, writer, monkeypatch):
    purge(app, site)
    record(client, writer, monkeypatch, "user:f", "accept_all", utcnow())
    db.session.expire_all()
    result = chain.verify_site(site)
    # The request integrated the purge's three expiries with its own event.
    assert result.ok and (result.checked, result.checkpoint_size) == (6, 9)


def test_a_removed_checkpoint_is_caught(app, site, history):
    purge(app, site)
    db.session.execute(sa.delete(ChainCheckpoint))
    db.session.commit()
    result = chain.verify_site(site)
    assert not result.ok
    assert "sequence gap: expected 1, found 4" in result.reason


def test_a_grant_decided_again_meanwhile_is_not_expired(app, client, site, history, writer, reader, monkeypatch):
    """Each expiry records only if the state is still the expired one, checked under the chain lock."""
    expired_grants = retention._expired_grants

    def then_user_d_decides_again(*args):
        found = expired_grants(*args)
        record(client, writer, monkeypatch, "user:d", "accept_all", utcnow())
        monkeypatch.setattr(retention, "_expired_grants", then_user_d_decides_again)
        return found

    monkeypatch.setattr(retention, "_expired_grants", then_user_d_decides_again)
    report = purge(app, site)
    assert report.skipped == 1 and report.expired_subjects == 2
    assert answer(client, reader, "user:d")["reason"] == "granted"
    integrate(app, site)
    result = chain.verify_site(site)
    assert result.ok and result.checked == 5, result


def test_purge_command(app, runner, site, history):
    dry = runner.invoke(args=["purge", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["events_removed"] == 3
    done = runner.invoke(args=["purge", "--site", "shop"])
    assert done.exit_code == 0, done.output
    assert "shop: did expire 6 grant(s) of 3 subject(s)" in done.output
    assert "chain resumes after seq 3" in done.output
    integrate(app, site)
    verify = runner.invoke(args=["verify", "--site", "shop"])
    assert verify.exit_code == 0 and "ok, 5 events checked" in verify.output


def test_purge_of_every_site_reports_counts_in_text_and_json(app, client, runner, site, writer, monkeypatch):
    """A cron run over several sites where events go: counts per site, and JSON that parses for every site."""
    from cmp.services import notices, sites

    blog = sites.create_site("blog", "Blog", origins=["https://shop.example"])
    notices.publish_notice(blog)
    db.session.commit()
    for subject, at in (("user:a", OLD), ("user:b", OLD), ("user:c", RECENT)):
        record(client, writer, monkeypatch, subject, "reject_all", at)
        monkeypatch.setattr(consent_service, "utcnow", lambda at=at: at)
        response = client.post(
            "/api/v1/sites/blog/consents", json={"subject": subject, "action": "reject_all"}, headers=writer
        )
        monkeypatch.undo()
        assert response.status_code == 201, response.json

    text = runner.invoke(args=["purge", "--dry-run"])
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert [line.split(":")[0] for line in lines] == ["blog", "shop"]
    for line in lines:
        assert "2 event(s), 8 state row(s)" in line and "chain resumes after seq 2" in line

    done = runner.invoke(args=["purge", "--json"])
    assert done.exit_code == 0, done.output
    reports = [json.loads(line) for line in done.output.splitlines()]
    assert [(r["site"], r["events_removed"], r["state_rows_removed"]) for r in reports] == [
        ("blog", 2, 8),
        ("shop", 2, 8),
    ]
    assert all(r["checkpoint"]["seq"] == 2 and r["dry_run"] is False for r in reports)

    again = runner.invoke(args=["purge"])
    assert again.exit_code == 0, again.output
    assert all("0 event(s), 0 state row(s) and 0 subject(s)" in line for line in again.output.splitlines())


def test_purge_takes_the_removed_decisions_out_of_the_dashboards_figures(app, client, site, monkeypatch):
    for action, at in (("accept_all", OLD), ("reject_all", OLD), ("accept_all", RECENT)):
        monkeypatch.setattr(consent_service, "utcnow", lambda at=at: at)
        assert post_consent(client, action=action).status_code == 201
        monkeypatch.undo()
    counted_before = rollup_rows()
    assert purge(app, site).events_removed == 2
    integrate(app, site)
    # The figures are those of the banner decisions the log still holds, as a count of them gives.
    assert rollup_rows() != counted_before
    assert_rollups_match_the_scan(site)
