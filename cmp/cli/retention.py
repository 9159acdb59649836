"""`cmp purge`: apply the retention rules; meant for cron, safe to repeat."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import with_appcontext

from cmp.cli.params import DatabaseCommand, load_site
from cmp.services import retention
from cmp.services.sites import list_sites


@click.command("purge", cls=DatabaseCommand)
@with_appcontext
@click.option("--site", "site_key", help="Purge one site. Default: every site.")
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per site.")
def purge_command(site_key, dry_run, as_json):
    """Expire old grants, empty evidence past its limit, and remove events past their proof period.

    Evidence (address prefix, user agent, page URL) goes after CMP_EVIDENCE_RETENTION_DAYS; whole events
    after the consent's life plus CMP_PROOF_PERIOD_DAYS, leaving a checkpoint so the chain still verifies.
    Running it again changes nothing more.
    """
    policy = retention.Policy.from_settings(current_app.config)
    targets = [load_site(site_key)] if site_key else list_sites()
    for site in targets:
        report = retention.purge_site(site, policy, hmac_key=current_app.config["CMP_HMAC_KEY"], dry_run=dry_run)
        if as_json:
            click.echo(json.dumps(report.as_dict()))
            continue
        verb = "would" if dry_run else "did"
        checkpoint = report.checkpoint
        click.echo(
            f"{site.key}: {verb} expire {report.expired_grants} grant(s) of {report.expired_subjects} subject(s); "
            f"empty evidence of {report.evidence_emptied} event(s); remove {report.activity_removed} email "
            f"open(s)/click(s), {report.events_removed} event(s), {report.state_rows_removed} state row(s)"
            + (f" and {report.subjects_removed} subject(s)" if not dry_run else "")
            + (f"; chain resumes after seq {checkpoint['seq']}" if checkpoint else "")
            + (f"; {report.skipped} grant(s) changed meanwhile and were left" if report.skipped else "")
        )


commands = (purge_command,)
