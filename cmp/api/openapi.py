"""The OpenAPI 3 document, built from the views themselves.

Each view says what it is with `@describe` (its summary, responses, and the schemas it loads its body and query
with); `@requires` adds the key scope it checks. The document walks the app's URL map and reads each view's own
description, so a route cannot be served without being described (tests/api/test_openapi.py holds every route
to it).
"""

from __future__ import annotations

import re
from functools import cache
from importlib.metadata import version

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, current_app, jsonify
from marshmallow import Schema

from cmp.schemas.common import ErrorSchema
from cmp.schemas.lookup import SITE, SUBJECT
from cmp.vocabulary import Scope

bp = Blueprint("openapi", __name__)

JSON = "application/json"
HTML = "text/html"
ERRORS = {
    400: "malformed request",
    401: "no API key, or not a valid one",
    403: "the key lacks the scope or the site, or the origin is not allowed",
    404: "unknown site or resource",
    409: "conflict with what is stored",
    413: "body too large",
    415: "not application/json",
    422: "invalid input; details name the fields",
    429: "too many requests from this address (or key); Retry-After says when to try again",
    503: "the consent store is unavailable",
}
# What reading a JSON body can be refused with, before its fields are checked (cmp.api.requests.json_body).
BODY_ERRORS = (400, 413, 415, 422)
# What a keyed route can be refused with besides: the key itself, and a database that does not answer.
KEY_ERRORS = (401, 403, 503)

# Path parameters are checked as the views check them: the same fields, so the same lengths and patterns.
PATH_FIELDS = {"site_key": SITE, "subject": SUBJECT}

ORIGIN_HEADER = {
    "in": "header",
    "name": "Origin",
    "schema": {"type": "string"},
    "description": "without a key: one of the site's allowed origins, as the browser sends it",
}

_ATTRIBUTE = "__openapi__"


def description_of(view) -> dict:
    """What a view says of itself; shared with the wrappers `functools.wraps` makes of it."""
    return view.__dict__.setdefault(_ATTRIBUTE, {})


def describe(
    summary: str,
    *,
    tag: str,
    responses: dict[int, object],
    body: type[Schema] | tuple[type[Schema], ...] | None = None,
    query: type[Schema] | None = None,
    errors: tuple[int, ...] = (),
    description: str = "",
    **extra,
):
    """Describe a view in the OpenAPI document.

    `tag` groups it; `responses` maps a status to a schema class, a (media type or types, description) pair or a
    description; `body` and `query` are the schemas the view loads its JSON body and query string with (several
    bodies: the body is one of them); `errors` are further statuses answered in the one error shape (those of
    the body, the query and the key are added by themselves); any other keyword is copied verbatim into the
    operation (a form body, a hand-written parameter).
    """
    operation = {
        "summary": summary,
        "tag": tag,
        "responses": responses,
        "body": body,
        "query": query,
        "errors": errors,
        "description": description,
        "extra": extra,
    }

    def decorator(view):
        description_of(view).update(operation)
        return view

    return decorator


def document_scope(view, scope: Scope, *, origin: bool) -> None:
    """Record the key scope a view requires (`cmp.api.requests.requires`); with `origin` a key is optional."""
    description_of(view).update(scope=scope, origin=origin)


def security_scheme(scope: Scope) -> str:
    # OpenAPI component names allow letters, digits, ".", "-" and "_".
    return scope.value.replace(":", "_")


def _path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _responses(operation: dict) -> dict:
    responses = {}
    for status, what in operation["responses"].items():
        if isinstance(what, str):
            responses[status] = {"description": what}
        elif isinstance(what, tuple):
            media, text = what
            # One media type, or several the route chooses between (a `format` parameter).
            types = media if isinstance(media, tuple) else (media,)
            responses[status] = {"description": text, "content": {m: {"schema": {}} for m in types}}
        else:
            responses[status] = {"description": what.__doc__ or "OK", "content": {JSON: {"schema": what}}}
    errors = set(operation["errors"])
    if operation["body"]:
        errors.update(BODY_ERRORS)
    if operation["query"]:
        errors.add(422)
    if operation.get("scope"):
        errors.update(KEY_ERRORS)
    for status in sorted(errors):
        responses[status] = {"description": ERRORS[status], "content": {JSON: {"schema": "Error"}}}
    return responses


def _operation(method: str, path: str, operation: dict, path_schemas: dict[str, dict]) -> dict:
    details = {
        "operationId": method + "_" + re.sub(r"\W+", "_", path).strip("_"),
        "summary": operation["summary"],
        "tags": [operation["tag"]],
        "responses": _responses(operation),
        **operation["extra"],
    }
    text = operation["description"]
    if operation["body"]:
        bodies = operation["body"] if isinstance(operation["body"], tuple) else (operation["body"],)
        schema = {"oneOf": list(bodies)} if len(bodies) > 1 else bodies[0]
        details["requestBody"] = {"required": True, "content": {JSON: {"schema": schema}}}
    parameters = [
        {"in": "path", "name": name, "required": True, "schema": path_schemas.get(name, {"type": "string"})}
        for name in re.findall(r"{([^}]+)}", path)
    ]
    if operation["query"]:
        parameters.append({"in": "query", "schema": operation["query"]})
    if scope := operation.get("scope"):
        # OpenAPI 3.0 section 4.7.10.1: an empty requirement makes the key optional.
        details["security"] = [{security_scheme(scope): []}, *([{}] if operation["origin"] else [])]
        text = f"{text} Scope: {scope.value}.".strip()
        if operation["origin"]:
            parameters.append(ORIGIN_HEADER)
    if text:
        details["description"] = text
    details["parameters"] = parameters + details.get("parameters", [])
    return details


class Undescribed(LookupError):
    """A route whose view has no `@describe`: it would be served but missing from the document."""


def build(app: Flask) -> dict:
    spec = APISpec(
        title="cmp",
        version=version("cmp"),
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Consent and cookie management: banner, consent log, lookups."},
    )
    for scope in Scope:
        spec.components.security_scheme(
            security_scheme(scope),
            {"type": "http", "scheme": "bearer", "description": f"an API key holding {scope.value} (or admin)"},
        )
    spec.components.schema("Error", schema=ErrorSchema)
    converter = next(plugin for plugin in spec.plugins if isinstance(plugin, MarshmallowPlugin)).converter
    path_schemas = {name: converter.field2property(field) for name, field in PATH_FIELDS.items()}
    for rule in app.url_map.iter_rules():
        operation = app.view_functions[rule.endpoint].__dict__.get(_ATTRIBUTE)
        if not operation or "summary" not in operation:
            raise Undescribed(f"{rule.endpoint} ({rule.rule}) has no @describe")
        path = _path(rule.rule)
        # HEAD and OPTIONS, which Flask answers by itself, are described only on a route that is nothing else.
        for method in sorted(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"} or rule.methods & {"OPTIONS"}):
            spec.path(path=path, operations={method: _operation(method, path, operation, path_schemas)})
    return spec.to_dict()


@cache
def _document(app: Flask) -> dict:
    return build(app)


@bp.get("/api/v1/openapi.json")
@describe("This description", tag="operations", responses={200: (JSON, "OpenAPI 3 document")})
def document():
    response = jsonify(_document(current_app._get_current_object()))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
