"""What views read from a request: the JSON body, the API key, the origin and the evidence."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps

from flask import current_app, request

from cmp.api.openapi import document_scope
from cmp.errors import Malformed, NotPermitted, Unauthenticated, UnsupportedBody
from cmp.models import ApiKey, Site
from cmp.services import keys
from cmp.services.evidence import Evidence, coarse_user_agent, strip_query
from cmp.services.jurisdiction import client_ip, normalise_country, peer_is_trusted, truncate_ip
from cmp.vocabulary import Scope


def json_body() -> dict:
    """The request's JSON object; 415 for another media type, 400 for malformed JSON.

    Views read it first, before the key: a body that cannot be read is refused the same way to everyone.
    """
    if not request.is_json:
        raise UnsupportedBody("unsupported_media_type", "send the body as application/json")
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        # The parser recurses once per nesting level: a few KB of "[[[[..." exhaust Python's stack.
        data = None
    if data is None:
        raise Malformed("malformed_json", "the body is not valid JSON")
    if not isinstance(data, dict):
        raise Malformed("malformed_json", "the body must be a JSON object")
    return data


# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")


def bearer_token() -> str | None:
    """The bearer token the request carries, or None; 401 for one that cannot be a token (never looked up)."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _B64TOKEN.fullmatch(token):
        raise Unauthenticated("invalid_api_key", "use Authorization: Bearer <API key>")
    return token


BEARER_KEY = "cmp.bearer_key"


def bearer_key() -> ApiKey | None:
    """The live key the request's bearer token names, or None without a valid one; authenticated once a request.

    The rate limiter asks first (only a valid key earns the API budget), then the view.
    """
    if BEARER_KEY not in request.environ:
        try:
            token = bearer_token()
            key = keys.authenticate(token) if token else None
        except Unauthenticated:
            key = None
        request.environ[BEARER_KEY] = key
    return request.environ[BEARER_KEY]


def api_key(scope: Scope, site_key: str | None = None) -> ApiKey | None:
    """The request's API key checked for `scope` and site, or None when the request carries none."""
    token = bearer_token()
    if token is None:
        return None
    # A token `bearer_key` found wanting is authenticated again, to refuse it with the reason.
    key = bearer_key() or keys.authenticate(token)
    keys.authorise(key, scope, site_key)
    return key


def require_key(scope: Scope, site_key: str | None = None) -> ApiKey:
    """The request's API key checked for `scope` and site; 401 without one."""
    key = api_key(scope, site_key)
    if key is None:
        raise Unauthenticated("missing_api_key", "this route needs an API key: Authorization: Bearer <key>")
    return key


def requires(
    scope: Scope, *, body: bool = False, origin: bool = False, authenticate: Callable[[Scope], object] = require_key
):
    """Check the request's key for `scope` before the view reads anything, and hand it to the view as `key`.

    The API's order: a `body` that is not a JSON object is refused first (the same way to everyone), then the key
    (401 without a valid one, 403 without the scope), and only then does the view load the fields and check the
    key's sites. With `origin` a key is optional (the banner comes without one, from an allowed origin), and
    `key` is None without one. `authenticate` may stand in for `require_key` (a cache of keys that passed).
    The scope is also the route's security in the OpenAPI document.
    """

    def decorator(view):
        @wraps(view)
        def checked(*args, **kwargs):
            if body:
                json_body()
            key = api_key(scope) if origin else authenticate(scope)
            return view(*args, key=key, **kwargs)

        document_scope(checked, scope, origin=origin)
        return checked

    return decorator


def require_allowed_origin(site: Site) -> str:
    """The request's Origin, if the site allows it; browsers always send one on a cross-site POST."""
    origin = request.headers.get("Origin")
    if origin is None or origin not in site.allowed_origins:
        raise NotPermitted(
            "origin_not_allowed",
            f"origin {origin or '(none)'} may not record consent for site {site.key!r}",
            {"origin": origin},
        )
    return origin


def request_country() -> tuple[str | None, str | None]:
    """The client's address and country: from a trusted CDN header, else from the GeoIP database."""
    config = current_app.config
    trusted = config["CMP_TRUSTED_PROXY_NETWORKS"]
    address = client_ip(request.remote_addr, request.headers.get("X-Forwarded-For"), trusted)
    header = config["CMP_COUNTRY_HEADER"]
    # A country header counts only when a proxy we trust set it: clients cannot pick their own rules.
    if header and peer_is_trusted(request.remote_addr, trusted) and request.headers.get(header):
        return address, normalise_country(request.headers.get(header))
    return address, current_app.extensions["cmp.locator"].country(address)


def gpc_header() -> bool:
    """Whether the request carries Global Privacy Control: any `Sec-GPC` field value of 1.

    W3C GPC: the preference is expressed by the value 1, and a server must honour it once expressed, so
    another field line (`0`, or a second `1`) never takes it back. RFC 9110 section 5.3: repeated field
    lines may also arrive combined into one comma-separated value.
    """
    values = (value.strip() for line in request.headers.getlist("Sec-GPC") for value in line.split(","))
    return "1" in values


def request_evidence(*, gpc: bool = False, page_url: str | None = None) -> Evidence:
    address, country = request_country()
    return Evidence(
        ip_prefix=truncate_ip(address),
        user_agent=coarse_user_agent(request.headers.get("User-Agent")),
        page_url=strip_query(page_url),
        country=country,
        gpc=gpc or gpc_header(),
    )


def server_evidence(data: dict) -> Evidence:
    """Evidence a server passes about the person; the calling server's own address says nothing of them.

    Global Privacy Control counts whether the server says the person sent it or passes their `Sec-GPC` on.
    """
    address = str(data["ip"]) if data["ip"] else None
    return Evidence(
        ip_prefix=truncate_ip(address),
        user_agent=coarse_user_agent(data["user_agent"]),
        page_url=strip_query(data["page_url"]),
        country=data["country"] or current_app.extensions["cmp.locator"].country(address),
        gpc=data["gpc"] or gpc_header(),
    )
