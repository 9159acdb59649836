"""Liveness and readiness probes."""

from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from cmp.api.errors import error_response
from cmp.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up; says nothing of the database."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Ready to serve: the database answers and its schema is in place."""
    try:
        db.session.execute(text("SELECT 1 FROM chain_heads LIMIT 1"))
    except SQLAlchemyError as exc:
        db.session.rollback()
        return error_response(
            503, "not_ready", "the database is not reachable or not migrated", {"database": type(exc).__name__}
        )
    return jsonify({"status": "ready", "database": "ok"})
