"""`cmp run`: Flask's development server, after the start-up step every serving process takes."""

from __future__ import annotations

import click
from flask.cli import ScriptInfo, run_command

from cmp.banner import record_code


@click.command("run", params=list(run_command.params), help=run_command.help, short_help=run_command.short_help)
@click.pass_context
def run(ctx: click.Context, **options):
    # ScriptInfo keeps the app it loads: the server below runs this same one.
    record_code(ctx.ensure_object(ScriptInfo).load_app())
    ctx.invoke(run_command, **options)
