"""Writes acknowledged before they are sequenced: none is lost when a process dies, the tree never forks, and
replaying the log gives exactly the current state.

The sequencer is killed (SIGKILL) while PostgreSQL holds it at each step of an integration: reading the head,
after placing the events, after moving the head. Where it stops is chosen by a lock the test holds, so every run
kills it at the same place, never by chance. A serving instance is killed in the middle of a write load.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest
import requests
import sqlalchemy as sa

from cmp.extensions import db
from cmp.models import ChainHead, ConsentEvent, ConsentState, LogCheckpoint
from cmp.services import chain, merkle, notes, notices, sites, tlog
from tests.conftest import make_app, migrate_to_head, running_app
from tests.helpers import ORIGIN, bearer
from tests.instances import ROOT, gunicorn, production_environment

WAIT = 60  # seconds: a bound on every wait, never an expectation of how long anything takes
SECRET, HMAC = "sequencing-secret-key-0123456789", "sequencing-hmac-key-9876543210ab"


def _environment(database_url: str, **settings: str) -> dict[str, str]:
    return production_environment(database_url, CMP_SECRET_KEY=SECRET, CMP_HMAC_KEY=HMAC, **settings)


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"waited {WAIT}s for {what}"
        time.sleep(0.02)


@pytest.fixture
def database(postgres_databases):
    """A migrated PostgreSQL database with the site `shop`; the app's context is pushed, its sequencer off."""
    url = postgres_databases.create()
    migrate_to_head(url)
    app = make_app(url, CMP_SECRET_KEY=SECRET, CMP_HMAC_KEY=HMAC, CMP_SEQUENCER="off")
    with app.app_context():
        site = sites.create_site("shop", "Shop", origins=[ORIGIN])
        notices.publish_notice(site)
        db.session.commit()
        yield app, url
        db.session.remove()
        db.engine.dispose()


def _write(app, count: int) -> list[str]:
    writer = bearer("consent:write")
    client = app.test_client()
    ids = []
    for n in range(count):
        response = client.post(
            "/api/v1/sites/shop/consents",
            json={"subject": f"user:{n % 7}", "action": "accept_all" if n % 2 else "reject_all"},
            headers=writer,
        )
        assert response.status_code == 201, response.json
        ids.append(response.json["event_id"])
    return ids


SEQUENCER = (
    "from cmp import create_app; from cmp.sequencer import Sequencer; app = create_app(); Sequencer(app, 1).run_once()"
)


def _blocked(connection) -> int:
    return connection.execute(sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar()


def _hold_head(connection, site_id):
    connection.execute(sa.text("SELECT 1 FROM chain_heads WHERE site_id = :s FOR UPDATE"), {"s": site_id})


def _hold_first_tile(connection, site_id):
    # The sequencer reads tiles without locking, places the events, then waits here to write the tile.
    connection.execute(
        sa.text("SELECT 1 FROM log_tiles WHERE site_id = :s AND level = 0 AND idx = 0 FOR UPDATE"), {"s": site_id}
    )


def _hold_checkpoint(size: int):
    # The same (site, size) inserted first: the sequencer's checkpoint waits on the unique key, head already moved.
    def hold(connection, site_id):
        connection.execute(
            sa.text(
                "INSERT INTO log_checkpoints (site_id, size, root, note, created_at) "
                "VALUES (:s, :size, 'x', 'x', now())"
            ),
            {"s": site_id, "size": size},
        )

    return hold


def _assert_one_tree(site) -> None:
    """Every event placed once, without gaps; the log verifies; every checkpoint is consistent with the next."""
    db.session.expire_all()
    places = db.session.scalars(sa.select(ConsentEvent.seq).order_by(ConsentEvent.seq)).all()
    assert places == list(range(1, len(places) + 1))
    assert chain.verify_site(site).ok
    checkpoints = db.session.scalars(sa.select(LogCheckpoint).order_by(LogCheckpoint.size)).all()
    verifier = tlog.log_key().verifier
    roots = []
    for checkpoint in checkpoints:
        body = notes.Checkpoint.parse(notes.open_note(checkpoint.note, [verifier]).text)
        roots.append((body.size, body.root))
    for (old, old_root), (new, new_root) in zip(roots, roots[1:], strict=False):
        proof = tlog.consistency(site, old, new)
        assert merkle.verify_consistency(old, new, old_root, new_root, proof)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "hold",
    [_hold_head, _hold_first_tile, "checkpoint"],
    ids=["reading the head", "after placing the events", "after moving the head"],
)
def test_a_sequencer_killed_mid_integration_loses_nothing_and_forks_nothing(database, hold):
    app, url = database
    site = sites.get_site("shop")
    first = _write(app, 5)
    assert tlog.integrate(site) is not None  # a first tree, so that there is a tile and a head to hold
    later = _write(app, 9)
    if hold == "checkpoint":
        hold = _hold_checkpoint(len(first) + len(later))
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as blocker:
        hold(blocker, site.id)
        process = subprocess.Popen(
            [sys.executable, "-c", SEQUENCER], cwd=ROOT, env=_environment(url, CMP_SEQUENCER="off")
        )
        try:
            _until(lambda: _blocked(blocker) > 0, "the sequencer to wait on the held lock")
            process.send_signal(signal.SIGKILL)
            assert process.wait(WAIT) == -signal.SIGKILL
        finally:
            if process.poll() is None:
                process.kill()
        blocker.rollback()
    engine.dispose()

    # Nothing of the killed round stayed: the events are pending again, the head and checkpoints as before.
    db.session.expire_all()
    assert db.session.get(ChainHead, site.id).seq == len(first)
    assert set(db.session.scalars(sa.select(ConsentEvent.id))) == set(first) | set(later)
    # The orphaned backend gives the lock back once it sees its client gone; then a new round integrates all.
    _until(lambda: tlog.integrate(site) is not None or not _pending(), "another sequencer to take over")
    while _pending():
        tlog.integrate(site)
    _assert_one_tree(site)
    assert db.session.get(ChainHead, site.id).seq == len(first) + len(later)


