"""cmp: a self-hosted consent and cookie management platform."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from flask import Flask

from cmp.config import ConfigError, load_settings

__all__ = ["ConfigError", "create_app"]


def shipped(folder: str) -> Path:
    """A folder kept at the top of the checkout (`migrations`, `static/banner`) that the code reads at run time.

    A wheel carries it inside the package, at cmp/<folder> (setup.cfg maps it there); a checkout, installed
    editable or not, has it next to the package.
    """
    package = Path(__file__).resolve().parent
    inside = package / folder
    return inside if inside.is_dir() else package.parent / folder


MIGRATIONS = shipped("migrations")


def create_app(config: Mapping | None = None) -> Flask:
    """Build the app; `config` overrides settings read from the environment (tests use it)."""
    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(load_settings(os.environ, app.instance_path, config))
    app.json.sort_keys = False

    from cmp.logs import configure_logging

    configure_logging(app)
    register_extensions(app)
    register_blueprints(app)
    register_response_headers(app)
    register_errorhandlers(app)
    register_commands(app)
    return app


def register_extensions(app: Flask) -> None:
    """Bind the shared extensions, then build the objects this app keeps for itself in `app.extensions`."""
    from cmp.extensions import db, migrate
    from cmp.limits import init_limits
    from cmp.sequencer import init_sequencer

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    init_limits(app)
    app.extensions.update(app_objects(app.config))
    init_sequencer(app)


def app_objects(config: Mapping) -> dict:
    """The objects views and commands read from `app.extensions`, made from this app's settings.

    Each app gets its own (tests build many apps, with different keys): signers made from its secret keys,
    with the older keys still accepted, the country locator, and the lookups' short-lived caches.
    """
    from cmp.api.lookup import Recent
    from cmp.services.email import EmailTokens
    from cmp.services.identifiers import VisitorIds
    from cmp.services.receipts import ReceiptTokens

    secret_keys = config["CMP_SECRET_KEY"], config["CMP_SECRET_KEY_FALLBACKS"]
    cache_seconds = float(config["CMP_LOOKUP_CACHE_SECONDS"])
    return {
        "cmp.visitor_ids": VisitorIds(*secret_keys),
        "cmp.receipt_tokens": ReceiptTokens(*secret_keys),
        "cmp.email_tokens": EmailTokens(
            *secret_keys, confirmation_max_age=timedelta(hours=config["CMP_CONFIRMATION_MAX_AGE_HOURS"])
        ),
        "cmp.lookup_cache": {"keys": Recent(cache_seconds), "sites": Recent(cache_seconds)},
        "cmp.locator": _locator(config),
        "cmp.log_key": _log_key(config["CMP_LOG_KEY"]),
    }


def _log_key(private_key: str):
    from cmp.services.tlog import LogKey

    try:
        return LogKey.load(private_key)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _locator(config: Mapping):
    from cmp.services.jurisdiction import GeoIPLocator, NoLocator

    path = config["CMP_GEOIP_DATABASE"]
    if not path:
        if config["CMP_ENV"] == "production":
            logging.getLogger("cmp").warning("no CMP_GEOIP_DATABASE: every request is treated as opt_in")
        return NoLocator()
    try:
        return GeoIPLocator(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"CMP_GEOIP_DATABASE: cannot open {path}: {exc}") from None


def register_blueprints(app: Flask) -> None:
    from cmp import dashboard
    from cmp.api import audit, email, email_links, health, log, lookup, openapi, receipts, rights, sites
    from cmp.banner import bp as banner_bp
    from cmp.banner import demo
    from cmp.limits import exempt_from_limits

    for blueprint in (
        health.bp,
        sites.bp,
        lookup.bp,
        email.bp,
        email_links.bp,
        receipts.bp,
        rights.bp,
        audit.bp,
        log.bp,
        dashboard.bp,
        banner_bp,
        demo.bp,
        openapi.bp,
    ):
        app.register_blueprint(blueprint)
    # Probes and the banner script (cacheable, usually served through a CDN) are never rate limited.
    exempt_from_limits(app, health.bp, banner_bp)


def register_response_headers(app: Flask) -> None:
    from cmp.api.headers import init_headers

    init_headers(app)


def register_errorhandlers(app: Flask) -> None:
    from cmp.api.errors import register_error_handlers

    register_error_handlers(app)


def register_commands(app: Flask) -> None:
    from cmp.cli import register

    register(app)
