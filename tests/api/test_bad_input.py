"""Hostile or out-of-range input gets its 4xx in the error shape and changes nothing, on SQLite and PostgreSQL."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.helpers import ORIGIN, bearer, counts, events, post_consent

# About 2 KB of JSON nested deeper than the parser's recursion limit.
DEEP_ARRAY = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000
PATH_VALUES = {"site_key": "shop", "subject": "user:42", "event_id": "01J0000000000000000000000"}


def assert_refused(response, status: int, code: str):
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.json["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code


def api_posts(app) -> list[str]:
    """Every JSON POST route of the API, as a path; a route added later is covered too."""
    rules = app.url_map.iter_rules()
    return sorted(_fill(rule.rule) for rule in rules if rule.rule.startswith("/api/") and "POST" in rule.methods)


def _fill(rule: str) -> str:
    for name, value in PATH_VALUES.items():
        rule = rule.replace(f"<{name}>", value).replace(f"<path:{name}>", value)
    assert "<" not in rule, f"no value for a path parameter of {rule}"
    return rule


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
@pytest.mark.parametrize("keyed", [False, True], ids=["no-key", "admin-key"])
def test_deeply_nested_json_is_malformed_on_every_json_post(app, client, site, body, keyed):
    headers = {"Origin": ORIGIN, **(bearer("admin") if keyed else {})}
    before = counts()
    paths = api_posts(app)
    assert len(paths) >= 7
    for path in paths:
        response = client.post(path, data=body, content_type="application/json", headers=headers)
        assert_refused(response, 400, "malformed_json")
    assert counts() == before


# notice_version is a 32-bit integer column on PostgreSQL; SQLite's integers stop at 2**63 - 1.
OUT_OF_RANGE_VERSIONS = [0, -1, 2**31, 2**63, 2**64]


# Every body that takes a notice version: the banner's, a server's and a subscription's.
VERSIONED = {
    "banner": lambda client, version: post_consent(client, action="accept_all", notice_version=version),
    "server": lambda client, version: client.post(
        "/api/v1/sites/shop/consents",
        json={"subject": "user:42", "action": "accept_all", "notice_version": version},
        headers=bearer("consent:write"),
    ),
    "subscription": lambda client, version: client.post(
        "/api/v1/email/subscriptions",
        json={"site": "shop", "email": "ada@example.org", "notice_version": version},
        headers=bearer("email:write"),
    ),
}


@pytest.mark.parametrize("version", OUT_OF_RANGE_VERSIONS)
@pytest.mark.parametrize("route", sorted(VERSIONED))
def test_an_out_of_range_notice_version_is_422(client, site, route, version):
    before = counts()
    assert_refused(VERSIONED[route](client, version), 422, "invalid")
    assert counts() == before


@pytest.mark.parametrize(
    "moment",
    [
        "0001-01-01T00:30:00+01:00",
        "0001-01-01T00:00:00+00:01",
        "9999-12-31T23:30:00-01:00",
        "9999-12-31T23:59:59-00:01",
    ],
)
@pytest.mark.parametrize("name", ["from", "to"])
def test_audit_times_that_overflow_in_utc_are_422(client, site, name, moment):
    response = client.get("/api/v1/audit/events", query_string={name: moment}, headers=bearer("audit:read"))
    assert_refused(response, 422, "invalid")
    assert name in response.json["error"]["details"]["fields"]


def test_audit_times_at_the_edges_of_the_calendar_are_accepted(client, site):
    query = {"from": "0001-01-01T01:00:00+01:00", "to": "9999-12-31T22:00:00-01:00"}
    response = client.get("/api/v1/audit/events", query_string=query, headers=bearer("audit:read"))
    assert response.status_code == 200


@pytest.mark.parametrize("site_key", ["sh%00op", "shop%00", "%00", "SHOP", "-shop", "x" * 64])
def test_a_site_key_outside_the_pattern_is_an_unknown_site(client, site, writer, site_key):
    before = counts()
    for method, path, kwargs in [
        ("get", f"/api/v1/sites/{site_key}/banner-config", {}),
        ("post", f"/api/v1/sites/{site_key}/consents", {"json": {"action": "accept_all", "notice_version": 1}}),
        ("post", f"/api/v1/sites/{site_key}/links", {"json": {"subjects": ["user:1", "user:2"]}, "headers": writer}),
        ("get", f"/api/v1/sites/{site_key}/receipts/01J0000000000000000000000", {"query_string": {"token": "t"}}),
        ("options", f"/api/v1/sites/{site_key}/consents", {}),
    ]:
        kwargs.setdefault("headers", {"Origin": ORIGIN})
        response = getattr(client, method)(path, **kwargs)
        assert_refused(response, 404, "unknown_site")
    assert counts() == before


@pytest.mark.parametrize("gpc", [1, 0, "true", "1", None])
def test_gpc_must_be_a_json_boolean_from_the_banner(client, site, gpc):
    before = counts()
    assert_refused(post_consent(client, action="save", gpc=gpc), 422, "invalid")
    assert counts() == before


@pytest.mark.parametrize("gpc", [1, 0, "true"])
def test_gpc_must_be_a_json_boolean_from_a_server(client, site, writer, gpc):
    before = counts()
    body = {"subject": "user:42", "action": "save", "gpc": gpc}
    assert_refused(client.post("/api/v1/sites/shop/consents", json=body, headers=writer), 422, "invalid")
    assert counts() == before


@pytest.mark.parametrize("gpc", [1, 0, "true"])
def test_gpc_must_be_a_json_boolean_for_a_subscription(client, site, sender, gpc):
    before = counts()
    body = {"site": "shop", "email": "ada@example.org", "gpc": gpc}
    assert_refused(client.post("/api/v1/email/subscriptions", json=body, headers=sender), 422, "invalid")
    assert counts() == before


def test_gpc_true_is_still_recorded(client, site):
    response = post_consent(client, action="accept_all", gpc=True)
    assert response.status_code == 201
    assert response.json["gpc"] is True


# Control characters, C0 and C1: never part of an account id or an address. "ada-4242" must never come back.
CONTROLLED = [
    "user:ada-4242\x00",
    "user:\x00ada-4242",
    "user:ada\x1b-4242",
    "user:\tada-4242",
    "user:ada-4242\x85",
    "email:ada-4242\x00@example.org",
]


def _not_echoed(response):
    assert "ada-4242" not in response.get_data(as_text=True)


@pytest.mark.parametrize("identifier", CONTROLLED)
def test_identifiers_with_control_characters_are_refused_unechoed(client, site, writer, reader, dsr, identifier):
    before = counts()
    record = client.post(
        "/api/v1/sites/shop/consents", json={"subject": identifier, "action": "accept_all"}, headers=writer
    )
    link = client.post("/api/v1/sites/shop/links", json={"subjects": ["user:1", identifier]}, headers=writer)
    one = client.get(
        "/api/v1/consents/lookup",
        query_string={"site": "shop", "subject": identifier, "purpose": "analytics"},
        headers=reader,
    )
    many = client.post(
        "/api/v1/consents/lookup",
        json={"site": "shop", "subjects": [identifier], "purposes": ["analytics"]},
        headers=reader,
    )
    for response in (record, link, one, many):
        assert_refused(response, 422, "invalid")
        _not_echoed(response)
    access = client.get(f"/api/v1/subjects/{quote(identifier)}/consents", query_string={"site": "shop"}, headers=dsr)
    assert_refused(access, 422, "invalid_subject")
    _not_echoed(access)
    assert counts() == before


@pytest.mark.parametrize("address", ["ada\x00@example.org", "ada@example.org\x00", "ada@exa\x7fmple.org"])
def test_email_addresses_with_control_characters_are_refused_unechoed(client, site, sender, address):
    before = counts()
    subscribe = client.post("/api/v1/email/subscriptions", json={"site": "shop", "email": address}, headers=sender)
    headers = client.get("/api/v1/email/headers", query_string={"site": "shop", "email": address}, headers=sender)
    links = client.post(
        "/api/v1/email/tracking-links", json={"site": "shop", "email": address, "message_id": "m-1"}, headers=sender
    )
    for response in (subscribe, headers, links):
        assert_refused(response, 422, "invalid")
        assert "ada" not in response.get_data(as_text=True)
    assert counts() == before


def test_an_unknown_identifier_kind_is_not_echoed(client, site, dsr):
    response = client.get("/api/v1/subjects/ada@example.org:x/consents", query_string={"site": "shop"}, headers=dsr)
    assert_refused(response, 422, "invalid_subject")
    assert "ada" not in response.get_data(as_text=True)


# W3C Global Privacy Control: a request carrying the signal, however its field lines are arranged, carries it.
GPC_HEADERS = [
    [("Sec-GPC", "1")],
    [("Sec-GPC", "1"), ("Sec-GPC", "1")],
    [("Sec-GPC", "0"), ("Sec-GPC", "1")],
    [("Sec-GPC", "1"), ("Sec-GPC", "0")],
    [("Sec-GPC", "0, 1")],
]


@pytest.mark.parametrize("headers", GPC_HEADERS, ids=["one", "twice", "0-then-1", "1-then-0", "combined"])
def test_any_sec_gpc_field_of_1_is_the_signal(client, site, headers):
    config = client.get("/api/v1/sites/shop/banner-config", headers=headers)
    assert config.status_code == 200
    assert config.json["gpc"] is True
    response = client.post(
        "/api/v1/sites/shop/consents",
        json={"action": "accept_all", "notice_version": 1},
        headers=[("Origin", ORIGIN), *headers],
    )
    assert response.status_code == 201, response.json
    assert response.json["gpc"] is True
    assert events()[-1].gpc is True


@pytest.mark.parametrize("headers", [[], [("Sec-GPC", "0")], [("Sec-GPC", "yes")], [("Sec-GPC", "10")]])
def test_no_sec_gpc_field_of_1_is_no_signal(client, site, headers):
    config = client.get("/api/v1/sites/shop/banner-config", headers=headers)
    assert config.json["gpc"] is False
