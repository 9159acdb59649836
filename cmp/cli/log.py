"""`cmp log`, `cmp sequencer`, `cmp verify-receipt` and `cmp witness`: running the transparency log and checking it.

`log keygen`, `verify-receipt` and `witness` need neither the database nor the app's settings: they run on an
auditor's or a witness's own machine, with public keys and HTTP only.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click
from flask import current_app

from cmp.cli.params import DatabaseGroup, load_site, unit_of_work
from cmp.errors import Invalid
from cmp.services import notes, receipt_check, tlog
from cmp.services import witness as witnessing

# Where `cmp witness` finds the witness's private key when no key file is given.
WITNESS_KEY = "CMP_WITNESS_KEY"


@click.group("log", cls=DatabaseGroup)
def log_group():
    """The consent log as a transparency log: its keys, witnesses and checkpoints."""


@log_group.command("keygen", with_appcontext=False)
@click.option("--name", required=True, help="The key's name: the first part of every origin it signs.")
@click.option("--witness", "for_witness", is_flag=True, help="A witness's cosignature key pair instead.")
def log_keygen(name, for_witness):
    """Make a new Ed25519 key pair and print the private key, then the public (verifier) key.

    The log's key goes to CMP_LOG_KEY; a witness keeps its private key (CMP_WITNESS_KEY, or a file of its own)
    and gives the site's operator the other.
    """
    try:
        private, public = notes.generate_cosignature_key(name) if for_witness else notes.generate_key(name)
    except notes.NoteError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"{WITNESS_KEY}={private}" if for_witness else f"CMP_LOG_KEY={private}")
    click.echo(f"verifier key: {public}")


@log_group.group("witness", cls=DatabaseGroup)
def witness_group():
    """The witnesses whose cosignatures a site's log accepts."""


@witness_group.command("add")
@click.argument("site_key")
@click.argument("verifier_key")
def witness_add(site_key, verifier_key):
    """Accept cosignatures made with VERIFIER_KEY (a witness's `log keygen --witness` public key)."""
    site = load_site(site_key)
    if any(known.key == verifier_key for known in tlog.witnesses(site.id)):
        raise click.ClickException(f"site {site.key!r} already accepts witness key {verifier_key}")
    try:
        with unit_of_work():
            added = tlog.add_witness(site, verifier_key)
    except Invalid as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"site {site.key}: witness {added.name} added")


@witness_group.command("list")
@click.argument("site_key")
def witness_list(site_key):
    """The site's witnesses: name and verifier key, one per line."""
    for known in tlog.witnesses(load_site(site_key).id):
        click.echo(f"{known.name}\t{known.key}")


@log_group.command("checkpoint")
@click.argument("site_key")
def log_checkpoint(site_key):
    """Print the site's latest signed checkpoint with its witnesses' cosignatures."""
    site = load_site(site_key)
    latest = tlog.latest_cosigned(site.id)
    if latest is None:
        raise click.ClickException(f"the log of site {site.key!r} has no checkpoint yet")
    click.echo(latest.note, nl=False)


@click.command("sequencer", cls=DatabaseGroup.command_class)
@click.option("--once", is_flag=True, help="Integrate what is pending now, then exit.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.01),
    default=None,
    help="Seconds between rounds. Default: CMP_SEQUENCER_INTERVAL_MS.",
)
def sequencer_command(once, interval):
    """Integrate pending consent events into every site's log and sign checkpoints, until Ctrl-C.

    For deployments that set CMP_SEQUENCER=off in the app; any number may run, one integrates a site at a time.
    """
    from cmp.sequencer import Sequencer

    seconds = interval if interval is not None else current_app.config["CMP_SEQUENCER_INTERVAL_MS"] / 1000
    sequencer = Sequencer(current_app._get_current_object(), seconds)
    if once:
        click.echo(f"integrated {sequencer.run_once()} events")
        return
    click.echo(f"sequencer running every {seconds:g}s; Ctrl-C stops it", err=True)
    try:
        sequencer.run()
    except KeyboardInterrupt:
        click.echo("sequencer stopped", err=True)


@click.command("verify-receipt")
@click.argument("receipt_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--key", "verifier_key", required=True, help="The log's verifier (public) key, from a trusted source.")
@click.option("--require-integrated", is_flag=True, help="Fail while the entry is only promised, not yet in the tree.")
def verify_receipt_command(receipt_file, verifier_key, require_integrated):
    """Check a consent receipt from the file alone: its fields, its entry's hash, the log's signatures and its
    inclusion proof. Exit 1 if anything fails."""
    try:
        receipt = json.loads(Path(receipt_file).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise click.ClickException(f"{receipt_file} is not JSON: {exc}") from None
    if not isinstance(receipt, dict):
        raise click.ClickException(f"{receipt_file} is not a receipt (a JSON object)")
    try:
        checked = receipt_check.check_receipt(receipt, verifier_key)
    except receipt_check.ReceiptError as exc:
        click.echo(f"FAILED: {exc}")
        raise SystemExit(1) from None
    if checked.status == receipt_check.INTEGRATED:
        click.echo(
            f"ok: event {checked.event_id} is integrated in {checked.origin} "
            f"at index {checked.index} of the signed tree of size {checked.tree_size}"
        )
        return
    note = (
        f"event {checked.event_id} is pending: the log signed that it received it, "
        "and has not placed it in a signed tree yet"
    )
    if require_integrated:
        click.echo(f"FAILED: {note}")
        raise SystemExit(1)
    click.echo(f"ok (pending): {note}; check again later for its inclusion proof")


@click.command("witness")
@click.option(
    "--log", "log_url", required=True, help="The site's log address, e.g. https://cmp.example/api/v1/sites/shop/log"
)
@click.option("--log-key", required=True, help="The log's verifier (public) key.")
@click.option(
    "--key-file",
    type=click.File("r"),
    help=f"A file holding the witness's private cosignature key; without it, the key is read from {WITNESS_KEY}.",
)
@click.option("--state", "state_file", required=True, type=click.Path(dir_okay=False), help="The witness's state file.")
@click.option("--post", is_flag=True, help="Send the cosignature to the log.")
def witness_command(log_url, log_key, key_file, state_file, post):
    """Check the log's latest checkpoint against the last one accepted, then cosign it. Exit 1 if refused.

    The private key is never an argument, which any user of the machine could read in its process list.
    """
    witness_key = key_file.read().strip() if key_file is not None else os.environ.get(WITNESS_KEY)
    if not witness_key:
        raise click.UsageError(f"give the witness's private key: --key-file FILE, or {WITNESS_KEY} in the environment")
    try:
        log_verifier = notes.Verifier.from_key(log_key)
        signer = notes.CosignatureSigner.from_private(witness_key)
    except notes.NoteError as exc:
        raise click.UsageError(f"bad key: {exc}") from None
    try:
        accepted = witnessing.witness(
            witnessing.http_fetch(log_url),
            log_verifier,
            signer,
            Path(state_file),
            int(time.time()),
            witnessing.http_post(log_url) if post else None,
        )
    except witnessing.WitnessError as exc:
        click.echo(f"REFUSED: {exc}", err=True)
        raise SystemExit(1) from None
    since = "first checkpoint" if accepted.previous_size is None else f"consistent with size {accepted.previous_size}"
    click.echo(f"accepted {accepted.checkpoint.origin} size {accepted.checkpoint.size} ({since})", err=True)
    click.echo(accepted.cosignature)
    if post:
        click.echo("cosignature posted", err=True)


commands = (log_group, sequencer_command, verify_receipt_command, witness_command)
