"""The management commands' shared body: a ``resque`` verb run with the project loaded.

The verb gets the backend's Redis as ``RESQUE_REDIS`` (never on a command line, where ``ps``
would show a password). A worker imports every installed app's ``tasks`` module first, so
its tasks are registered by their dotted paths, and takes the backend's queues in priority
order unless told otherwise. Jobs fork from the worker, which has Django set up, not from a
fork server that never loaded it (``RESQUE_FORK_SERVER=0``, unless you set it); database
connections are closed before each fork, so a child never shares its parent's socket.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from resque.cli import main as resque_main
from resque.contrib.django.backend import ResqueBackend, resque_backend, worker_queues

# manage.py's own options, read by Django before the command runs: not the verb's.
DJANGO_OPTIONS = ("--settings", "--pythonpath")
QUEUE_OPTIONS = ("-q", "--queues")


class ResqueCommand(BaseCommand):
    """Runs ``resque <verb> ARGS``; ``verb`` None: the first argument names it."""

    verb: str | None = None

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("args", nargs="*", help="the verb's arguments")

    def run_from_argv(self, argv: list[str]) -> None:
        """``manage.py <command> ARGS``: every argument goes to the verb, as typed."""
        prog = f"{os.path.basename(argv[0])} {argv[1]}"
        code = self.run(_without_django_options(argv[2:]), prog, standalone=True)
        sys.exit(code)

    def handle(self, *args: Any, **options: Any) -> None:
        """``call_command(<command>, ARGS...)``: the same, raising ``CommandError``."""
        code = self.run(list(args), f"manage.py {self.verb or 'resque'}", standalone=False)
        if code:
            raise CommandError(f"resque {self.verb or ''} exited {code}")

    def run(self, args: list[str], prog: str, *, standalone: bool) -> int:
        alias, args = _take_option(args, "--backend", "default")
        backend = _backend(alias)
        if backend.options.get("REDIS"):
            os.environ["RESQUE_REDIS"] = str(backend.options["REDIS"])
        verb = self.verb or (args.pop(0) if args and not args[0].startswith("-") else None)
        if verb == "work":
            args = prepare_worker(backend, args)
        command = [verb, *args] if verb else args
        try:
            resque_main.main(args=command, prog_name=prog, standalone_mode=standalone)
        except SystemExit as exc:  # standalone: click exits, with the verb's status
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except click.ClickException as exc:
            raise CommandError(exc.format_message()) from exc
        return 0


def prepare_worker(backend: ResqueBackend, args: list[str]) -> list[str]:
    """Load the project's tasks, close database connections before each fork, and default
    the queues to the backend's, in priority order."""
    from django.db import connections
    from django.utils.module_loading import autodiscover_modules

    from resque.hooks import worker_hook

    autodiscover_modules("tasks")
    worker_hook("before_fork")(lambda job: connections.close_all())
    os.environ.setdefault("RESQUE_FORK_SERVER", "0")
    given = any(arg in QUEUE_OPTIONS or arg.startswith("--queues=") for arg in args)
    if given or os.environ.get("QUEUES") or os.environ.get("QUEUE") or "--help" in args:
        return args
    if not backend.queue_order:
        raise CommandError("the backend lists no QUEUES (any queue is valid): say which "
                           "queues to work with -q")
    return ["-q", ",".join(worker_queues(backend.queue_order)), *args]


def _backend(alias: str) -> ResqueBackend:
    try:
        return resque_backend(alias)
    except ImproperlyConfigured as exc:
        raise CommandError(str(exc)) from exc


def _take_option(args: list[str], name: str, default: str) -> tuple[str, list[str]]:
    """``--name VALUE`` or ``--name=VALUE`` taken out of ``args``."""
    rest: list[str] = []
    value = default
    items = iter(args)
    for arg in items:
        if arg == name:
            value = next(items, default)
        elif arg.startswith(name + "="):
            value = arg.partition("=")[2]
        else:
            rest.append(arg)
    return value, rest


def _without_django_options(args: list[str]) -> list[str]:
    for name in DJANGO_OPTIONS:
        _, args = _take_option(args, name, "")
    return args
