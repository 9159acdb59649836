"""Liveness and readiness."""

from tests.conftest import make_app


def test_healthz_answers_without_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_checks_the_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["database"] == "ok"


def test_readyz_is_503_when_the_schema_is_missing(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["error"]["code"] == "not_ready"


def test_gpc_support_is_declared(client):
    response = client.get("/.well-known/gpc.json")
    assert response.status_code == 200
    assert response.json["gpc"] is True
    assert response.json["lastUpdate"]
