"""`cmp verify`: recompute each site's log against its tree and signed checkpoint, and check that erasures left
nothing behind. Each site's result is recorded, for the dashboard's verify page to show (run it from cron)."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import ScriptInfo

from cmp.cli.params import DatabaseCommand, load_site, unit_of_work
from cmp.services import chain, integrity, stats
from cmp.services.sites import list_sites


@click.command("verify", cls=DatabaseCommand)
@click.option("--site", "site_key", help="Verify one site. Default: every site.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per site.")
@click.option(
    "--file",
    "export_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Verify an export (`cmp export`) from the file alone, without the database.",
)
@click.option(
    "--notices",
    type=click.Path(exists=True, dir_okay=False),
    help="With --file: the notices export, to check each notice's hash and the notices events refer to.",
)
@click.option(
    "--key",
    "log_key",
    help="With --file: the log's verifier key (name+hash+base64) its checkpoints must be signed with. "
    "Default: this service's own log key.",
)
@click.pass_context
def verify_command(ctx, site_key, as_json, export_file, notices, log_key):
    """Check that no consent event was edited, deleted, inserted or reordered; exit 1 if one was.

    Every integrated event's hash, the tree's root in the log's head, and the latest checkpoint, whose signature
    is checked with the log's key: a log rewritten whole, every hash and root recomputed, no longer matches it.
    Each site's result is kept, and the auditor dashboard shows the latest with its age.

    From the database it also checks what erasure promises: no current state or email activity of a subject no
    identifier names, and no event after its subject's erasure; exit 1 if any is found.

    With --json, one JSON object per line, one line per site. With --file, the check reads only the file:
    an auditor needs neither the database nor this service's settings.
    """
    if export_file:
        if site_key:
            raise click.UsageError("--site applies to the database; a file is verified whole")
        from cmp.cli.audit import verify_export_file

        verify_export_file(export_file, notices, as_json, log_key)
        return
    if notices or log_key:
        raise click.UsageError("--notices and --key go with --file")
    # The app (and its database) only now: `cmp verify --file` must work where neither is configured.
    if current_app:
        _verify_database(site_key, as_json)
        return
    with ctx.ensure_object(ScriptInfo).load_app().app_context():
        _verify_database(site_key, as_json)


def _verify_database(site_key, as_json):
    targets = [load_site(site_key)] if site_key else list_sites()
    if not targets:
        click.echo("no sites to verify")
        return
    failed = False
    for site in targets:
        result, found = chain.verify_site(site), integrity.check_site(site)
        ok = result.ok and found.ok
        failed |= not ok
        with unit_of_work():
            stats.record_verification(site, result, ok=ok, reason=_reason(result, found))
        if as_json:
            # `ok` covers both checks; `integrity` lists what erasures left behind.
            click.echo(json.dumps({"site": site.key, **result.as_dict(), "ok": ok, "integrity": found.as_dict()}))
        else:
            _echo(site.key, result, found)
    if failed:
        raise SystemExit(1)


def _reason(result: chain.Verification, found: integrity.Integrity) -> str | None:
    """Why the site failed, in one line: the log's first problem, else what erasures left behind."""
    if not result.ok:
        return result.reason
    return "; ".join(f"{finding.count} {finding.description}" for finding in found.findings) or None


def _echo(site_key: str, result: chain.Verification, found: integrity.Integrity) -> None:
    if result.ok:
        signed = (
            f"tree checked against the signed checkpoint of {result.checkpoint_size}"
            if result.checkpoint_size is not None
            else "no signed checkpoint yet"
        )
        click.echo(f"{site_key}: ok, {result.checked} events checked ({signed})")
    else:
        where = (
            f"event {result.first_bad} (seq {result.first_bad_seq})"
            if result.first_bad
            else f"seq {result.first_bad_seq}"
        )
        click.echo(f"{site_key}: FAILED at {where}: {result.reason}")
    for finding in found.findings:
        named = ", ".join(finding.examples)
        click.echo(f"{site_key}: FAILED: {finding.count} {finding.description} ({finding.examples_of}: {named})")


commands = (verify_command,)
