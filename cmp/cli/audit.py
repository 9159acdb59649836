"""`cmp export`: the consent log or the notice versions to a file; and `cmp verify --file`, offline."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from cmp.cli.params import DatabaseCommand, load_site
from cmp.errors import DomainError
from cmp.services import export
from cmp.services.export_verify import FileReport, verify_file
from cmp.services.sites import list_sites
from cmp.vocabulary import EXPORT_FORMATS


class UTCTime(click.ParamType):
    """An ISO 8601 time; without a zone, UTC."""

    name = "time"

    def convert(self, value, param, ctx):
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time such as 2026-01-31T00:00:00Z", param, ctx)
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@contextmanager
def _output(path: str | None):
    """The named file, or stdout; CSV needs the file's own line endings, untranslated."""
    if path is None:
        yield sys.stdout
        return
    with open(path, "w", encoding="utf-8", newline="") as stream:
        yield stream


@click.command("export", cls=DatabaseCommand)
@with_appcontext
@click.option("--site", "site_keys", multiple=True, help="A site to export (repeat for several). Default: every site.")
@click.option("--from", "start", type=UTCTime(), help="Events received at or after this time (ISO 8601, UTC).")
@click.option("--to", "end", type=UTCTime(), help="Events received before this time (ISO 8601, UTC).")
@click.option("--subject", help="Only this subject's events: email:..., user:... or visitor:<signed id>.")
@click.option("--purpose", help="Only events that decide this purpose.")
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="jsonl", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write here. Default: stdout.")
@click.option("--notices", is_flag=True, help="Export the notice versions instead of the events.")
def export_command(site_keys, start, end, subject, purpose, fmt, output, notices):
    """Export consent events with their chain fields (or, with --notices, notice versions) for an auditor.

    Progress goes to stderr, so stdout can be piped. Check the file with `cmp verify --file`.
    """
    sites = [load_site(key) for key in dict.fromkeys(site_keys)] if site_keys else list_sites()
    if notices:
        if start or end or subject or purpose:
            raise click.UsageError("--notices exports every notice version; it takes only --site and --format")
        with _output(output) as stream:
            for chunk in export.render(export.notice_entries(sites), fmt, notices=True):
                stream.write(chunk)
        return
    try:
        selection = export.select_events(
            sites,
            start=start,
            end=end,
            subject=subject,
            purpose=purpose,
            hmac_key=current_app.config["CMP_HMAC_KEY"],
            visitor_ids=current_app.extensions["cmp.visitor_ids"],
        )
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    total = export.count_events(selection)
    with (
        _output(output) as stream,
        click.progressbar(length=total, label="exporting events", file=sys.stderr) as bar,
    ):
        for chunk in export.render(export.export_entries(selection, progress=bar.update), fmt):
            stream.write(chunk)


def verify_export_file(path: str, notices: str | None, as_json: bool) -> None:
    """`cmp verify --file`: check an export from the file alone, print one line per site, exit 1 on a fault."""
    report = verify_file(Path(path), Path(notices) if notices else None)
    print_report(report, as_json)
    if not report.ok:
        raise SystemExit(1)


def print_report(report: FileReport, as_json: bool) -> None:
    for site in report.sites:
        result = site.result
        if as_json:
            click.echo(
                json.dumps(
                    {"site": site.site, **result.as_dict(), "links_checked": site.links_checked, "notes": site.notes}
                )
            )
            continue
        if result.ok:
            links = "links checked" if site.links_checked else "each event checked, links not checkable"
            click.echo(f"{site.site}: ok, {result.checked} events checked ({links})")
        else:
            where = (
                f"event {result.first_bad} (seq {result.first_bad_seq})"
                if result.first_bad
                else (f"seq {result.first_bad_seq}" if result.first_bad_seq is not None else "the file")
            )
            click.echo(f"{site.site}: FAILED at {where}: {result.reason}")
        for note in site.notes:
            click.echo(f"  note: {note}")


commands = (export_command,)
