"""Parameter types and helpers shared by the command groups."""

from __future__ import annotations

import re
from contextlib import contextmanager

import click
from flask.cli import AppGroup
from sqlalchemy.exc import OperationalError

from cmp.extensions import db
from cmp.models import Site
from cmp.services.sites import get_site

_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d|w|y)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


class DatabaseCommand(click.Command):
    """A command that explains an unreachable or unmigrated database instead of printing a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except OperationalError as exc:
            reason = str(exc.orig or exc).splitlines()[0]
            raise click.ClickException(
                f"the database is unreachable or not migrated (run `cmp db upgrade`): {reason}"
            ) from None


class DatabaseGroup(AppGroup):
    """A command group whose commands run in the app context and explain database errors."""

    command_class = DatabaseCommand


class Duration(click.ParamType):
    """`30m`, `12h`, `390d`, `1y` as seconds."""

    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        match = _DURATION.match(str(value).strip())
        if not match:
            self.fail(f"{value!r} is not a duration such as 30m, 12h, 390d or 1y", param, ctx)
        return int(match.group(1)) * _UNITS[match.group(2)]


def format_duration(seconds: int) -> str:
    """The largest unit that divides `seconds` exactly: 86400 is `1d`, 90 is `90s`."""
    for unit in ("y", "w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


class Pair(click.ParamType):
    """`NAME=VALUE`."""

    name = "name=value"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        name, sep, text = str(value).partition("=")
        if not sep or not name.strip():
            self.fail(f"{value!r} is not NAME=VALUE", param, ctx)
        return name.strip(), text


def load_site(key: str) -> Site:
    site = get_site(key)
    if site is None:
        raise click.UsageError(f"no site {key!r} (see `cmp site list`)")
    return site


@contextmanager
def unit_of_work():
    """Commit what the block did, or roll all of it back and explain why."""
    try:
        yield
        db.session.commit()
    except ValueError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
