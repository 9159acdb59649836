"""Small helpers the tests share."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import sqlalchemy as sa
from werkzeug.serving import make_server

from cmp.extensions import db
from cmp.models import ConsentEvent, ConsentState, Subject, SubjectIdentifier
from cmp.services import keys

ORIGIN = "https://shop.example"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)


def post_consent(client, site_key: str = "shop", *, origin: str | None = ORIGIN, headers=None, **body):
    """POST a banner decision set as a browser on `origin` would."""
    body.setdefault("notice_version", 1)
    sent = {"User-Agent": CHROME, **({"Origin": origin} if origin else {}), **(headers or {})}
    return client.post(f"/api/v1/sites/{site_key}/consents", json=body, headers=sent)


def counts() -> dict[str, int]:
    """How many rows each consent table holds: a refused request must leave these unchanged."""
    return {
        model.__tablename__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (ConsentEvent, ConsentState, Subject, SubjectIdentifier)
    }


def events(site_id: int | None = None) -> list[ConsentEvent]:
    """The log's events in its order: integrated ones by place, then pending ones in the order they will take."""
    query = sa.select(ConsentEvent).order_by(
        ConsentEvent.site_id, ConsentEvent.seq.is_(None), ConsentEvent.seq, ConsentEvent.entry, ConsentEvent.id
    )
    if site_id is not None:
        query = query.where(ConsentEvent.site_id == site_id)
    return list(db.session.scalars(query))


def tree_root(event_hashes: list[str]) -> str:
    """The RFC 9162 (section 2.1.1) root, hex, of a tree whose leaves are these event hashes (hex), in order.

    Written from the RFC's recursive definition, apart from the service's tree code, so a test can check the
    service's root against it.
    """

    def mth(leaves: list[bytes]) -> bytes:
        if not leaves:
            return hashlib.sha256(b"").digest()
        if len(leaves) == 1:
            return hashlib.sha256(b"\x00" + leaves[0]).digest()
        split = 1 << ((len(leaves) - 1).bit_length() - 1)
        return hashlib.sha256(b"\x01" + mth(leaves[:split]) + mth(leaves[split:])).digest()

    return mth([bytes.fromhex(h) for h in event_hashes]).hex()


def state(subject_id: str) -> dict[str, str]:
    rows = db.session.scalars(sa.select(ConsentState).where(ConsentState.subject_id == subject_id))
    return {row.purpose: row.decision for row in rows}


def bearer(*scopes: str, bound_to=()) -> dict[str, str]:
    """The Authorization header of a new API key with these scopes (and sites), committed."""
    token = keys.create_key("test", list(scopes), list(bound_to)).token
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def receipt_paths(client, count: int = 1) -> list[str]:
    """Record `count` Accept all decisions from the banner; the path (with its token) of each one's receipt."""
    paths = []
    for _ in range(count):
        response = post_consent(client, action="accept_all")
        assert response.status_code == 201
        parts = urlsplit(response.json["receipt_url"])
        paths.append(f"{parts.path}?{parts.query}")
    return paths


@contextmanager
def serving(app) -> Iterator[str]:
    """The app behind werkzeug's threaded WSGI server on a free loopback port; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
