"""``resque pool``: run and supervise several worker processes from one small config, like
resque-pool. Thin: reads the options and ``PoolSettings``, then runs ``Pool``.

resque-pool spells the config file ``-c/--config``; here ``-c`` is the worker's concurrency
(``resque work -c 4``), so the pool's config is ``-f/--config`` (a file, as ``make -f`` or
foreman's ``-f``), and ``RESQUE_POOL_CONFIG`` as in resque-pool.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import click

from resque.cli import namespace_option, redis_option
from resque.logs import setup_logging
from resque.pool.config import (
    DEFAULT_CONFIGS,
    Config,
    PoolConfigError,
    find_config,
    load_config,
    multiply,
    parse_config,
    parse_inline,
)
from resque.pool.supervisor import Pool, RestartPolicy
from resque.settings import PoolSettings


@click.command()
@click.option("-f", "--config", "config_path",
              help="YAML (or JSON) file of queue lists and counts (RESQUE_POOL_CONFIG; "
              "default: resque-pool.yml, then config/resque-pool.yml).")
@click.option("-w", "--workers", "inline", multiple=True, metavar="QUEUES[:COUNT]",
              help='Instead of a file: -w "high,low:2" -w mail, or a JSON object.')
@click.option("--count", type=click.IntRange(min=1),
              help="Multiply every entry's number of workers (COUNT, default 1).")
@click.option("-E", "--environment", help="Config section to merge over the top level "
              "(default: RESQUE_ENV, RACK_ENV or RAILS_ENV).")
@click.option("--app", "apps", multiple=True, help="Passed to each worker: module(s) that "
              "register your jobs.")
@click.option("--allow", "allowed", multiple=True, help="Passed to each worker.")
@click.option("--fork/--no-fork", default=None, help="Passed to each worker.")
@click.option("--interval", type=float, help="Passed to each worker.")
@click.option("--pidfile", help="Write the pool's pid here.")
@click.option("-v", "--verbose", count=True, help="-v info, -vv debug; passed to each worker.")
@redis_option
@namespace_option
def pool(
    config_path: str | None,
    inline: tuple[str, ...],
    count: int | None,
    environment: str | None,
    apps: tuple[str, ...],
    allowed: tuple[str, ...],
    fork: bool | None,
    interval: float | None,
    pidfile: str | None,
    verbose: int,
    redis_url: str | None,
    namespace: str | None,
) -> None:
    """Run and supervise worker processes per a config (like resque-pool).

    Restarts workers that die; TERM/INT/QUIT are passed on, then the pool waits for every
    worker and exits; USR1/USR2/CONT are passed on; HUP reloads the config, starting new
    workers while the old ones finish their current job (QUIT).
    """
    setup_logging(verbose)
    try:
        settings = PoolSettings.from_env(config=config_path, count=count,
                                         environment=environment)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    load = config_loader(settings, inline)
    try:
        config = load()
    except PoolConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    args = _worker_args(apps, allowed, fork, interval, namespace, verbose)
    # The URL may hold a password: workers get it in their environment, not on `ps`.
    env = {"RESQUE_REDIS": redis_url} if redis_url else {}
    supervisor = Pool(load, args, env, restart=RestartPolicy.from_settings(settings))
    sys.exit(supervisor.run(config, pidfile=pidfile))  # written once signals are handled


def _worker_args(
    apps: Sequence[str], allowed: Sequence[str], fork: bool | None, interval: float | None,
    namespace: str | None, verbose: int,
) -> list[str]:
    """What follows ``resque work -q <queues>`` on each worker's command line."""
    args = [f"--app={app}" for app in apps] + [f"--allow={allow}" for allow in allowed]
    if fork is not None:
        args.append("--fork" if fork else "--no-fork")
    if interval is not None:
        args.append(f"--interval={interval}")
    if namespace:
        args.append(f"--namespace={namespace}")
    return args + ["-v"] * verbose


def config_loader(settings: PoolSettings, inline: Sequence[str]) -> Callable[[], Config]:
    """How to (re)read the config at start and on HUP."""
    count, environment = settings.count, settings.environment
    if inline:
        if settings.config:
            raise click.UsageError("give either --config (RESQUE_POOL_CONFIG) or -w, not both")
        return lambda: multiply(parse_inline(inline), count)
    path = find_config(settings.config)
    if path is None:
        queues = ",".join(settings.queues)
        if queues:
            return lambda: multiply(parse_config({queues: 1}, source="QUEUES"), count)
        raise click.UsageError(
            f"no pool config: none of {', '.join(DEFAULT_CONFIGS)} here; give --config FILE "
            "or -w 'high,low:2'"
        )
    return lambda: multiply(load_config(path, environment), count)
