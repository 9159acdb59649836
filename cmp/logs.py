"""Structured request logging: one JSON line per request, with no personal data."""

from __future__ import annotations

import logging
import sys
import time
import uuid

from flask import Flask, g, request
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID = "X-Request-ID"

log = logging.getLogger("cmp.request")


def configure_logging(app: Flask) -> None:
    root = logging.getLogger("cmp")
    if not any(getattr(h, "_cmp", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", rename_fields={"levelname": "level"})
        )
        handler._cmp = True
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(app.config["CMP_LOG_LEVEL"])

    @app.before_request
    def start_timer():
        g.started = time.perf_counter()
        incoming = request.headers.get(REQUEST_ID, "")
        g.request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex

    @app.after_request
    def log_request(response):
        response.headers[REQUEST_ID] = g.get("request_id", "")
        # The path only: query strings can carry identifiers; client addresses are not logged.
        log.info(
            "request",
            extra={
                "request_id": g.get("request_id"),
                "method": request.method,
                "path": _path(),
                "endpoint": request.endpoint,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
                # A streamed body (an audit export) is never read here: that would buffer it whole.
                "bytes": None if response.is_streamed else response.calculate_content_length(),
            },
        )
        return response


def _path() -> str:
    """The path, or for a route with a token in its path (email links) the route: a token acts for its person."""
    rule = request.url_rule
    return rule.rule if rule is not None and "<token>" in rule.rule else request.path
