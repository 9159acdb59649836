"""Settings come from the environment when the app is made; production refuses to start without secrets or a
public URL."""

from __future__ import annotations

import json

import pytest

from cmp import ConfigError, create_app
from cmp.config import load_settings
from cmp.services.notes import generate_key

LOG_KEY = generate_key("cmp.example")[0]
SECRETS = {"CMP_SECRET_KEY": "s" * 32, "CMP_HMAC_KEY": "h" * 32, "CMP_LOG_KEY": LOG_KEY}
# What production needs besides the defaults.
PRODUCTION = {**SECRETS, "CMP_PUBLIC_URL": "https://cmp.example"}


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_production_without_any_one_secret_refuses_to_start(tmp_path, name):
    """The log key too: a log that signs nothing, or signs with a key nobody configured, proves nothing."""
    without = {key: value for key, value in SECRETS.items() if key != name}
    with pytest.raises(ConfigError, match=f"{name} must be set in production"):
        load_settings({**without, "CMP_PUBLIC_URL": "https://cmp.example"}, str(tmp_path))


def test_a_malformed_log_key_is_a_start_up_error(tmp_path):
    public_half = generate_key("cmp.example")[1]
    for bad in ("not-a-key", public_half):
        with pytest.raises(ConfigError, match="CMP_LOG_KEY is not a signed-note private key"):
            create_app({**PRODUCTION, "CMP_LOG_KEY": bad, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}"})


def test_the_configured_log_key_signs_the_log(tmp_path):
    app = create_app({**PRODUCTION, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite3'}"})
    assert app.extensions["cmp.log_key"].signer.private_key == LOG_KEY


@pytest.mark.parametrize(
    ("env", "sequencer"), [("production", "thread"), ("development", "thread"), ("testing", "inline")]
)
def test_the_sequencer_runs_in_a_thread_except_in_tests(tmp_path, env, sequencer):
    assert load_settings({**PRODUCTION, "CMP_ENV": env}, str(tmp_path))["CMP_SEQUENCER"] == sequencer


@pytest.mark.parametrize("mode", ["thread", "inline", "off"])
def test_the_sequencer_mode_is_read_from_the_environment(tmp_path, mode):
    assert load_settings({**PRODUCTION, "CMP_SEQUENCER": mode}, str(tmp_path))["CMP_SEQUENCER"] == mode


def test_production_is_the_default_environment(tmp_path):
    assert load_settings(PRODUCTION, str(tmp_path))["CMP_ENV"] == "production"


def test_production_without_a_public_url_refuses_to_start(tmp_path):
    """Behind a proxy every request arrives as http: links built on it would leave in emails as http."""
    with pytest.raises(ConfigError, match="CMP_PUBLIC_URL must be set in production"):
        load_settings(SECRETS, str(tmp_path))


@pytest.mark.parametrize("env", ["development", "testing"])
def test_outside_production_links_may_use_each_requests_host(tmp_path, env):
    assert load_settings({**SECRETS, "CMP_ENV": env}, str(tmp_path))["CMP_PUBLIC_URL"] is None


def test_a_public_url_too_long_for_a_one_line_list_unsubscribe_refuses_to_start(tmp_path):
    longest = "https://consent.example-company.com"  # 35 characters: `List-Unsubscribe: <...>` fills 78
    assert load_settings({**SECRETS, "CMP_PUBLIC_URL": longest + "/"}, str(tmp_path))["CMP_PUBLIC_URL"] == longest
    with pytest.raises(ConfigError, match="at most 35 characters"):
        load_settings({**SECRETS, "CMP_PUBLIC_URL": "https://consent.example-company.co.uk"}, str(tmp_path))


def test_create_app_reads_the_environment_in_the_factory(monkeypatch, tmp_path):
    monkeypatch.delenv("CMP_SECRET_KEY", raising=False)
    monkeypatch.delenv("CMP_LOG_KEY", raising=False)
    monkeypatch.setenv("CMP_ENV", "production")
    with pytest.raises(ConfigError):
        create_app()
    monkeypatch.setenv("CMP_SECRET_KEY", "s" * 32)
    monkeypatch.setenv("CMP_HMAC_KEY", "h" * 32)
    monkeypatch.setenv("CMP_LOG_KEY", LOG_KEY)
    monkeypatch.setenv("CMP_PUBLIC_URL", "https://cmp.example")
    monkeypatch.setenv("CMP_DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    monkeypatch.setenv("CMP_CONSENT_LIFETIME_DAYS", "300")
    app = create_app()
    assert app.config["SECRET_KEY"] == "s" * 32
    assert app.config["CMP_CONSENT_LIFETIME_DAYS"] == 300
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("x.sqlite3")


def test_development_generates_and_keeps_secrets_in_the_instance_folder(tmp_path):
    first = load_settings({"CMP_ENV": "development"}, str(tmp_path))
    second = load_settings({"CMP_ENV": "development"}, str(tmp_path))
    assert first["CMP_SECRET_KEY"] and first["CMP_SECRET_KEY"] == second["CMP_SECRET_KEY"]
    assert first["CMP_HMAC_KEY"] != first["CMP_SECRET_KEY"]
    assert first["CMP_LOG_KEY"] == second["CMP_LOG_KEY"]
    stored = json.loads((tmp_path / "dev-secrets.json").read_text())
    assert stored["CMP_HMAC_KEY"] == first["CMP_HMAC_KEY"]
    assert (tmp_path / "dev-secrets.json").stat().st_mode & 0o077 == 0


def test_database_defaults_to_sqlite_in_the_instance_folder(tmp_path):
    settings = load_settings(PRODUCTION, str(tmp_path))
    assert settings["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'cmp.sqlite3'}"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CMP_CONSENT_LIFETIME_DAYS": "400"}, "13 months"),
        ({"CMP_CONSENT_LIFETIME_DAYS": "twelve"}, "integer"),
        ({"CMP_REFUSAL_LIFETIME_DAYS": "0"}, "at least 1"),
        ({"CMP_TRUSTED_PROXIES": "10.0.0.0/8, not-a-network"}, "CMP_TRUSTED_PROXIES"),
        ({"CMP_ENV": "staging"}, "CMP_ENV"),
        ({"CMP_HMAC_KEY": "s" * 32}, "differ"),
        ({"CMP_SEQUENCER": "cron"}, "CMP_SEQUENCER must be thread, inline or off"),
        ({"CMP_SEQUENCER_INTERVAL_MS": "5"}, "CMP_SEQUENCER_INTERVAL_MS"),
    ],
)
def test_invalid_settings_are_start_up_errors(tmp_path, environ, message):
    with pytest.raises(ConfigError, match=message):
        load_settings({**PRODUCTION, **environ}, str(tmp_path))


def test_missing_geoip_database_is_a_start_up_error(tmp_path):
    with pytest.raises(ConfigError, match="CMP_GEOIP_DATABASE"):
        create_app(
            {
                **PRODUCTION,
                "CMP_GEOIP_DATABASE": str(tmp_path / "absent.mmdb"),
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite3'}",
            }
        )


def test_trusted_proxies_are_parsed_as_networks(tmp_path):
    settings = load_settings({**PRODUCTION, "CMP_TRUSTED_PROXIES": "10.0.0.0/8, 2001:db8::/32"}, str(tmp_path))
    assert [str(n) for n in settings["CMP_TRUSTED_PROXY_NETWORKS"]] == ["10.0.0.0/8", "2001:db8::/32"]


def test_overrides_win_over_the_environment(tmp_path):
    settings = load_settings(
        {**PRODUCTION, "CMP_REFUSAL_LIFETIME_DAYS": "100"}, str(tmp_path), {"CMP_REFUSAL_LIFETIME_DAYS": 90}
    )
    assert settings["CMP_REFUSAL_LIFETIME_DAYS"] == 90


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_plain_postgresql_urls_use_the_installed_driver(tmp_path, scheme):
    settings = load_settings({**PRODUCTION, "CMP_DATABASE_URL": f"{scheme}://cmp@db.internal/cmp"}, str(tmp_path))
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://cmp@db.internal/cmp"
