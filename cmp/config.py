"""Settings read from the environment when the app is created, never at import."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

ENVIRONMENTS = ("production", "development", "testing")

# CNIL 2020-092: a consent cookie lives at most 13 months.
MAX_CONSENT_LIFETIME_DAYS = 395
# Policy section 5: access behaviour data (the evidence columns) is kept 3 years at most.
MAX_EVIDENCE_RETENTION_DAYS = 3 * 365


class ConfigError(RuntimeError):
    """A setting is missing or invalid; the app refuses to start."""


def _int(environ: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _list(environ: Mapping[str, str], name: str) -> list[str]:
    return [item.strip() for item in environ.get(name, "").split(",") if item.strip()]


def _networks(values: list[str], name: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    try:
        return [ipaddress.ip_network(value, strict=False) for value in values]
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _database_url(url: str) -> str:
    """A plain postgresql:// URL means psycopg 3, the driver this package installs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _public_url(value: str | None, env: str) -> str | None:
    """The service's public base URL without a trailing slash, or None to use each request's own host.

    Production requires it: behind a TLS-terminating proxy each request arrives as http, and links in emails and
    receipts must be https (RFC 8058 section 3.1) whatever a client puts in X-Forwarded-Proto.
    """
    from cmp.services.email import MAX_PUBLIC_URL_LENGTH

    if not value:
        if env == "production":
            raise ConfigError(
                "CMP_PUBLIC_URL must be set in production: links in emails and receipts are built on it "
                "(for example https://consent.example.com)"
            )
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(f"CMP_PUBLIC_URL must be an http(s) URL with a host and no query, got {value!r}")
    # RFC 8058 section 3.1: a one-click List-Unsubscribe URI must be https.
    if env == "production" and parts.scheme != "https":
        raise ConfigError(f"CMP_PUBLIC_URL must be https in production (RFC 8058 one-click), got {value!r}")
    value = value.rstrip("/")
    if len(value) > MAX_PUBLIC_URL_LENGTH:
        raise ConfigError(
            f"CMP_PUBLIC_URL may be at most {MAX_PUBLIC_URL_LENGTH} characters, so that a List-Unsubscribe header "
            f"fits one 78-character line (RFC 5322 section 2.1.1) and mail libraries send it unencoded; "
            f"got {len(value)}: {value!r}"
        )
    return value


def _development_secrets(instance_path: str, public_url: str | None) -> dict[str, str]:
    """Keep generated secrets in the instance folder so signed ids and the log's key survive restarts."""
    path = Path(instance_path) / "dev-secrets.json"
    values = json.loads(path.read_text()) if path.exists() else {}
    generated = {
        "CMP_SECRET_KEY": lambda: secrets.token_urlsafe(32),
        "CMP_HMAC_KEY": lambda: secrets.token_urlsafe(32),
        "CMP_LOG_KEY": lambda: _log_key(public_url),
    }
    missing = {name: make() for name, make in generated.items() if name not in values}
    if missing:
        values.update(missing)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
        path.chmod(0o600)
    return values


def _log_key(public_url: str | None) -> str:
    """A new signing key for the consent log, named after the service's host (the log's name in its origins)."""
    from cmp.services.notes import generate_key

    host = urlsplit(public_url).hostname if public_url else None
    return generate_key(host or "cmp.localhost")[0]


