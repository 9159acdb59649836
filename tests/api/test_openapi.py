"""The OpenAPI description: valid, complete, and true to what the service answers (property-based, bounded)."""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cmp.api.openapi import UNDOCUMENTED
from cmp.extensions import db
from cmp.services import keys

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
        if rule.endpoint in UNDOCUMENTED:
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)  # <path:subject> is {subject}
        for method in rule.methods - AUTOMATIC or rule.methods & {"OPTIONS"}:
            if method.lower() not in document["paths"].get(path, {}):
                missing.append(f"{method} {path}")
    assert missing == []


def test_routes_with_keys_declare_the_bearer_scheme(document):
    lookup = document["paths"]["/api/v1/consents/lookup"]["get"]
    assert lookup["security"] == [{"apiKey": []}]
    assert "consent:read" in lookup["description"]
    assert document["components"]["securitySchemes"]["apiKey"] == {"type": "http", "scheme": "bearer"}


def test_the_banner_post_takes_a_key_or_an_allowed_origin(document):
    record = document["paths"]["/api/v1/sites/{site_key}/consents"]["post"]
    assert record["security"] == [{"apiKey": []}, {}]  # a key, or none at all
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


@pytest.fixture
def api_schema(app, site):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


@pytest.mark.parametrize("mode", list(GenerationMode), ids=str)
def test_no_input_breaks_the_service_or_its_description(api_schema, mode):
    """Generated requests to every operation, valid (positive) and not (negative), never get a server error,
    nor an answer the description forbids."""
    token = keys.create_key("fuzz", ["admin"]).token
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    exercised = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def exercise(case):
            case.validate_response(case.call(headers=headers), checks=CHECKS)

        try:
            exercise()
        except Unsatisfiable:
            # Nothing the operation reads can be made invalid: it has no parameters, or only unconstrained ones.
            assert mode is GenerationMode.NEGATIVE, operation.label
            continue
        exercised.append(operation.label)
    assert len(exercised) >= 12, exercised
