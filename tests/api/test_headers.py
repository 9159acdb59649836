"""Every route, whatever it answers: a Cache-Control (no-store unless the view chose caching), nosniff, and a CSP
on every HTML page."""

from __future__ import annotations

import re

import pytest

from cmp.services.demo import seed_demo
from tests.helpers import ORIGIN, bearer, post_consent

# Views that choose to be cached, and what they choose: nothing in them is personal.
CACHEABLE = {
    "banner.script": "public",
    "banner.pinned_script": "public",
    "health.gpc_support": "public",
    "openapi.document": "public",
    "sites.banner_config": "private",
}


def _requests(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: "shop" if m.group(1) == "site_key" else "x", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, path


@pytest.mark.parametrize("authorised", [False, True])
def test_every_route_sends_safe_headers(app, client, site, authorised):
    seed_demo("http://localhost")
    headers = bearer("admin") if authorised else {}
    assert post_consent(client, action="accept_all").status_code == 201
    checked = 0
    for endpoint, method, path in _requests(app):
        response = client.open(path, method=method, headers={**headers, "Origin": ORIGIN}, json={})
        # A streamed export is closed here, in its own request's context, not whenever it is collected.
        response.close()
        where = f"{method} {path} ({endpoint}) -> {response.status_code}"
        cache_control = response.headers.get("Cache-Control", "")
        if response.status_code == 200 and endpoint in CACHEABLE:
            assert CACHEABLE[endpoint] in cache_control, where
        else:
            assert "no-store" in cache_control, where
        assert response.headers.get("X-Content-Type-Options") == "nosniff", where
        if response.mimetype == "text/html":
            policy = response.headers.get("Content-Security-Policy", "")
            assert "frame-ancestors" in policy and "base-uri 'none'" in policy, where
        checked += 1
    assert checked >= 20
