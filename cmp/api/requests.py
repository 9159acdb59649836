"""What views read from a request: the JSON body, the API key, the origin and the evidence."""

from __future__ import annotations

from flask import current_app, request

from cmp.errors import BadRequest, Forbidden, Unauthorized, UnsupportedMediaType
from cmp.models import ApiKey, Site
from cmp.services import keys
from cmp.services.evidence import Evidence, coarse_user_agent, strip_query
from cmp.services.jurisdiction import client_ip, normalise_country, peer_is_trusted, truncate_ip
from cmp.vocabulary import Scope


def json_body() -> dict:
    """The request's JSON object; 415 for another media type, 400 for malformed JSON."""
    if not request.is_json:
        raise UnsupportedMediaType("unsupported_media_type", "send the body as application/json")
    data = request.get_json(silent=True)
    if data is None:
        raise BadRequest("malformed_json", "the body is not valid JSON")
    if not isinstance(data, dict):
        raise BadRequest("malformed_json", "the body must be a JSON object")
    return data


def bearer_token() -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("invalid_api_key", "use Authorization: Bearer <API key>")
    return token.strip()


def api_key(scope: Scope, site_key: str | None = None) -> ApiKey | None:
    """The request's API key checked for `scope` and site, or None when the request carries none."""
    token = bearer_token()
    if token is None:
        return None
    key = keys.authenticate(token)
    keys.authorise(key, scope, site_key)
    return key


def require_key(scope: Scope, site_key: str | None = None) -> ApiKey:
    """The request's API key checked for `scope` and site; 401 without one."""
    key = api_key(scope, site_key)
    if key is None:
        raise Unauthorized("missing_api_key", "this route needs an API key: Authorization: Bearer <key>")
    return key


def require_allowed_origin(site: Site) -> str:
    """The request's Origin, if the site allows it; browsers always send one on a cross-site POST."""
    origin = request.headers.get("Origin")
    if origin is None or origin not in site.allowed_origins:
        raise Forbidden(
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
    return request.headers.get("Sec-GPC", "").strip() == "1"


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
    """Evidence a server passes about the person; the calling server's own address says nothing of them."""
    address = str(data["ip"]) if data["ip"] else None
    return Evidence(
        ip_prefix=truncate_ip(address),
        user_agent=coarse_user_agent(data["user_agent"]),
        page_url=strip_query(data["page_url"]),
        country=data["country"] or current_app.extensions["cmp.locator"].country(address),
        gpc=data["gpc"],
    )
