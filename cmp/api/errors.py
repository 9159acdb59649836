"""The one place that builds error responses: {"error": {"code", "message", "details"}}.

Routes people open from an email get the same errors as a small page in their language instead.
"""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify, request
from flask_limiter.errors import RateLimitExceeded
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from cmp.api.pages import error_page
from cmp.errors import DomainError
from cmp.limits import retry_after
from cmp.models import ImmutableRecordError

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


def error_response(status: int, code: str | None = None, message: str = "", details: dict | None = None, headers=None):
    body = {"error": {"code": code or HTTP_CODES.get(status, "error"), "message": message, "details": details or {}}}
    response = jsonify(body)
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


# Blueprints whose routes people open from an email, in a browser or a mail client.
PAGE_BLUEPRINTS = frozenset({"email_links"})


def _error(status: int, code: str | None = None, message: str = "", details: dict | None = None, headers=None):
    if request.blueprint in PAGE_BLUEPRINTS:
        response = error_page(status, code or HTTP_CODES.get(status, "error"), g.get("page_locale"))
        response.headers.update(headers or {})
        return response
    return error_response(status, code, message, details, headers)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        return _error(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(ValidationError)
    def validation_error(exc: ValidationError):
        return _error(422, "invalid", "the request is not valid", {"fields": exc.messages})

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(exc: RateLimitExceeded):
        return _error(
            429,
            "too_many_requests",
            f"too many requests: at most {exc.description}",
            headers={"Retry-After": str(retry_after())},
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        headers = {name: value for name, value in exc.get_headers() if name == "Allow"}
        return _error(exc.code or 500, None, exc.description or exc.name, headers=headers)

    @app.errorhandler(OperationalError)
    def database_unavailable(exc: OperationalError):
        log.error("database unavailable: %s", exc.orig.__class__.__name__ if exc.orig else exc)
        return _error(503, "unavailable", "the consent store is unavailable; try again", headers={"Retry-After": "5"})

    @app.errorhandler(ImmutableRecordError)
    @app.errorhandler(DBAPIError)
    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        log.exception("unhandled error")
        return _error(500, "internal_error", "an internal error occurred")
