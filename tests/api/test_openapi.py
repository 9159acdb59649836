"""The OpenAPI description: valid, complete, and true to what the service answers (property-based, bounded)."""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
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


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def api_schema(app, site):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


def test_no_input_breaks_the_service_or_its_description(api_schema):
    """Generated requests to every operation never get a server error, nor an answer the description forbids."""
    token = keys.create_key("fuzz", ["admin"]).token
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 12

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def exercise(case):
            case.validate_response(case.call(headers=headers), checks=CHECKS)

        exercise()
