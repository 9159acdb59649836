"""`cmp export`: the consent log or the notice versions to a file; and `cmp verify --file`, offline."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import current_app
from flask.cli import NoAppException, ScriptInfo, with_appcontext

from cmp.cli.params import DatabaseCommand, load_site
from cmp.config import ConfigError
from cmp.errors import DomainError
from cmp.services import export, notes, tlog
from cmp.services.export_verify import FileReport, SiteReport, verify_file
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
    """Export consent events with their log fields (or, with --notices, notice versions) for an auditor.

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


def verify_export_file(path: str, notices: str | None, as_json: bool, key: str | None = None) -> None:
    """`cmp verify --file`: check an export from the file alone, print one line per site, exit 1 on a fault.

    The checkpoints are checked with `key` (the log's verifier key, `name+hash+base64`) or, without it, this
    service's own log key, for which the app is built: with `--key` no setting is needed.
    """
    report = verify_file(Path(path), Path(notices) if notices else None, key=log_verifier(key))
    print_report(report, as_json)
    if not report.ok:
        raise SystemExit(1)


def log_verifier(key: str | None) -> notes.Verifier | None:
    """The key given, or the app's log key; None where neither is there (the report then says what is missing)."""
    if key:
        try:
            return notes.Verifier.from_key(key)
        except notes.NoteError as exc:
            raise click.BadParameter(f"not a signed-note verifier key: {exc}", param_hint="--key") from None
    if current_app:
        return tlog.log_key().verifier
    try:
        app = click.get_current_context().ensure_object(ScriptInfo).load_app()
    except (ConfigError, NoAppException):
        return None
    with app.app_context():
        return tlog.log_key().verifier


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
            click.echo(f"{site.site}: ok, {result.checked} events checked ({_what_was_checked(site)})")
        else:
            where = (
                f"event {result.first_bad} (seq {result.first_bad_seq})"
                if result.first_bad
                else (f"seq {result.first_bad_seq}" if result.first_bad_seq is not None else "the file")
            )
            click.echo(f"{site.site}: FAILED at {where}: {result.reason}")
        for note in site.notes:
            click.echo(f"  note: {note}")


def _what_was_checked(site: SiteReport) -> str:
    if site.result.checkpoint_size is not None:
        return f"tree checked against the signed checkpoint of {site.result.checkpoint_size}"
    if site.links_checked:
        return "links checked"
    return "each event checked, its place in the log not checkable"


commands = (export_command,)
