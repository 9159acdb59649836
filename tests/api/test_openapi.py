"""The OpenAPI description: valid, complete, and true to what the service answers (property-based, bounded)."""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import given, settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cmp.api.openapi import Undescribed, build, describe
from cmp.extensions import db
from cmp.services import keys
from tests.conftest import make_app
from tests.helpers import ORIGIN

AUTOMATIC = {"HEAD", "OPTIONS"}


@pytest.fixture
def document(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json


def test_the_document_is_valid_openapi_3(document):
    validate(document)
    assert document["openapi"].startswith("3.")


def test_every_route_is_described(app, document):
    missing = []
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)  # <path:subject> is {subject}
        for method in rule.methods - AUTOMATIC or rule.methods & {"OPTIONS"}:
            if method.lower() not in document["paths"].get(path, {}):
                missing.append(f"{method} {path}")
    assert missing == []


def test_a_route_without_a_description_stops_the_document(app):
    @app.get("/api/v1/undescribed")
    def undescribed():
        return {}

    with pytest.raises(Undescribed, match="undescribed"):
        build(app)
    describe("Described now", tag="operations", responses={200: "OK"})(undescribed)
    assert build(app)["paths"]["/api/v1/undescribed"]["get"]["summary"] == "Described now"


def test_each_keyed_route_declares_its_scope(document):
    lookup = document["paths"]["/api/v1/consents/lookup"]["get"]
    assert lookup["security"] == [{"consent_read": []}]
    assert "consent:read" in lookup["description"]
    assert {401, 403} <= set(map(int, lookup["responses"]))
    erase = document["paths"]["/api/v1/subjects/{subject}/erase"]["post"]
    assert erase["security"] == [{"dsr": []}]
    schemes = document["components"]["securitySchemes"]
    assert schemes["consent_read"]["type"] == "http" and schemes["consent_read"]["scheme"] == "bearer"
    assert set(schemes) == {"consent_read", "consent_write", "email_write", "audit_read", "dsr", "admin"}


def test_errors_are_described_in_the_one_error_shape(document):
    record = document["paths"]["/api/v1/sites/{site_key}/consents"]["post"]
    for status in ("400", "401", "403", "404", "415", "422"):
        assert record["responses"][status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }
    assert set(document["components"]["schemas"]["Error"]["properties"]) == {"error"}


def test_the_banner_post_takes_a_key_or_an_allowed_origin(document):
    record = document["paths"]["/api/v1/sites/{site_key}/consents"]["post"]
    assert record["security"] == [{"consent_write": []}, {}]  # a key, or none at all
    [origin] = [parameter for parameter in record["parameters"] if parameter["in"] == "header"]
    assert origin["name"] == "Origin" and "allowed origins" in origin["description"]
    bodies = record["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert bodies == [{"$ref": "#/components/schemas/BannerConsent"}, {"$ref": "#/components/schemas/ServerConsent"}]


def _parameter(operation: dict, name: str) -> dict:
    return next(p for p in operation["parameters"] if p["name"] == name)


def test_the_description_is_as_strict_as_the_server(document):
    schemas, paths = document["components"]["schemas"], document["paths"]
    for body in ("BannerConsent", "ServerConsent", "Subscription"):
        # notice_version is a 32-bit integer column on PostgreSQL.
        assert schemas[body]["properties"]["notice_version"]["minimum"] == 1
        assert schemas[body]["properties"]["notice_version"]["maximum"] == 2**31 - 1
        assert schemas[body]["properties"]["gpc"]["type"] == "boolean"
        assert schemas[body]["additionalProperties"] is False
    site_key = _parameter(paths["/api/v1/sites/{site_key}/consents"]["post"], "site_key")["schema"]
    assert site_key["pattern"] == "^[a-z0-9][a-z0-9-]{0,62}$"
    subject = _parameter(paths["/api/v1/subjects/{subject}/consents"]["get"], "subject")["schema"]
    assert subject["maxLength"] == 320 and subject["pattern"].startswith("^(visitor|user|email):")
    lookup = paths["/api/v1/consents/lookup"]["get"]
    for name in ("site", "subject", "purpose"):
        assert _parameter(lookup, name)["required"] is True
        assert "pattern" in _parameter(lookup, name)["schema"]
    assert _parameter(paths["/api/v1/audit/events"]["get"], "from")["schema"]["format"] == "date-time"
    assert _parameter(paths["/api/v1/audit/verify"]["get"], "site")["required"] is True


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


# What a parameter's schema may say that a request can break; an operation with none of these (no parameters,
# or only free-form path segments and form fields) has no invalid request to generate.
CONSTRAINTS = {"pattern", "enum", "format", "minLength", "maxLength", "minimum", "maximum"}


def _can_be_invalid(operation: dict) -> bool:
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        return True
    return any(
        parameter.get("required") and parameter["in"] == "query" or CONSTRAINTS & parameter["schema"].keys()
        for parameter in operation.get("parameters", [])
    )


def _cases() -> list:
    """Every operation of the document, known at collection (building it needs the app's routes, no database):
    each with valid requests, and with invalid ones where its description constrains what it reads."""
    app = make_app("sqlite://")
    with app.test_request_context():
        paths = build(app)["paths"]
    cases = []
    for path, operations in paths.items():
        for method, operation in operations.items():
            modes = list(GenerationMode) if _can_be_invalid(operation) else [GenerationMode.POSITIVE]
            cases += [pytest.param(method.upper(), path, mode, id=f"{method.upper()} {path} {mode}") for mode in modes]
    return cases


@pytest.fixture
def api_schema(app, site):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


def _exercise(operation, mode: GenerationMode, headers: dict) -> None:
    """Generated requests, valid (positive) or not (negative), never get a server error, nor an answer the
    description forbids."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=15, deadline=None, derandomize=True)
    def exercise(case):
        case.validate_response(case.call(headers=headers), checks=CHECKS)

    exercise()


@pytest.mark.parametrize(("method", "path", "mode"), _cases())
def test_no_input_breaks_the_operation_or_its_description(api_schema, method, path, mode):
    token = keys.create_key("fuzz", ["admin"]).token
    db.session.commit()
    _exercise(api_schema[path][method], mode, {"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("mode", list(GenerationMode), ids=str)
def test_no_banner_body_breaks_recording_from_an_allowed_origin(api_schema, mode):
    """The banner's way in: no key, the site's allowed Origin, and generated bodies."""
    _exercise(api_schema["/api/v1/sites/{site_key}/consents"]["POST"], mode, {"Origin": ORIGIN})
