"""Exports leave as they are written: through a real HTTP server, the first bytes arrive before the body is whole.

The export's entries are held back after the first one until the client has read it. If anything on the way
buffered the body (a computed length, an ETag, compression, a hook reading it), the client would get nothing
and time out instead; no duration is asserted.
"""

from __future__ import annotations

import http.client
import json
import threading
from urllib.parse import urlsplit

import pytest

from cmp.services import export
from tests.dashboard.pages import new_key, sign_in
from tests.helpers import bearer, post_consent, serving

READ_TIMEOUT = 20


@pytest.fixture
def held_back(monkeypatch):
    """Entries the server has produced; after the first, it waits for `release` before producing more."""
    produced: list[str] = []
    release = threading.Event()
    entries = export.export_entries

    def held(selection, **options):
        for number, entry in enumerate(entries(selection, **options)):
            if number == 1:
                release.wait(READ_TIMEOUT * 3)
            produced.append(entry["entry"])
            yield entry

    monkeypatch.setattr(export, "export_entries", held)
    yield produced, release
    release.set()


@pytest.fixture
def logged(client, site):
    for action in ("accept_all", "reject_all", "accept_all"):
        assert post_consent(client, action=action).status_code == 201


def first_line_then_rest(base: str, path: str, headers: dict, produced: list[str], release: threading.Event):
    connection = http.client.HTTPConnection(urlsplit(base).netloc, timeout=READ_TIMEOUT)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        assert response.status == 200, response.read()
        first = response.readline()
        # The first line arrived while the server had produced only the export entry.
        assert produced == ["export"]
        release.set()
        return response.headers, first, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_the_api_export_is_streamed(app, site, logged, held_back, fmt):
    produced, release = held_back
    auditor = bearer("audit:read")
    with serving(app) as base:
        headers, first, rest = first_line_then_rest(
            base, f"/api/v1/audit/events?site=shop&format={fmt}", auditor, produced, release
        )
    assert headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in headers
    assert headers["X-Accel-Buffering"] == "no"
    if fmt == "jsonl":
        assert json.loads(first)["entry"] == "export"
        assert [json.loads(line)["entry"] for line in rest.splitlines()] == ["event"] * 3 + ["end"]
    else:
        assert first.startswith(b'"entry","id",')
        assert rest.count(b'"event",') == 3 and b'"end",' in rest
    assert produced == ["export", "event", "event", "event", "end"]


def test_the_dashboard_export_is_streamed(app, client, site, logged, held_back):
    produced, release = held_back
    assert sign_in(client, new_key("audit:read")).status_code == 303
    cookie = client.get_cookie("cmp_audit", path="/audit")
    with serving(app) as base:
        headers, first, rest = first_line_then_rest(
            base, "/audit/export?site=shop", {"Cookie": f"cmp_audit={cookie.value}"}, produced, release
        )
    assert headers["Content-Disposition"].startswith('attachment; filename="cmp-events-shop-')
    assert json.loads(first)["entry"] == "export" and json.loads(rest.splitlines()[-1])["entry"] == "end"
