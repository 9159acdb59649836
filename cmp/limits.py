"""Rate limits (Flask-Limiter): per client address, one budget for anonymous requests and a larger one for API keys.

The banner, email links and the dashboard's sign-in are public and answer anyone, so they get the smaller
budget; servers calling with a valid API key (`Authorization: Bearer`) get the larger one. Any other header,
junk or a revoked key, draws on the public budget: a header alone must not buy ten times the requests.
Counters live in Redis when CMP_REDIS_URL is set, so every instance shares them; otherwise in each process's
memory. If Redis fails, requests are served and counted in memory meanwhile: a rate limiter must not take the
consent service down.
"""

from __future__ import annotations

import time

from flask import Blueprint, Flask, current_app, request
from flask_limiter import Limiter
from sqlalchemy.exc import SQLAlchemyError

from cmp.api.requests import bearer_key
from cmp.extensions import db
from cmp.services.jurisdiction import client_ip


def client_address() -> str:
    """The client's address, through trusted proxies only: a client cannot pick its own counter."""
    config = current_app.config
    address = client_ip(
        request.remote_addr, request.headers.get("X-Forwarded-For"), config["CMP_TRUSTED_PROXY_NETWORKS"]
    )
    return address or "unknown"


def current_limit() -> str:
    """The budget this request draws on: the API keys' when it carries a valid one, else the public one."""
    config = current_app.config
    public, api = config["CMP_RATE_LIMIT_PUBLIC"], config["CMP_RATE_LIMIT_API"]
    if public == api or "Authorization" not in request.headers:
        return public
    return api if _carries_valid_key() else public


def _carries_valid_key() -> bool:
    try:
        return bearer_key() is not None
    except SQLAlchemyError:
        # Counted as public meanwhile; the view meets the same fault and answers 503. Raising here would
        # make Flask-Limiter take the database's fault for its storage's and stop using Redis.
        db.session.rollback()
        return False


def limit_is_off() -> bool:
    return current_limit() == "off"


EXTENSION = "cmp.limiter"


def retry_after() -> int:
    """Seconds until the breached window resets, for the 429's Retry-After."""
    breached = current_app.extensions[EXTENSION].current_limit
    if breached is None:
        return 60
    return max(1, int(breached.reset_at - time.time()))


def init_limits(app: Flask) -> None:
    # One limiter per app: Flask-Limiter keeps the first app's key prefix for every later app it is given.
    limiter = Limiter(
        key_func=client_address,
        # One budget per client across every route (not one per route), so spreading requests gains nothing.
        application_limits=[current_limit],
        application_limits_exempt_when=limit_is_off,
        # Its headers would also overwrite the Retry-After of a 503; a 429 gets its own in `retry_after`.
        headers_enabled=False,
    )
    limiter.init_app(app)
    app.extensions[EXTENSION] = limiter


def exempt_from_limits(app: Flask, *blueprints: Blueprint) -> None:
    """Serve these blueprints' routes without counting them against any budget."""
    for blueprint in blueprints:
        app.extensions[EXTENSION].exempt(blueprint)
