"""Structured request logging: one JSON line per request, with no personal data."""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid

from flask import Flask, g, request
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID = "X-Request-ID"
# A caller's request id is kept only when it looks like one, so a client cannot write what it likes into the log.
CALLER_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Route parameters that name no person, logged as sent when the request succeeded (so the value named a real site,
# chart or script) and has the shape of a key; any other (a subject identifier, an email link's token, an event
# id, whatever a refused request typed) is logged as the route's placeholder.
PLAIN_PARAMETERS = frozenset({"site_key", "name", "digest"})
PLAIN_VALUE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
PARAMETER = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")

log = logging.getLogger("cmp.request")

# The development server's access line: `ADDRESS - - [DATE] "METHOD PATH VERSION" STATUS SIZE` (werkzeug).
SERVER_ACCESS_LINE = re.compile(r'\S+ - - \[[^\]]*\] "')


class DropAccessLines(logging.Filter):
    """Drop the development server's own access lines: they carry the raw path, subject or token included.

    `cmp run` serves through werkzeug, which logs each request line as received; cmp's request log above says
    the same without identifiers. Production serves through gunicorn, whose access log is off (deploy/).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and SERVER_ACCESS_LINE.match(record.msg))


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
    server = logging.getLogger("werkzeug")
    if not any(isinstance(f, DropAccessLines) for f in server.filters):
        server.addFilter(DropAccessLines())

    @app.before_request
    def start_timer():
        g.started = time.perf_counter()
        incoming = request.headers.get(REQUEST_ID, "")
        g.request_id = incoming if CALLER_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex

    @app.after_request
    def log_request(response):
        response.headers[REQUEST_ID] = g.get("request_id", "")
        # The path only: query strings can carry identifiers; client addresses are not logged.
        log.info(
            "request",
            extra={
                "request_id": g.get("request_id"),
                "method": request.method,
                "path": _path(response.status_code),
                "endpoint": request.endpoint,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
                # A streamed body (an audit export) is never read here: that would buffer it whole.
                "bytes": None if response.is_streamed else response.calculate_content_length(),
            },
        )
        return response


def _path(status: int) -> str | None:
    """The route, with only the parameters that name no person filled in; None when no route matched.

    Paths carry identifiers: a subject (`email:...`, `user:...`) on the rights routes, a token that acts for its
    person on email links. An unmatched path is whatever the client sent, so it is not logged at all.
    """
    rule = request.url_rule
    if rule is None:
        return None
    values = request.view_args or {}

    def fill(match: re.Match) -> str:
        name = match.group(1)
        value = values.get(name)
        if status < 400 and name in PLAIN_PARAMETERS and isinstance(value, str) and PLAIN_VALUE.fullmatch(value):
            return value
        return f"<{name}>"

    return PARAMETER.sub(fill, rule.rule)
