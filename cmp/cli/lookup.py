"""`cmp filter-events`: the analytics pipeline's gate, keeping only events whose subject has consent."""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field

import click
from flask import current_app
from flask.cli import with_appcontext

from cmp.cli.params import DatabaseCommand, load_site
from cmp.extensions import db
from cmp.services import lookup as lookups
from cmp.services.identifiers import InvalidIdentifier


@dataclass
class Tally:
    """What happened to the lines read: kept, or dropped and why."""

    read: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.dropped.items()))
        dropped = sum(self.dropped.values())
        return f"filter-events: read {self.read}, kept {self.kept}, dropped {dropped}" + (
            f" ({reasons})" if reasons else ""
        )


class Gate:
    """Holds events until a batch is full, then asks once for all their subjects and writes the allowed ones."""

    def __init__(self, site, purpose: str, subject_field: str, batch: int, out, tally: Tally):
        self.site = lookups.LookupSite.of(site)
        self.purpose = purpose
        self.subject_field = subject_field
        self.batch = batch
        self.out = out
        self.tally = tally
        self.visitor_ids = current_app.extensions["cmp.visitor_ids"]
        self.hmac_key = current_app.config["CMP_HMAC_KEY"]
        self.waiting: list[tuple[bytes, str]] = []

    def take(self, line: bytes) -> None:
        self.tally.read += 1
        subject, problem = self._subject(line)
        if problem:
            self.tally.dropped[problem] += 1
            return
        self.waiting.append((line, subject))
        if len(self.waiting) >= self.batch:
            self.flush()

    def _subject(self, line: bytes) -> tuple[str | None, str | None]:
        try:
            event = json.loads(line)
        except ValueError:  # also bytes that are not UTF-8
            return None, "invalid_json"
        if not isinstance(event, dict):
            return None, "invalid_json"
        subject = event.get(self.subject_field)
        if subject is None or subject == "":
            return None, "no_subject"
        if not isinstance(subject, str):
            return None, "unreadable_subject"
        # Checked here, one by one, because the lookup refuses a whole batch for one subject it cannot read.
        try:
            self.visitor_ids.identifier(self.site.key, subject)
        except InvalidIdentifier:
            return None, "unreadable_subject"
        return subject, None

    def flush(self) -> None:
        if not self.waiting:
            return
        subjects = list(dict.fromkeys(subject for _, subject in self.waiting))
        answers = lookups.lookup(
            self.site, subjects, [self.purpose], hmac_key=self.hmac_key, visitor_ids=self.visitor_ids
        )
        by_subject = {subject: answer[self.purpose] for subject, answer in zip(subjects, answers, strict=True)}
        for line, subject in self.waiting:
            answer = by_subject[subject]
            if answer.allowed:
                self.tally.kept += 1
                self.out.write(line)
            else:
                self.tally.dropped[answer.reason] += 1
        self.out.flush()
        self.waiting.clear()


@click.command("filter-events", cls=DatabaseCommand)
@with_appcontext
@click.option("--site", "site_key", required=True, help="The site whose consent applies.")
@click.option("--purpose", required=True, help="The purpose the events need, such as analytics.")
@click.option(
    "--subject-field",
    default="subject",
    show_default=True,
    help="The event's field naming its subject: visitor:<signed id>, user:<id> or email:<address>.",
)
@click.option(
    "--batch",
    type=click.IntRange(1, lookups.MAX_SUBJECTS),
    default=1000,
    show_default=True,
    help="Events per lookup.",
)
def filter_events_command(site_key, purpose, subject_field, batch):
    """Copy analytics events (JSON lines on stdin) whose subject may be processed for PURPOSE to stdout.

    Lines are written unchanged and in order. Dropped: events whose subject has no grant (no record, denied,
    withdrawn, expired, asked again after a material notice change, refused by GPC), and lines that are not a
    JSON object, lack the subject field or name a subject that cannot be read. A summary of both goes to stderr.
    """
    site = load_site(site_key)
    if site.purpose(purpose) is None:
        known = ", ".join(p.key for p in site.purposes)
        raise click.UsageError(f"site {site_key!r} has no purpose {purpose!r} (it has: {known})")
    tally = Tally()
    # Bytes in, bytes out: a kept line leaves exactly as it came.
    gate = Gate(site, purpose, subject_field, batch, sys.stdout.buffer, tally)
    # Nothing is written: end the read transaction, so a pipe that runs for hours holds no locks meanwhile.
    db.session.rollback()
    for line in sys.stdin.buffer:
        gate.take(line)
    gate.flush()
    click.echo(tally.summary(), err=True)


commands = (filter_events_command,)
