"""CORS answered per site: only origins the site allows ever see an Access-Control header."""

from __future__ import annotations

from flask import g, make_response, request

from cmp.errors import NotPermitted
from cmp.models import Site

ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Content-Type, Authorization"
PREFLIGHT_MAX_AGE = "7200"


def add_cors_headers(response):
    """After every response of a site route, errors included: allow the Origin if the site does."""
    response.vary.add("Origin")
    origin = request.headers.get("Origin")
    if origin and origin in g.get("allowed_origins", ()):
        response.headers["Access-Control-Allow-Origin"] = origin
    return response


def cors_preflight(site: Site):
    origin = request.headers.get("Origin")
    if origin is None or origin not in site.allowed_origins:
        raise NotPermitted("origin_not_allowed", f"origin {origin or '(none)'} is not allowed for site {site.key!r}")
    response = make_response("", 204)
    response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
    response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    return response
