"""Authentication comes before validation: a keyed route tells a caller without a valid key nothing else.

Every API route is walked from the app's URL map, so a route added later is held to this too, unless it is
listed below as one that takes no key.
"""

from __future__ import annotations

import re

import pytest

from tests.helpers import ORIGIN, counts

# API routes a caller may use without a key: the banner's (allowed by Origin) and links with a signed token.
WITHOUT_KEY = {
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/sites/<site_key>/banner-config"),
    ("OPTIONS", "/api/v1/sites/<site_key>/banner-config"),
    ("OPTIONS", "/api/v1/sites/<site_key>/consents"),
    ("POST", "/api/v1/sites/<site_key>/consents"),
    ("GET", "/api/v1/sites/<site_key>/receipts/<event_id>"),
    # The transparency log is public, as such logs are: checkpoints, tiles and proofs hold hashes, never content;
    # a cosignature authenticates itself (it must verify under a witness key the operator registered).
    ("GET", "/api/v1/sites/<site_key>/log/checkpoint"),
    ("GET", "/api/v1/sites/<site_key>/log/checkpoints/<int:size>"),
    ("GET", "/api/v1/sites/<site_key>/log/tile/<path:path>"),
    ("GET", "/api/v1/sites/<site_key>/log/proofs/inclusion"),
    ("GET", "/api/v1/sites/<site_key>/log/proofs/consistency"),
    ("POST", "/api/v1/sites/<site_key>/log/cosignatures"),
}
PATH_VALUES = {"site_key": "shop", "subject": "user:42", "event_id": "01J0000000000000000000000"}
# Something wrong with every parameter any route reads, and one it does not know.
BAD_QUERY = {
    "site": "Not A Site!",
    "subject": "nobody",
    "purpose": "Not A Purpose",
    "email": "not an address",
    "locale": "??",
    "from": "yesterday",
    "to": "0001-01-01T00:00:00+01:00",
    "format": "xml",
    "unexpected": "1",
}
BAD_BODY = {
    "site": "Not A Site!",
    "subject": "nobody",
    "subjects": "user:1",
    "purposes": 7,
    "email": 1,
    "notice_version": 2**63,
    "gpc": 1,
    "unexpected": True,
}
BAD_KEYS = {
    "missing": ({}, "missing_api_key"),
    "unknown": ({"Authorization": "Bearer cmp_0123456789abcdef_not-the-secret"}, "invalid_api_key"),
    # RFC 6750 section 2.1: a bearer token is a b64token; these are not (PostgreSQL refuses NUL in text).
    "nul": ({"Authorization": "Bearer cmp_01234567\x0089abcdef_secret"}, "invalid_api_key"),
    "control": ({"Authorization": "Bearer cmp_0123456789abcdef_se\x7fcret"}, "invalid_api_key"),
    "not-a-token": ({"Authorization": "Bearer cmp 0123456789abcdef secret"}, "invalid_api_key"),
}


def _fill(rule: str) -> str:
    for name, value in PATH_VALUES.items():
        rule = rule.replace(f"<{name}>", value).replace(f"<path:{name}>", value)
    assert "<" not in rule, f"no value for a path parameter of {rule}: add one to PATH_VALUES"
    return rule


def keyed_routes(app) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"} or rule.methods & {"OPTIONS"}):
            if (method, rule.rule) not in WITHOUT_KEY:
                routes.append((method, rule.rule))
    return routes


@pytest.mark.parametrize("kind", sorted(BAD_KEYS))
def test_every_keyed_route_answers_401_before_reading_its_parameters(app, client, site, kind):
    headers, code = BAD_KEYS[kind]
    routes = keyed_routes(app)
    assert len(routes) >= 12
    before = counts()
    wrong = []
    for method, rule in routes:
        response = client.open(_fill(rule), method=method, query_string=BAD_QUERY, json=BAD_BODY, headers=headers)
        if response.status_code != 401 or response.json["error"]["code"] != code:
            wrong.append(f"{method} {rule}: {response.status_code} {response.get_data(as_text=True)[:120]}")
    assert wrong == []
    assert counts() == before


def test_the_banner_post_with_a_bad_key_is_401_whatever_its_body(client, site):
    before = counts()
    response = client.post(
        "/api/v1/sites/shop/consents",
        query_string=BAD_QUERY,
        json=BAD_BODY,
        headers={"Origin": ORIGIN, **BAD_KEYS["unknown"][0]},
    )
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_api_key"
    assert counts() == before


def test_every_route_that_takes_no_key_still_exists(app):
    rules = {(method, rule.rule) for rule in app.url_map.iter_rules() for method in rule.methods}
    assert WITHOUT_KEY <= rules


def test_the_description_says_which_routes_take_a_key(app, client):
    paths = client.get("/api/v1/openapi.json").json["paths"]

    def operation(method: str, rule: str) -> dict:
        return paths[re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)][method.lower()]

    assert all(operation(method, rule).get("security") for method, rule in keyed_routes(app))
    # Without a key: no security at all, but for the banner's POST, where a key is one of two ways in.
    optional = {("POST", "/api/v1/sites/<site_key>/consents")}
    assert not any(operation(method, rule).get("security") for method, rule in WITHOUT_KEY - optional)
    assert {} in operation(*next(iter(optional)))["security"]