def _pending() -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(ConsentEvent).where(ConsentEvent.seq.is_(None)))


def _serving(url: str):
    """One instance under gunicorn, its own sequencer thread on; yields (base URL, process)."""
    return gunicorn(_environment(url, CMP_SEQUENCER="thread"))


@pytest.mark.postgres
def test_an_instance_killed_under_load_loses_no_acknowledged_write(database):
    app, url = database
    writer = bearer("consent:write")
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    with _serving(url) as (base, process):

        def write_until_stopped(number: int):
            session = requests.Session()
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    response = session.post(
                        f"{base}/api/v1/sites/shop/consents",
                        json={"subject": f"user:{number}-{n % 3}", "action": "accept_all"},
                        headers=writer,
                        timeout=10,
                    )
                except requests.RequestException:
                    return
                if response.status_code == 201:
                    with lock:
                        acknowledged.append(response.json()["event_id"])

        threads = [threading.Thread(target=write_until_stopped, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        # Killed once a good number of writes were acknowledged (a count, not a time), with more in flight.
        _until(lambda: len(acknowledged) >= 60, "60 acknowledged writes")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        stop.set()
        for thread in threads:
            thread.join(WAIT)

    site = sites.get_site("shop")
    db.session.expire_all()
    stored = set(db.session.scalars(sa.select(ConsentEvent.id)))
    assert set(acknowledged) <= stored
    while _pending():
        tlog.integrate(site)
    _assert_one_tree(site)


def test_replaying_the_log_gives_the_current_state_after_a_concurrent_load(database_url):
    """Decisions, withdrawals and erasures on shared subjects from many threads: the log, replayed in its order,
    ends exactly in the state lookups answer from."""
    with running_app(database_url) as app:
        site = sites.create_site("shop", "Shop", origins=[ORIGIN])
        notices.publish_notice(site)
        writer, dsr = bearer("consent:write"), bearer("dsr")
        start = threading.Barrier(6)

        def load(number: int):
            choose = random.Random(number)
            client = app.test_client()
            start.wait(WAIT)
            for _ in range(25):
                subject = f"user:{choose.randrange(4)}"
                kind = choose.random()
                if kind < 0.1:
                    client.post(f"/api/v1/subjects/{subject}/erase", json={"site": "shop"}, headers=dsr)
                elif kind < 0.25:
                    client.post(f"/api/v1/subjects/{subject}/withdraw", json={"site": "shop"}, headers=dsr)
                else:
                    action = choose.choice(["accept_all", "reject_all"])
                    client.post(
                        "/api/v1/sites/shop/consents",
                        json={"subject": subject, "action": action},
                        headers=writer,
                    )

        threads = [threading.Thread(target=load, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        site = sites.get_site("shop")
        while _pending():
            tlog.integrate(site)

        replayed: dict[tuple[str, str], tuple[str, str]] = {}
        for event in db.session.scalars(sa.select(ConsentEvent).order_by(ConsentEvent.seq)):
            if event.action == "erase":
                for key in [key for key in replayed if key[0] == event.subject_id]:
                    del replayed[key]
            for purpose, decision in event.decisions.items():
                replayed[(event.subject_id, purpose)] = (decision, event.id)
        state = {
            (row.subject_id, row.purpose): (row.decision, row.event_id)
            for row in db.session.scalars(sa.select(ConsentState))
        }
        assert len(state) > 0
        assert replayed == state
        assert chain.verify_site(site).ok
