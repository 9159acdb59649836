"""Rate limits: public routes per client address, a larger budget for valid API keys, counters shared through Redis."""

from __future__ import annotations

import secrets

import pytest
import redis

from cmp.extensions import db
from cmp.services import keys, notices, sites
from tests.conftest import make_app, running_app, skip_or_fail
from tests.helpers import ORIGIN, bearer, counts, post_consent

CONFIG = "/api/v1/sites/shop/banner-config"
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def limited(database_url):
    with running_app(
        database_url,
        CMP_RATE_LIMIT_PUBLIC="3 per minute",
        CMP_RATE_LIMIT_API="5 per minute",
        CMP_TRUSTED_PROXIES="10.0.0.0/8",
    ) as app:
        yield app


@pytest.fixture
def shop(limited):
    site = sites.create_site("shop", "Shop", origins=[ORIGIN])
    notices.publish_notice(site)
    db.session.commit()
    return site


def test_the_public_budget_runs_out_with_a_clear_429_and_nothing_written(limited, shop):
    client = limited.test_client()
    assert [client.get(CONFIG).status_code for _ in range(2)] == [200, 200]
    assert post_consent(client, action="accept_all").status_code == 201
    before = counts()
    refused = post_consent(client, action="accept_all")
    assert refused.status_code == 429
    assert refused.json["error"]["code"] == "too_many_requests"
    assert set(refused.json["error"]) == {"code", "message", "details"}
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert counts() == before
    # Probes are never limited.
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200


def test_api_keys_draw_on_their_own_budget(limited, shop):
    client = limited.test_client()
    for _ in range(3):
        client.get(CONFIG)
    assert client.get(CONFIG).status_code == 429
    headers = bearer("consent:read")
    query = {"site": "shop", "subject": "user:1", "purpose": "analytics"}
    statuses = [
        client.get("/api/v1/consents/lookup", query_string=query, headers=headers).status_code for _ in range(6)
    ]
    assert statuses == [200] * 5 + [429]


@pytest.mark.parametrize(
    "authorization",
    ["Bearer junk", "Bearer cmp_0123456789abcdef_not-the-secret", "Basic YWRhOnNlY3JldA==", "", "revoked"],
)
def test_only_a_valid_key_earns_the_api_budget(limited, shop, authorization):
    if authorization == "revoked":
        authorization = bearer("consent:read")["Authorization"]
        keys.revoke_key(authorization.split("_")[1])
        db.session.commit()
    client = limited.test_client()
    statuses = [client.get(CONFIG, headers={"Authorization": authorization}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    # The valid key's own budget is untouched by what the other header spent.
    query = {"site": "shop", "subject": "user:1", "purpose": "analytics"}
    assert client.get("/api/v1/consents/lookup", query_string=query, headers=bearer("consent:read")).status_code == 200


def test_each_client_address_has_its_own_counter_and_cannot_pick_another(limited, shop):
    client = limited.test_client()
    via_proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for _ in range(3):
        assert (
            client.get(CONFIG, headers={"X-Forwarded-For": "198.51.100.7"}, environ_base=via_proxy).status_code == 200
        )
    assert client.get(CONFIG, headers={"X-Forwarded-For": "198.51.100.7"}, environ_base=via_proxy).status_code == 429
    # Another visitor behind the same trusted proxy still gets answers.
    assert client.get(CONFIG, headers={"X-Forwarded-For": "198.51.100.8"}, environ_base=via_proxy).status_code == 200
    # A client talking directly cannot escape its counter with a forged X-Forwarded-For.
    direct = {"REMOTE_ADDR": "192.0.2.50"}
    for n in range(3):
        assert client.get(CONFIG, headers={"X-Forwarded-For": f"203.0.113.{n}"}, environ_base=direct).status_code == 200
    assert client.get(CONFIG, headers={"X-Forwarded-For": "203.0.113.99"}, environ_base=direct).status_code == 429


def _redis_or_skip():
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        skip_or_fail(f"Redis not reachable at {REDIS_URL}: {exc}")


def test_instances_share_counters_through_redis(database_url):
    _redis_or_skip()
    prefix = f"cmp-test-{secrets.token_hex(4)}"
    shared = {"CMP_RATE_LIMIT_PUBLIC": "3 per minute", "CMP_REDIS_URL": REDIS_URL, "RATELIMIT_KEY_PREFIX": prefix}
    try:
        with running_app(database_url, **shared) as first:
            one = first.test_client()
            assert [one.get("/api/v1/sites/nowhere/banner-config").status_code for _ in range(2)] == [404, 404]
        with running_app(database_url, **shared) as second:
            two = second.test_client()
            # The second instance sees the first one's two requests: one left.
            assert [two.get("/api/v1/sites/nowhere/banner-config").status_code for _ in range(2)] == [404, 429]
        # Counted under this deployment's prefix, so two deployments can share one Redis.
        assert list(redis.Redis.from_url(REDIS_URL).scan_iter(f"*{prefix}*"))
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"*{prefix}*"):
            client.delete(key)


def test_an_unreachable_redis_does_not_take_the_service_down(database_url):
    with running_app(database_url, CMP_RATE_LIMIT_PUBLIC="3 per minute", CMP_REDIS_URL="redis://127.0.0.1:1/0") as app:
        client = app.test_client()
        # Counted in memory meanwhile: still served, still limited.
        assert [client.get("/api/v1/sites/nowhere/banner-config").status_code for _ in range(4)] == [404, 404, 404, 429]


def test_a_database_fault_while_weighing_a_key_is_a_503_and_counting_stays_shared(tmp_path):
    """The limiter checks the key before the view: a database that cannot answer is the view's 503, and is not
    taken for a fault of the counters' store (which would count in memory, per instance, from then on)."""
    _redis_or_skip()
    prefix = f"cmp-test-{secrets.token_hex(4)}"
    unreachable = f"sqlite:///{tmp_path / 'missing' / 'cmp.sqlite3'}"
    app = make_app(
        unreachable,
        CMP_RATE_LIMIT_PUBLIC="3 per minute",
        CMP_RATE_LIMIT_API="5 per minute",
        CMP_REDIS_URL=REDIS_URL,
        RATELIMIT_KEY_PREFIX=prefix,
    )
    query = {"site": "shop", "subject": "user:1", "purpose": "analytics"}
    headers = {"Authorization": "Bearer cmp_0123456789abcdef_secret"}
    try:
        with app.app_context():
            client = app.test_client()
            response = client.get("/api/v1/consents/lookup", query_string=query, headers=headers)
            assert response.status_code == 503
            assert response.json["error"]["code"] == "unavailable"
            assert client.get(CONFIG).status_code == 503
        assert list(redis.Redis.from_url(REDIS_URL).scan_iter(f"*{prefix}*"))
    finally:
        store = redis.Redis.from_url(REDIS_URL)
        for key in store.scan_iter(f"*{prefix}*"):
            store.delete(key)


def test_people_who_run_out_get_a_page_and_the_banner_script_is_never_limited(limited, shop):
    client = limited.test_client()
    for _ in range(3):
        assert client.get("/audit/login").status_code == 200
    refused = client.get("/audit/login")
    assert refused.status_code == 429 and refused.mimetype == "text/html"
    assert "Too many requests" in refused.text
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # A link followed from an email is a page too.
    from_email = client.get("/email/confirm/whatever")
    assert from_email.status_code == 429 and from_email.mimetype == "text/html"
    # The API answers a program.
    assert client.get(CONFIG).json["error"]["code"] == "too_many_requests"
    assert all(client.get("/banner/v1/cmp.js").status_code == 200 for _ in range(5))
