"""Concurrent writers: every event stored once, the chain never forks, and verification passes."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import sqlalchemy as sa

from cmp.extensions import db
from cmp.models import ConsentEvent, ConsentState
from cmp.services import chain, integrity, keys, notices, sites
from tests.conftest import clear_database, make_app
from tests.helpers import ORIGIN, post_consent

ACTIONS = ("accept_all", "reject_all", "withdraw")


def _hammer(app, threads: int, per_thread: int) -> list:
    """Each thread writes `per_thread` events: new visitors, its own returning visitor, and users shared with
    other threads (so subjects are created concurrently and the same state rows are contended)."""
    token = keys.create_key("load", ["consent:write"]).token
    db.session.commit()
    results: list = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def worker(number: int):
        client = app.test_client()
        visitor = None
        start.wait()
        for i in range(per_thread):
            action = ACTIONS[(number + i) % 3]
            if i % 3 == 0:
                response = post_consent(client, action=action)
            elif i % 3 == 1:
                response = post_consent(client, action=action, **({"visitor_id": visitor} if visitor else {}))
                visitor = response.json.get("visitor_id", visitor) if response.status_code == 201 else visitor
            else:
                response = client.post(
                    "/api/v1/sites/shop/consents",
                    json={"subject": f"user:shared-{i % 4}", "action": action},
                    headers={"Authorization": f"Bearer {token}"},
                )
            with lock:
                results.append((response.status_code, response.json))

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return results


def _check(site_id: int, results: list, expected: int):
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: expected}, [body for status, body in results if status != 201][:3]
    rows = db.session.execute(
        sa.select(ConsentEvent.id, ConsentEvent.seq, ConsentEvent.subject_id).where(ConsentEvent.site_id == site_id)
    ).all()
    assert len(rows) == expected
    assert sorted(seq for _, seq, _ in rows) == list(range(1, expected + 1))  # no fork, no gap
    assert {row.id for row in rows} == {body["event_id"] for _, body in results}  # every acknowledged event, once
    site = sites.get_site("shop")
    result = chain.verify_site(site)
    assert result.ok and result.checked == expected, result
    assert integrity.check_site(site).ok

    # The current state is the latest event's decision for each subject and purpose.
    latest: dict = {}
    for event in db.session.scalars(
        sa.select(ConsentEvent).where(ConsentEvent.site_id == site_id).order_by(ConsentEvent.seq)
    ):
        for purpose, decision in event.decisions.items():
            latest[(event.subject_id, purpose)] = (decision, event.id)
    current = {
        (row.subject_id, row.purpose): (row.decision, row.event_id)
        for row in db.session.scalars(sa.select(ConsentState).where(ConsentState.site_id == site_id))
    }
    assert current == latest


def _seed():
    site = sites.create_site("shop", "Shop", origins=[ORIGIN])
    notices.publish_notice(site)
    db.session.commit()
    return site.id


@pytest.mark.postgres
def test_sixteen_writers_on_postgresql(postgres_url):
    app = make_app(postgres_url, CMP_DB_POOL_SIZE=16)
    try:
        with app.app_context():
            site_id = _seed()
            results = _hammer(app, threads=16, per_thread=64)
            db.session.remove()
            _check(site_id, results, 16 * 64)
            db.session.remove()
            db.engine.dispose()
    finally:
        clear_database(postgres_url)


def test_concurrent_writers_on_the_suites_database(app):
    site_id = _seed()
    results = _hammer(app, threads=8, per_thread=24)
    db.session.remove()
    _check(site_id, results, 8 * 24)
