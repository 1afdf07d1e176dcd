"""``flask resque <verb>``: every ``resque`` verb, on the app's Redis, with the app loaded.

Flask finds this group through the ``flask.commands`` entry point. Loading the app imports
the modules that register its jobs, so ``flask resque work -q mail`` needs no ``--app``.
The app's ``RESQUE_REDIS`` reaches the verbs (and any worker processes they start) as the
``RESQUE_REDIS`` environment variable, never on a command line. Jobs fork from the worker,
which holds the app, not from a fork server that never loaded it (``RESQUE_FORK_SERVER=0``,
unless you set it).
"""

from __future__ import annotations

import os

import click
from flask import current_app
from flask.cli import with_appcontext

from resque.cli import LazyGroup, hide_command_line
from resque.cli import main as resque_main


class Verbs(LazyGroup):
    """The ``resque`` command's verbs, listed and loaded as ``resque`` does, and run as it
    runs them: an error is one line (exit 2 for a usage error, 1 for the rest)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return resque_main.list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return resque_main.get_command(ctx, cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[
            str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name == "work" and any(arg.startswith("--count") for arg in rest):
            # --count starts `python -m resque` processes, which would not load the app.
            raise click.UsageError("flask resque work runs one worker: start several, or "
                                   "use resque pool")
        return name, command, rest


@click.group(cls=Verbs)
@with_appcontext
def resque() -> None:
    """Resque verbs on this app's Redis (RESQUE_REDIS): work, stats, failed, web, ..."""
    hide_command_line(click.get_current_context().invoked_subcommand)  # --redis stays out of ps
    if "resque" not in current_app.extensions:
        raise click.UsageError("this app does not use resque.contrib.flask: call "
                               "Resque(app) (or init_app) in it first")
    redis_url = current_app.config.get("RESQUE_REDIS")
    if redis_url:
        os.environ["RESQUE_REDIS"] = str(redis_url)
    os.environ.setdefault("RESQUE_FORK_SERVER", "0")
