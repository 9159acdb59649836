"""Liveness and readiness probes, and the Global Privacy Control support declaration."""

from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from cmp.api.openapi import describe
from cmp.errors import Unavailable
from cmp.extensions import db
from cmp.schemas.common import GpcSupportSchema, StatusSchema

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@describe("Liveness", tag="operations", responses={200: StatusSchema})
def healthz():
    """The process is up; says nothing of the database."""
    return jsonify({"status": "ok"})


# W3C Global Privacy Control, section 3.5: a site declares that it honours the signal.
GPC_SUPPORT = {"gpc": True, "lastUpdate": "2026-11-29"}


@bp.get("/.well-known/gpc.json")
@describe("Global Privacy Control support declaration", tag="operations", responses={200: GpcSupportSchema})
def gpc_support():
    response = jsonify(GPC_SUPPORT)
    response.headers["Cache-Control"] = "public, max-age=86400"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/readyz")
@describe(
    "Readiness: the database answers and is migrated", tag="operations", responses={200: StatusSchema}, errors=(503,)
)
def readyz():
    """Ready to serve: the database answers and its schema is in place."""
    try:
        db.session.execute(text("SELECT 1 FROM chain_heads LIMIT 1"))
    except SQLAlchemyError as exc:
        db.session.rollback()
        raise Unavailable(
            "not_ready", "the database is not reachable or not migrated", {"database": type(exc).__name__}
        ) from None
    return jsonify({"status": "ready", "database": "ok"})
