"""Two app instances (gunicorn, the sample config) on one PostgreSQL: concurrent writes through both keep one log.

Nothing is lost: every acknowledged event is stored once and placed once, places have no gaps, every checkpoint
the instances' sequencers signed is a prefix of the one tree, and the log verifies.
"""

from __future__ import annotations

import secrets
import threading
from contextlib import ExitStack

import pytest
import requests
import sqlalchemy as sa

from cmp.extensions import db
from cmp.models import ConsentEvent, LogCheckpoint
from cmp.services import chain, keys, merkle, notes, notices, sites, tlog
from tests.conftest import make_app, migrate_to_head
from tests.helpers import CHROME, ORIGIN
from tests.instances import gunicorn, production_environment

pytestmark = pytest.mark.postgres

THREADS = 8
PER_THREAD = 24


def instance(database_url: str, secret: str, hmac_key: str):
    """One cmp instance under gunicorn with deploy/gunicorn.conf.py."""
    return gunicorn(production_environment(database_url, CMP_SECRET_KEY=secret, CMP_HMAC_KEY=hmac_key))


@pytest.fixture
def database(postgres_databases):
    url = postgres_databases.create()
    migrate_to_head(url)
    secret, hmac_key = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    app = make_app(url, CMP_SECRET_KEY=secret, CMP_HMAC_KEY=hmac_key)
    with app.app_context():
        site = sites.create_site("shop", "Shop", origins=[ORIGIN])
        notices.publish_notice(site)
        token = keys.create_key("load", ["consent:write"]).token
        db.session.commit()
        yield app, url, secret, hmac_key, token
        db.session.remove()
        db.engine.dispose()


def test_two_instances_write_one_chain_and_lose_nothing(database):
    app, url, secret, hmac_key, token = database
    with ExitStack() as stack:
        bases = [stack.enter_context(instance(url, secret, hmac_key))[0] for _ in range(2)]
        acknowledged: list[tuple[str, str]] = []
        failures: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(THREADS)

        def worker(number: int):
            session = requests.Session()
            start.wait()
            for i in range(PER_THREAD):
                base = bases[(number + i) % 2]
                if i % 2:
                    # Users shared between threads: subjects created and state rows updated concurrently.
                    response = session.post(
                        f"{base}/api/v1/sites/shop/consents",
                        json={"subject": f"user:{i % 5}", "action": "accept_all" if number % 2 else "reject_all"},
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=30,
                    )
                else:
                    response = session.post(
                        f"{base}/api/v1/sites/shop/consents",
                        json={"action": "accept_all", "notice_version": 1, "page_url": f"{ORIGIN}/p"},
                        headers={"Origin": ORIGIN, "User-Agent": CHROME},
                        timeout=30,
                    )
                with lock:
                    if response.status_code == 201:
                        acknowledged.append((base, response.json()["event_id"]))
                    else:
                        failures.append(f"{response.status_code} {response.text[:200]}")

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert failures == []
    assert len(acknowledged) == THREADS * PER_THREAD
    assert {base for base, _ in acknowledged} == set(bases)  # both instances wrote

    with app.app_context():
        site = sites.get_site("shop")
        # What the instances' sequencers had not placed when they stopped is placed now, after all they placed.
        tlog.integrate(site)
        rows = db.session.execute(sa.select(ConsentEvent.id, ConsentEvent.seq).order_by(ConsentEvent.seq)).all()
        assert sorted(event_id for event_id, _ in rows) == sorted(event_id for _, event_id in acknowledged)
        assert [seq for _, seq in rows] == list(range(1, len(rows) + 1))
        result = chain.verify_site(site)
        assert result.ok and result.checked == result.checkpoint_size == THREADS * PER_THREAD, result
        _assert_one_tree(site)


def _assert_one_tree(site) -> None:
    """Every checkpoint verifies under the log's key and each is consistent with the latest: no fork."""
    signed = [
        notes.Checkpoint.parse(notes.open_note(checkpoint.note, [tlog.log_key().verifier]).text)
        for checkpoint in db.session.scalars(
            sa.select(LogCheckpoint).where(LogCheckpoint.site_id == site.id).order_by(LogCheckpoint.size)
        )
    ]
    latest = signed[-1]
    for checkpoint in signed[:-1]:
        proof = tlog.consistency(site, checkpoint.size, latest.size)
        assert merkle.verify_consistency(checkpoint.size, latest.size, checkpoint.root, latest.root, proof), checkpoint
