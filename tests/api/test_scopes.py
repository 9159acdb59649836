"""Every route that takes an API key, by every scope: allowed or refused; bound keys; no key or a bad key."""

from __future__ import annotations

import re

import pytest

from cmp.extensions import db
from cmp.services import sites
from tests.helpers import bearer

LOOKUP = "/api/v1/consents/lookup"
ADDRESS = "ada@example.org"

# route -> (method, path, request arguments)
REQUESTS = {
    "lookup": ("GET", LOOKUP, {"query_string": {"site": "shop", "subject": "user:1", "purpose": "analytics"}}),
    "bulk lookup": ("POST", LOOKUP, {"json": {"site": "shop", "subjects": ["user:1"], "purposes": ["analytics"]}}),
    "record": ("POST", "/api/v1/sites/shop/consents", {"json": {"subject": "user:1", "action": "accept_all"}}),
    "link": ("POST", "/api/v1/sites/shop/links", {"json": {"subjects": ["user:1", f"email:{ADDRESS}"]}}),
    "subscribe": ("POST", "/api/v1/email/subscriptions", {"json": {"site": "shop", "email": ADDRESS}}),
    "headers": ("GET", "/api/v1/email/headers", {"query_string": {"site": "shop", "email": ADDRESS}}),
    "tracking links": (
        "POST",
        "/api/v1/email/tracking-links",
        {"json": {"site": "shop", "email": ADDRESS, "message_id": "m-1"}},
    ),
    "access": ("GET", f"/api/v1/subjects/email:{ADDRESS}/consents", {"query_string": {"site": "shop"}}),
    "withdraw": ("POST", f"/api/v1/subjects/email:{ADDRESS}/withdraw", {"json": {"site": "shop"}}),
    "erase": ("POST", f"/api/v1/subjects/email:{ADDRESS}/erase", {"json": {"site": "shop"}}),
}
REQUESTS.update(
    {
        "audit events": ("GET", "/api/v1/audit/events", {"query_string": {"site": "shop"}}),
        "audit notices": ("GET", "/api/v1/audit/notices", {"query_string": {"site": "shop"}}),
        "audit verify": ("GET", "/api/v1/audit/verify", {"query_string": {"site": "shop"}}),
    }
)
BAD_KEYS = [{"Authorization": "Bearer cmp_0123456789abcdef_wrong"}, {"Authorization": "Token abc"}]


def call(client, route: str, headers: dict):
    method, path, arguments = REQUESTS[route]
    return client.open(path, method=method, headers=headers, **arguments)


NEEDS = {
    "lookup": "consent:read",
    "bulk lookup": "consent:read",
    "record": "consent:write",
    "link": "consent:write",
    "subscribe": "email:write",
    "headers": "email:write",
    "tracking links": "email:write",
    "access": "dsr",
    "withdraw": "dsr",
    "erase": "dsr",
}
NEEDS.update({"audit events": "audit:read", "audit notices": "audit:read", "audit verify": "audit:read"})
# Restriction, correction and a child's age, about the recipient below.
RIGHTS = {"restrict": {}, "unrestrict": {}, "correct": {"identifier": "user:9"}, "age": {"age": 12}}
REQUESTS.update(
    {
        right: ("POST", f"/api/v1/subjects/email:{ADDRESS}/{right}", {"json": {"site": "shop", **body}})
        for right, body in RIGHTS.items()
    }
)
NEEDS.update(dict.fromkeys(RIGHTS, "dsr"))
SCOPES = ["consent:read", "consent:write", "email:write", "audit:read", "dsr", "admin"]


@pytest.fixture
def recipient(client, site):
    """A subscriber, so that routes about an existing recipient have one to answer about."""
    response = call(client, "subscribe", bearer("email:write"))
    assert response.status_code in (200, 201), response.json


@pytest.mark.parametrize("route", sorted(REQUESTS))
@pytest.mark.parametrize("scope", SCOPES)
def test_each_route_by_each_scope(client, site, recipient, route, scope):
    response = call(client, route, bearer(scope))
    if scope in (NEEDS[route], "admin"):
        assert response.status_code in (200, 201), response.json
    else:
        assert response.status_code == 403
        assert response.json["error"]["code"] == "insufficient_scope"


@pytest.mark.parametrize("route", sorted(REQUESTS))
def test_keys_bound_to_another_site_are_refused(client, site, recipient, route):
    sites.create_site("blog", "Blog")
    db.session.commit()
    response = call(client, route, bearer(NEEDS[route], bound_to=["blog"]))
    assert response.status_code == 403
    assert response.json["error"]["code"] == "site_not_allowed"
    assert call(client, route, bearer(NEEDS[route], bound_to=["shop"])).status_code in (200, 201)


@pytest.mark.parametrize("route", sorted(set(REQUESTS) - {"record"}))
@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer cmp_0123456789abcdef_wrong"}, {"Authorization": "Token abc"}]
)
def test_no_key_or_a_bad_key_is_401(client, site, route, headers):
    response = call(client, route, headers)
    assert response.status_code == 401


@pytest.mark.parametrize(
    "headers", [{"Authorization": "Bearer cmp_0123456789abcdef_wrong"}, {"Authorization": "Token abc"}]
)
def test_recording_with_a_bad_key_is_401_not_a_banner_request(client, site, headers):
    assert call(client, "record", headers).status_code == 401


@pytest.mark.parametrize("route", sorted(REQUESTS))
def test_the_description_names_the_scope_each_route_checks(app, client, route):
    method, path, _ = REQUESTS[route]
    rule, _ = app.url_map.bind("localhost").match(path, method=method, return_rule=True)
    template = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
    operation = client.get("/api/v1/openapi.json").json["paths"][template][method.lower()]
    assert operation["security"][0] == {NEEDS[route].replace(":", "_"): []}
    assert NEEDS[route] in operation["description"]
