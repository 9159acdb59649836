"""The `cmp` command line: one command group per domain, also reachable as `flask --app cmp ...`."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup


def register(app: Flask) -> None:
    from cmp.cli import audit, chain, keys, log, lookup, retention, sites

    for module in (sites, keys, chain, lookup, audit, retention, log):
        for command in module.commands:
            app.cli.add_command(command)


@click.group(cls=FlaskGroup, create_app=lambda: __import__("cmp").create_app())
def cli():
    """Manage consent: sites, purposes, cookies, notices, keys and the consent log."""


def _offline_commands() -> None:
    """Commands found without building the app, so they run where no settings or database exist."""
    from cmp.cli import chain, log

    cli.add_command(chain.verify_command)
    cli.add_command(log.log_group)
    cli.add_command(log.verify_receipt_command)
    cli.add_command(log.witness_command)


_offline_commands()


def _serving_commands() -> None:
    """`cmp run` replaces Flask's own, so the development server starts as wsgi.py does."""
    from cmp.cli.run import run

    cli.add_command(run)


_serving_commands()


def main() -> None:
    cli()
