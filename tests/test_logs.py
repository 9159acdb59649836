"""Structured request logs: one JSON line per request, without query strings or client addresses."""

from __future__ import annotations

import json
import logging

import pytest


class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def request_log():
    logger = logging.getLogger("cmp.request")
    handler = Records()
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(previous)


def test_each_request_logs_one_structured_line(client, site, request_log):
    response = client.get(
        "/api/v1/sites/shop/banner-config?locale=de&email=someone@example.org",
        headers={"X-Request-ID": "abc123"},
        environ_base={"REMOTE_ADDR": "203.0.113.77"},
    )
    assert response.headers["X-Request-ID"] == "abc123"
    [record] = request_log.records
    assert record.path == "/api/v1/sites/shop/banner-config"
    assert record.status == 200 and record.method == "GET" and record.request_id == "abc123"
    assert record.duration_ms >= 0

    cmp_handler = next(h for h in logging.getLogger("cmp").handlers if getattr(h, "_cmp", False))
    line = cmp_handler.format(record)
    data = json.loads(line)
    assert data["path"] == "/api/v1/sites/shop/banner-config" and data["status"] == 200
    assert "someone@example.org" not in line and "203.0.113.77" not in line


def test_request_id_is_generated_when_absent_or_unusable(client, site, request_log):
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert len(generated) == 32
    replaced = client.get("/healthz", headers={"X-Request-ID": "x" * 500}).headers["X-Request-ID"]
    assert replaced != "x" * 500
