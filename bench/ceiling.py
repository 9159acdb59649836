"""The lookup benchmark's server: the product's app, plus the ceiling a single lookup is measured against.

`gunicorn bench.ceiling:app` serves everything `gunicorn wsgi:app` serves, set up the same way (wsgi.py), and one
more endpoint, never part of the product: GET /bench/state-row?site_id=&subject_id=&purpose= reads one
consent_state row by its key with one SQLAlchemy statement, on a pooled connection taken as a lookup takes one
(cmp.services.lookup), and answers its columns as a small JSON document. It is the least a lookup can do in this
app: what a lookup adds to it (the key check, reading the question, the identifier's digest, the subject's
flags, the rule, its answer's shape) is what the benchmark's ratio measures.
"""

from __future__ import annotations

import json
from datetime import datetime

from flask import Blueprint, current_app, request
from sqlalchemy import bindparam, select

from cmp.extensions import db
from cmp.models import ConsentState
from wsgi import app

bp = Blueprint("bench", __name__)

# What a single lookup answers with, besides the rule's verdict.
_FIELDS = ("decision", "action", "event_id", "notice_version", "decided_at", "expires_at")
_STATE_ROW = select(*(getattr(ConsentState, name) for name in _FIELDS)).where(
    ConsentState.site_id == bindparam("site_id"),
    ConsentState.subject_id == bindparam("subject_id"),
    ConsentState.purpose == bindparam("purpose"),
)


@bp.get("/bench/state-row")
def state_row():
    parameters = {
        "site_id": int(request.args["site_id"]),
        "subject_id": request.args["subject_id"],
        "purpose": request.args["purpose"],
    }
    # As a lookup reads when no unit of work is open: its own pooled connection, in autocommit on PostgreSQL
    # (no BEGIN and ROLLBACK round trips around the one statement).
    engine = db.engine
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        row = connection.execute(_STATE_ROW, parameters).first()
    state = None if row is None else {name: _plain(value) for name, value in zip(_FIELDS, row, strict=True)}
    body = json.dumps({"purpose": parameters["purpose"], "state": state}) + "\n"
    return current_app.response_class(body, mimetype="application/json")


def _plain(value):
    return value.isoformat() if isinstance(value, datetime) else value


app.register_blueprint(bp)
