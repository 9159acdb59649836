"""`cmp verify`: recompute each site's hash chain."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from cmp.cli.params import DatabaseCommand, load_site
from cmp.services import chain
from cmp.services.sites import list_sites


@click.command("verify", cls=DatabaseCommand)
@with_appcontext
@click.option("--site", "site_key", help="Verify one site. Default: every site.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per site.")
def verify_command(site_key, as_json):
    """Check that no consent event was edited, deleted, inserted or reordered; exit 1 if one was.

    With --json, one JSON object per line, one line per site.
    """
    targets = [load_site(site_key)] if site_key else list_sites()
    if not targets:
        click.echo("no sites to verify")
        return
    failed = False
    for site in targets:
        result = chain.verify_site(site)
        failed |= not result.ok
        if as_json:
            click.echo(json.dumps({"site": site.key, **result.as_dict()}))
        elif result.ok:
            click.echo(f"{site.key}: ok, {result.checked} events checked")
        else:
            where = (
                f"event {result.first_bad} (seq {result.first_bad_seq})"
                if result.first_bad
                else f"seq {result.first_bad_seq}"
            )
            click.echo(f"{site.key}: FAILED at {where}: {result.reason}")
    if failed:
        raise SystemExit(1)


commands = (verify_command,)