def load_settings(environ: Mapping[str, str], instance_path: str, overrides: Mapping | None = None) -> dict:
    """Build the app's configuration from the environment, then apply ``overrides``.

    In production a missing ``CMP_SECRET_KEY`` or ``CMP_HMAC_KEY`` is a start-up error.
    """
    overrides = dict(overrides or {})
    env = overrides.get("CMP_ENV", environ.get("CMP_ENV", "production"))
    if env not in ENVIRONMENTS:
        raise ConfigError(f"CMP_ENV must be one of {', '.join(ENVIRONMENTS)}, got {env!r}")

    default_db = "sqlite:///" + os.path.join(instance_path, "cmp.sqlite3")
    settings: dict = {
        "CMP_ENV": env,
        "SQLALCHEMY_DATABASE_URI": _database_url(environ.get("CMP_DATABASE_URL") or default_db),
        "CMP_SECRET_KEY": environ.get("CMP_SECRET_KEY", ""),
        "CMP_SECRET_KEY_FALLBACKS": _list(environ, "CMP_SECRET_KEY_FALLBACKS"),
        "CMP_HMAC_KEY": environ.get("CMP_HMAC_KEY", ""),
        # The consent log's Ed25519 key in the signed-note format (`cmp log keygen` makes one).
        "CMP_LOG_KEY": environ.get("CMP_LOG_KEY", ""),
        # Who integrates pending events into the log: a thread in each app process; `inline`, each request that
        # wrote, once committed (one process, and the tests); or `off` where a `cmp sequencer` process does it.
        "CMP_SEQUENCER": environ.get("CMP_SEQUENCER") or ("inline" if env == "testing" else "thread"),
        "CMP_SEQUENCER_INTERVAL_MS": _int(environ, "CMP_SEQUENCER_INTERVAL_MS", 200, minimum=10),
        "CMP_GEOIP_DATABASE": environ.get("CMP_GEOIP_DATABASE") or None,
        "CMP_TRUSTED_PROXIES": _list(environ, "CMP_TRUSTED_PROXIES"),
        "CMP_COUNTRY_HEADER": environ.get("CMP_COUNTRY_HEADER") or None,
        "CMP_CONSENT_LIFETIME_DAYS": _int(environ, "CMP_CONSENT_LIFETIME_DAYS", 365, minimum=1),
        "CMP_REFUSAL_LIFETIME_DAYS": _int(environ, "CMP_REFUSAL_LIFETIME_DAYS", 182, minimum=1),
        "CMP_PUBLIC_URL": environ.get("CMP_PUBLIC_URL") or None,
        "CMP_CONFIRMATION_MAX_AGE_HOURS": _int(environ, "CMP_CONFIRMATION_MAX_AGE_HOURS", 7 * 24, minimum=1),
        "MAX_CONTENT_LENGTH": _int(environ, "CMP_MAX_BODY_BYTES", 64 * 1024, minimum=1024),
        "CMP_LOG_LEVEL": environ.get("CMP_LOG_LEVEL", "INFO").upper(),
        "CMP_DB_POOL_SIZE": _int(environ, "CMP_DB_POOL_SIZE", 5, minimum=1),
        "CMP_LOOKUP_CACHE_SECONDS": _int(environ, "CMP_LOOKUP_CACHE_SECONDS", 5, minimum=0),
        "CMP_EVIDENCE_RETENTION_DAYS": _int(
            environ, "CMP_EVIDENCE_RETENTION_DAYS", MAX_EVIDENCE_RETENTION_DAYS, minimum=1
        ),
        "CMP_PROOF_PERIOD_DAYS": _int(environ, "CMP_PROOF_PERIOD_DAYS", 5 * 365, minimum=0),
        "CMP_REDIS_URL": environ.get("CMP_REDIS_URL") or None,
        "CMP_RATE_LIMIT_PUBLIC": environ.get("CMP_RATE_LIMIT_PUBLIC") or "600 per minute",
        "CMP_RATE_LIMIT_API": environ.get("CMP_RATE_LIMIT_API") or "6000 per minute",
        # Where consent records are stored, stated in receipts (policy section 8, international transfer).
        "CMP_STORAGE_LOCATION": environ.get("CMP_STORAGE_LOCATION") or None,
        # How long an auditor stays signed in to the dashboard, counted from sign-in.
        "CMP_AUDIT_SESSION_HOURS": _int(environ, "CMP_AUDIT_SESSION_HOURS", 8, minimum=1),
    }
    settings.update(overrides)

    if settings["CMP_CONSENT_LIFETIME_DAYS"] > MAX_CONSENT_LIFETIME_DAYS:
        raise ConfigError(
            f"CMP_CONSENT_LIFETIME_DAYS may not exceed {MAX_CONSENT_LIFETIME_DAYS} (13 months), "
            f"got {settings['CMP_CONSENT_LIFETIME_DAYS']}"
        )
    if settings["CMP_EVIDENCE_RETENTION_DAYS"] > MAX_EVIDENCE_RETENTION_DAYS:
        raise ConfigError(
            f"CMP_EVIDENCE_RETENTION_DAYS may not exceed {MAX_EVIDENCE_RETENTION_DAYS} (3 years, policy section 5), "
            f"got {settings['CMP_EVIDENCE_RETENTION_DAYS']}"
        )
    missing = [name for name in ("CMP_SECRET_KEY", "CMP_HMAC_KEY", "CMP_LOG_KEY") if not settings[name]]
    if missing:
        if env == "production":
            raise ConfigError(
                f"{', '.join(missing)} must be set in production (generate a secret key with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))', and the log key with: cmp log keygen)"
            )
        generated = _development_secrets(instance_path, settings["CMP_PUBLIC_URL"])
        for name in missing:
            settings[name] = generated[name]
    if settings["CMP_HMAC_KEY"] == settings["CMP_SECRET_KEY"]:
        raise ConfigError("CMP_HMAC_KEY must differ from CMP_SECRET_KEY")

    if settings["CMP_SEQUENCER"] not in ("thread", "inline", "off"):
        raise ConfigError(f"CMP_SEQUENCER must be thread, inline or off, got {settings['CMP_SEQUENCER']!r}")
    settings["CMP_PUBLIC_URL"] = _public_url(settings["CMP_PUBLIC_URL"], env)
    for name, value in _rate_limit_settings(settings).items():
        settings.setdefault(name, value)

    proxies = settings["CMP_TRUSTED_PROXIES"]
    if isinstance(proxies, str):
        proxies = settings["CMP_TRUSTED_PROXIES"] = _list({"v": proxies}, "v")
    settings["CMP_TRUSTED_PROXY_NETWORKS"] = _networks(proxies, "CMP_TRUSTED_PROXIES")
    settings["SECRET_KEY"] = settings["CMP_SECRET_KEY"]
    settings["SECRET_KEY_FALLBACKS"] = settings["CMP_SECRET_KEY_FALLBACKS"]
    settings["SQLALCHEMY_ENGINE_OPTIONS"] = _engine_options(
        settings["SQLALCHEMY_DATABASE_URI"], settings["CMP_DB_POOL_SIZE"]
    )
    settings["TESTING"] = env == "testing"
    for name, value in _session_cookie(env, settings["CMP_AUDIT_SESSION_HOURS"]).items():
        settings.setdefault(name, value)
    return settings


