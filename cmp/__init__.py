"""cmp: a self-hosted consent and cookie management platform."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from flask import Flask

from cmp.config import ConfigError, load_settings

__all__ = ["ConfigError", "create_app"]

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


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
    register_limits(app)
    register_errorhandlers(app)
    register_commands(app)
    return app


def register_extensions(app: Flask) -> None:
    from cmp.extensions import db, migrate
    from cmp.services.identifiers import VisitorIds
    from cmp.services.jurisdiction import GeoIPLocator, NoLocator

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    app.extensions["cmp.visitor_ids"] = VisitorIds(app.config["CMP_SECRET_KEY"], app.config["CMP_SECRET_KEY_FALLBACKS"])

    path = app.config["CMP_GEOIP_DATABASE"]
    if path:
        try:
            app.extensions["cmp.locator"] = GeoIPLocator(path)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"CMP_GEOIP_DATABASE: cannot open {path}: {exc}") from None
    else:
        if app.config["CMP_ENV"] == "production":
            logging.getLogger("cmp").warning("no CMP_GEOIP_DATABASE: every request is treated as opt_in")
        app.extensions["cmp.locator"] = NoLocator()


def register_blueprints(app: Flask) -> None:
    from cmp import dashboard
    from cmp.api import audit, email, email_links, health, lookup, openapi, receipts, rights, sites
    from cmp.banner import bp as banner_bp
    from cmp.banner import demo

    for blueprint in (
        health.bp,
        sites.bp,
        lookup.bp,
        email.bp,
        email_links.bp,
        receipts.bp,
        rights.bp,
        audit.bp,
        dashboard.bp,
        banner_bp,
        demo.bp,
        openapi.bp,
    ):
        app.register_blueprint(blueprint)


def register_limits(app: Flask) -> None:
    from cmp.api.headers import init_headers
    from cmp.limits import init_limits

    init_limits(app)
    init_headers(app)


def register_errorhandlers(app: Flask) -> None:
    from cmp.api.errors import register_error_handlers

    register_error_handlers(app)


def register_commands(app: Flask) -> None:
    from cmp.cli import register

    register(app)
