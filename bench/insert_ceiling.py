"""The write benchmark's server: the product's app, plus the plain durable insert a consent write is measured against.

`gunicorn bench.insert_ceiling:app` serves everything `gunicorn wsgi:app` serves, set up the same way (wsgi.py),
and one more endpoint, never part of the product: POST /bench/plain-insert reads the body exactly as the banner's
consent POST does (`json_body`, then `BannerConsentSchema`), inserts one row into the benchmark's own table
(`bench.consent_writes.PLAIN_INSERTS`, created by the benchmark) through the app's session and commits. It is the
least a durable write of this app costs: what a consent write adds to it (the site and its origin, evidence,
the subject, the event's hash, the log's queue, the current state, the receipt and the signed entry) is what
the benchmark's ratio measures.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import insert

from bench.consent_writes import PLAIN_INSERTS
from cmp.api.requests import json_body
from cmp.extensions import db
from cmp.models.types import utcnow
from cmp.schemas.consent import banner_consent_schema
from wsgi import app

bp = Blueprint("bench_writes", __name__)


@bp.post("/bench/plain-insert")
def plain_insert():
    data = banner_consent_schema.load(json_body())
    row = db.session.execute(
        insert(PLAIN_INSERTS)
        .values(
            action=data["action"],
            notice_version=data["notice_version"],
            locale=data["locale"],
            page_url=data["page_url"],
            gpc=data["gpc"],
            received_at=utcnow(),
        )
        .returning(PLAIN_INSERTS.c.id)
    ).scalar_one()
    db.session.commit()
    return jsonify({"id": row}), 201


app.register_blueprint(bp)