def _rate_limit_settings(settings: Mapping) -> dict:
    """Flask-Limiter's own settings from ours; a limit set to `off` is not applied."""
    from limits import parse_many

    for name in ("CMP_RATE_LIMIT_PUBLIC", "CMP_RATE_LIMIT_API"):
        value = settings[name]
        if value == "off":
            continue
        try:
            parse_many(value)
        except ValueError:
            raise ConfigError(f"{name} must be a rate such as '600 per minute' or 'off', got {value!r}") from None
    redis_url = settings["CMP_REDIS_URL"]
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "redis+sentinel://")):
        raise ConfigError(f"CMP_REDIS_URL must be a redis:// or rediss:// URL, got {redis_url!r}")
    return {
        "RATELIMIT_ENABLED": (settings["CMP_RATE_LIMIT_PUBLIC"], settings["CMP_RATE_LIMIT_API"]) != ("off", "off"),
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_KEY_PREFIX": "cmp",
        # Redis unreachable: keep serving, counting in memory until it is back.
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    }


def _session_cookie(env: str, hours: int) -> dict:
    """Flask's signed session cookie: only the auditor dashboard uses it, so it is scoped to /audit."""
    return {
        "SESSION_COOKIE_NAME": "cmp_audit",
        "SESSION_COOKIE_PATH": "/audit",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Strict",
        "SESSION_COOKIE_SECURE": env == "production",
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=hours),
        # The cookie is written when the session changes, not on every chart request.
        "SESSION_REFRESH_EACH_REQUEST": False,
    }


def _engine_options(url: str, pool_size: int) -> dict:
    # A statement's parameters (identifier digests, evidence) stay out of error messages and so out of the logs.
    private = {"hide_parameters": True}
    if url.startswith("sqlite"):
        # Writers queue on SQLite's lock rather than failing at once.
        return {**private, "connect_args": {"timeout": 30}}
    return {
        **private,
        # No pre-ping (a round trip per checkout): cmp.extensions discards connections the server closed, and
        # connections are renewed hourly, before a proxy or firewall would drop them silently.
        "pool_recycle": 3600,
        "pool_size": pool_size,
        "max_overflow": pool_size * 2,
        "pool_timeout": 10,
        "connect_args": {"connect_timeout": 2},
    }
