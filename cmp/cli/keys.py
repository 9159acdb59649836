"""`cmp key`: API keys, printed once and stored as a digest."""

from __future__ import annotations

import click

from cmp.cli.params import DatabaseGroup, unit_of_work
from cmp.services import keys
from cmp.vocabulary import Scope


@click.group("key", cls=DatabaseGroup)
def key_group():
    """Create, list and revoke API keys."""


@key_group.command("create")
@click.option("--name", required=True, help="Who or what uses the key.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice([s.value for s in Scope]),
    help="Scope granted; repeat.",
)
@click.option("--site", "sites", multiple=True, help="Bind the key to this site; repeat. Default: every site.")
def key_create(name, scopes, sites):
    """Create a key; it is printed once and cannot be shown again."""
    with unit_of_work():
        new = keys.create_key(name, list(scopes), list(sites))
    click.echo(new.token)
    click.echo(
        f"key {new.key.key_id} ({', '.join(new.key.scopes)}; sites: {', '.join(new.key.sites) or 'all'}) "
        "— store it now, it is not shown again",
        err=True,
    )


@key_group.command("list")
def key_list():
    """List keys (never their secrets)."""
    for key in keys.list_keys():
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
        sites = ",".join(key.sites) or "all sites"
        click.echo(f"{key.key_id}\t{key.name}\t{','.join(key.scopes)}\t{sites}\t{state}\tlast used {used}")


@key_group.command("revoke")
@click.argument("key_id")
def key_revoke(key_id):
    """Revoke a key by its id (the part after `cmp_`)."""
    with unit_of_work():
        key = keys.revoke_key(key_id)
    click.echo(f"revoked {key.key_id}")


commands = (key_group,)
