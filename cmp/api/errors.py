"""The one place that renders errors, whatever raised them and wherever the request came from.

Each handler below turns an exception into a `Problem`: a status, a stable machine-readable code, a message,
details and headers. Where the request came from then decides how it is shown (`render`): links people open
from an email get a small page in their language, the auditor dashboard its own page, everything else the
API's JSON body {"error": {"code", "message", "details"}}.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from flask import Flask, Response, g, jsonify, request
from flask_limiter.errors import RateLimitExceeded
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from cmp.api.pages import error_page
from cmp.dashboard import message_page
from cmp.errors import (
    DomainError,
    Invalid,
    Malformed,
    NotPermitted,
    Refused,
    Unauthenticated,
    Unavailable,
    Unknown,
    UnsupportedBody,
)
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


@dataclass(frozen=True)
class Problem:
    """An error as every renderer sees it."""

    status: int
    code: str
    message: str
    details: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)


def json_error(problem: Problem) -> Response:
    body = {"error": {"code": problem.code, "message": problem.message, "details": problem.details}}
    response = jsonify(body)
    response.status_code = problem.status
    response.headers.update(problem.headers)
    return response


def email_page(problem: Problem) -> Response:
    """The page for someone who followed a link from an email: no message from the code, only its own texts."""
    response = error_page(problem.status, problem.code, g.get("page_locale"))
    response.headers.update(problem.headers)
    return response


DASHBOARD_TITLES = {
    400: "The form could not be accepted",
    401: "Sign in first",
    403: "Not one of your sites",
    404: "Not found",
    413: "The form is too large",
    422: "The request is not valid",
    429: "Too many requests",
    503: "The consent store is unavailable",
}
# Sentences written for an auditor where the API's message is written for a program.
DASHBOARD_TEXTS = {
    "invalid": "Correct the site or dates and try again.",
    "unavailable": "The database cannot be reached; try again shortly.",
    "internal_error": "The dashboard could not show this page; try again shortly.",
}


def dashboard_page(problem: Problem) -> Response:
    fields = problem.details.get("fields", {})
    if not isinstance(fields, dict):  # a schema-wide problem, not one field's
        fields = {"_schema": fields}
    details = [f"{name}: {'; '.join(problems)}" for name, problems in sorted(fields.items())]
    response = message_page(
        problem.status,
        DASHBOARD_TITLES.get(problem.status, "Something went wrong"),
        DASHBOARD_TEXTS.get(problem.code, problem.message),
        details,
    )
    response.headers.update(problem.headers)
    return response


# The status that says each kind of domain error over HTTP.
STATUSES = {
    Malformed: 400,
    Unauthenticated: 401,
    NotPermitted: 403,
    Unknown: 404,
    Refused: 409,
    UnsupportedBody: 415,
    Invalid: 422,
    Unavailable: 503,
}


def status_of(exc: DomainError) -> int:
    """The status of the nearest kind the error is (a `StateChanged` is a `Refused`)."""
    return next(STATUSES[kind] for kind in type(exc).__mro__ if kind in STATUSES)


# Blueprints whose errors are pages for people; every other route answers a program, in JSON.
PAGE_RENDERERS = {"email_links": email_page, "audit_dashboard": dashboard_page}


def render(problem: Problem) -> Response:
    return PAGE_RENDERERS.get(request.blueprint, json_error)(problem)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        return render(Problem(status_of(exc), exc.code, exc.message, exc.details))

    @app.errorhandler(ValidationError)
    def validation_error(exc: ValidationError):
        return render(Problem(422, "invalid", "the request is not valid", {"fields": exc.messages}))

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(exc: RateLimitExceeded):
        message = f"too many requests: at most {exc.description}"
        return render(Problem(429, "too_many_requests", message, headers={"Retry-After": str(retry_after())}))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        headers = {name: value for name, value in exc.get_headers() if name == "Allow"}
        return render(Problem(status, HTTP_CODES.get(status, "error"), exc.description or exc.name, headers=headers))

    @app.errorhandler(OperationalError)
    def database_unavailable(exc: OperationalError):
        log.error("database unavailable: %s", exc.orig.__class__.__name__ if exc.orig else exc)
        message = "the consent store is unavailable; try again"
        return render(Problem(503, "unavailable", message, headers={"Retry-After": "5"}))

    @app.errorhandler(ImmutableRecordError)
    @app.errorhandler(DBAPIError)
    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        log.exception("unhandled error")
        return render(Problem(500, "internal_error", "an internal error occurred"))
