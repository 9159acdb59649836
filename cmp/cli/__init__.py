"""The `cmp` command line: one command group per domain, also reachable as `flask --app cmp ...`."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup


def register(app: Flask) -> None:
    from cmp.cli import chain, keys, lookup, retention, sites

    for command in (*sites.commands, *keys.commands, *chain.commands, *lookup.commands, *retention.commands):
        app.cli.add_command(command)


@click.group(cls=FlaskGroup, create_app=lambda: __import__("cmp").create_app())
def cli():
    """Manage consent: sites, purposes, cookies, notices, keys and the consent log."""


def main() -> None:
    cli()
