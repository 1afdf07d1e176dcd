"""The ``resque`` command. Thin: every verb calls the library."""

from __future__ import annotations

import importlib
import logging
import os
import signal
import subprocess
import sys
import traceback
from typing import Any

import click
import redis

from resque import __version__
from resque.client import Client
from resque.errors import BadLogFormat, BadRedisURL, NoQueueError, ResqueError
from resque.logs import setup_logging

log = logging.getLogger("resque.cli")


def import_apps(apps: tuple[str, ...]) -> list[str]:
    """Import the application modules that register jobs; returns their names. A module that
    cannot be found is a usage error; one that raises while it loads is the app's error,
    shown in one line with where it was raised."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    names = [name.strip() for app in apps for name in app.split(",") if name.strip()]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise click.UsageError(f"cannot import --app {name}: {exc}") from exc
        except Exception as exc:  # whatever the app raises, one clear line
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            raise click.ClickException(
                f"--app {name} raised {type(exc).__name__} while loading: {exc} "
                f"({frame.filename}, line {frame.lineno})") from exc
    return names


DEFAULT_REDIS_WAIT = 60.0  # seconds a verb waits for Redis to answer (RESQUE_REDIS_WAIT)


def redis_wait() -> float:
    """``RESQUE_REDIS_WAIT``: how long a short verb waits for Redis to answer (0: not at all)."""
    value = os.environ.get("RESQUE_REDIS_WAIT", "").strip()
    try:
        seconds = float(value) if value else DEFAULT_REDIS_WAIT
    except ValueError:
        raise click.UsageError(f"RESQUE_REDIS_WAIT={value!r} is not a number of seconds") from None
    return max(0.0, seconds)


# No envvar: RESQUE_REDIS and REDIS_URL are read in one place, resque.connection.
redis_option = click.option(
    "--redis", "redis_url",
    help="Redis URL or host:port[:db][/namespace] (default: RESQUE_REDIS, REDIS_URL, "
    "localhost:6379).",
)
namespace_option = click.option("--namespace", "-N", help="Key namespace (default: resque).")


class LazyGroup(click.Group):
    """Verbs that live in other modules are imported only when used, so ``resque work``
    never imports the dashboard or the scheduler."""

    lazy: dict[str, str] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def invoke(self, ctx: click.Context) -> Any:
        """Run the verb; an error it did not turn into a click error becomes one line (exit 2
        for a usage error, 1 for the rest), never a traceback."""
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:  # the last line of defence of the command
            raise as_click_error(exc) from exc

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module_name, _, attribute = self.lazy[cmd_name].partition(":")
            try:
                command = getattr(importlib.import_module(module_name), attribute)
            except ImportError as exc:  # an optional extra that is not installed
                command = _missing_extra(cmd_name, exc)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


def _missing_extra(name: str, exc: ImportError) -> click.Command:
    """A verb whose extra is missing: listed, and explains itself instead of a traceback."""
    extra = {"web": "web", "metrics": "prometheus"}.get(name, "scheduler")
    message = (f"resque {name} needs the '{extra}' extra ({exc}): "
               f"pip install 'resque[{extra}]'")

    def fail() -> None:
        raise click.ClickException(message)

    return click.Command(name, callback=fail, help=f"(not installed: pip install "
                         f"'resque[{extra}]')", context_settings={"ignore_unknown_options": True,
                                                                  "allow_extra_args": True})


def as_click_error(exc: Exception) -> click.ClickException:
    """One line for an error a verb let through: what the user gave (a Redis URL, a queue
    name) is a usage error; Redis refusing or failing is a runtime error."""
    if isinstance(exc, (BadRedisURL, BadLogFormat, NoQueueError)):
        return click.UsageError(str(exc))
    if isinstance(exc, ResqueError):
        return click.ClickException(str(exc))
    if isinstance(exc, redis.AuthenticationError):
        return click.ClickException(f"Redis refused the password: {exc} (check --redis, "
                                    "RESQUE_REDIS or REDIS_URL)")
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return click.ClickException(f"cannot reach Redis: {exc}")
    if isinstance(exc, redis.RedisError):
        return click.ClickException(f"Redis refused: {exc}")
    try:
        setup_logging(0)  # VVERBOSE=1 turns on debug, with the traceback
    except BadLogFormat:  # RESQUE_LOG_FORMAT is not the error at hand: say that one
        setup_logging(0, "text")
    log.debug("unexpected error", exc_info=exc)
    return click.ClickException(f"{type(exc).__name__}: {exc} (VVERBOSE=1 shows where)")


def lazy_command(name: str, target: str) -> None:
    """Register ``resque NAME`` as ``module:attribute``, imported on first use."""
    LazyGroup.lazy[name] = target


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="resque")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Resque for Python: background jobs on Redis, compatible with Ruby and Perl Resque."""
    hide_command_line(ctx.invoked_subcommand)


def hide_command_line(verb: str | None) -> None:
    """Title the process ``resque <verb>`` before anything else runs, so ``ps`` never shows
    its command line, where ``--redis`` may carry a password. Long-running verbs retitle
    themselves later (the worker, the scheduler, the pool, the dashboard)."""
    import setproctitle

    setproctitle.setproctitle(f"resque {verb}" if verb else "resque")


def _help(name: str) -> str:
    """An option's help from its WorkerSettings field: one text, one default."""
    from resque.settings import WorkerSettings, field_help

    return field_help(WorkerSettings, name)


@main.command()
@click.option("-q", "--queues", "queue_list", help=_help("queues"))
@click.option("--interval", type=float, help=_help("interval"))
@click.option("--burst", is_flag=True, default=None, help=_help("burst"))
@click.option("--fork/--no-fork", default=None, help=_help("fork"))
@click.option("--max-jobs", type=click.IntRange(min=1), help=_help("max_jobs"))
@click.option("--max-memory", type=click.IntRange(min=1), metavar="MB", help=_help("max_memory"))
@click.option("-c", "--concurrency", type=click.IntRange(min=1), default=None,
              help=_help("concurrency"))
@click.option("--pidfile", envvar="PIDFILE", help="Write the worker's pid here.")
@click.option("--background", is_flag=True, envvar="BACKGROUND",
              help="Detach from the terminal (BACKGROUND).")
@click.option("--count", type=click.IntRange(min=1), envvar="COUNT", default=1,
              help="Start this many worker processes (COUNT).")
@click.option("--app", "apps", multiple=True,
              help="Module(s) that register your jobs; imported first, and dotted job paths "
              "under them are allowed.")
@click.option("--allow", "allowed", multiple=True, help="Extra module prefix whose dotted job "
              "paths may be imported (also RESQUE_JOB_MODULES).")
@click.option("--job-metrics", is_flag=True, default=None, help=_help("job_metrics"))
@click.option("--job-timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help=_help("job_timeout"))
@click.option("-v", "--verbose", count=True,
              help="-v adds one line per job, -vv debug (VERBOSE, VVERBOSE); without it the "
              "worker logs its start, stop, pauses, requeues and failed jobs.")
@click.option("--log-format", type=click.Choice(["text", "json"]), envvar="RESQUE_LOG_FORMAT",
              help="text (default) or json: one JSON object per line, for log shippers "
              "(RESQUE_LOG_FORMAT).")
@redis_option
@namespace_option
def work(
    queue_list: str | None,
    interval: float | None,
    burst: bool | None,
    fork: bool | None,
    max_jobs: int | None,
    max_memory: int | None,
    concurrency: int | None,
    pidfile: str | None,
    background: bool,
    count: int,
    apps: tuple[str, ...],
    allowed: tuple[str, ...],
    job_metrics: bool | None,
    job_timeout: float | None,
    verbose: int,
    log_format: str | None,
    redis_url: str | None,
    namespace: str | None,
) -> None:
    """Start a worker on QUEUES (Ruby's `rake resque:work`)."""
    setup_logging(verbose, log_format, default=logging.INFO)
    if count > 1:
        sys.exit(_run_several(count, redis_url))
    from resque.settings import WorkerSettings
    from resque.worker import Worker

    modules = import_apps(apps)
    resque = Client(redis_url, namespace=namespace, allowed_modules=[*modules, *allowed])
    try:  # the environment (Ruby's variables), then the options given
        settings = WorkerSettings.from_env(
            None, queues=queue_list or None, interval=interval, burst=burst, fork=fork,
            max_jobs=max_jobs, max_memory=max_memory, concurrency=concurrency,
            job_metrics=job_metrics, job_timeout=job_timeout)
        worker = Worker(resque=resque, settings=settings)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if not worker.patterns:
        raise click.UsageError("give the worker at least one queue: -q high,low or QUEUE=...")
    if background:
        _daemonize()
    try:
        worker.work(pidfile=pidfile)  # written once the signal handlers are in place
    except ResqueError as exc:  # e.g. a refused password: say so, without a traceback
        raise click.ClickException(str(exc)) from exc


def _run_several(count: int, redis_url: str | None) -> int:
    """COUNT=N: N worker processes of the same command; signals are passed on to all.

    The Redis URL reaches them in ``RESQUE_REDIS``, never on a command line ``ps`` shows."""
    env = dict(os.environ, COUNT="1")
    if redis_url:
        env["RESQUE_REDIS"] = redis_url
    args: list[str] = []
    skip_value = False
    for arg in sys.argv[1:]:
        if skip_value:
            skip_value = False
        elif arg in ("--count", "--redis"):
            skip_value = True  # "--count 2": drop the value too
        elif not arg.startswith(("--count=", "--redis=")):
            args.append(arg)
    import setproctitle

    setproctitle.setproctitle(f"resque-{__version__}: Supervising {count} workers")
    children = [
        subprocess.Popen([sys.executable, "-m", "resque", *args], env=env) for _ in range(count)
    ]

    def forward(signum: int, frame: Any) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1,
                   signal.SIGUSR2, signal.SIGCONT):
        signal.signal(signum, forward)
    return max(child.wait() for child in children)


def _daemonize() -> None:
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)


@main.command()
@click.option("--jobs", "job_count", default=300, show_default=True, help="Demo jobs to enqueue.")
@click.option("--workers", default=2, show_default=True, help="Worker processes to run.")
@click.option("--fork/--no-fork", default=True, help="A child per job, or in-process.")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Where the demo's redis-server keeps its append-only file, and the demo its "
              "logs (default: ~/.local/share/resque-demo).")
@click.option("--linger", type=float, default=None,
              help="Keep the dashboard up this many seconds after the jobs drain "
              "(default: until Ctrl-C on a terminal, not at all otherwise).")
@click.option("--continue", "keep", is_flag=True,
              help="Keep the last run's jobs, failures and counters (default: start clean).")
@click.option("--redis", "redis_url",
              help="Use this Redis (in the namespace resque-demo) instead of the demo's own "
              "redis-server; RESQUE_REDIS and REDIS_URL are never used.")
def demo(
    job_count: int,
    workers: int,
    fork: bool,
    data_dir: str | None,
    linger: float | None,
    keep: bool,
    redis_url: str | None,
) -> None:
    """Enqueue demo jobs on a redis-server of its own, run workers, show them drain."""
    from resque.demo import DemoOptions, run_demo

    if linger is None:
        linger = float("inf") if sys.stdin.isatty() and sys.stdout.isatty() else 0.0
    sys.exit(run_demo(DemoOptions(job_count, workers, fork, data_dir, redis_url, linger, keep)))


# Admin verbs (resque/admin/cli.py), imported only when one of them runs.
lazy_command("queues", "resque.admin.cli:queues")
lazy_command("peek", "resque.admin.cli:peek")
lazy_command("enqueue", "resque.admin.cli:enqueue")
lazy_command("remove-queue", "resque.admin.cli:remove_queue")
lazy_command("failed", "resque.failure.cli:failed")
lazy_command("retries", "resque.policies.cli:retries")
lazy_command("workers", "resque.admin.cli:workers")
lazy_command("prune", "resque.admin.cli:prune")
lazy_command("recover", "resque.admin.cli:recover")
lazy_command("stats", "resque.admin.cli:stats")
lazy_command("pause", "resque.admin.cli:pause")
lazy_command("resume", "resque.admin.cli:resume")


# Scheduler verbs (resque/scheduler/cli.py), imported only when one of them runs.
lazy_command("scheduler", "resque.scheduler.cli:scheduler")
lazy_command("delayed", "resque.scheduler.cli:delayed")
lazy_command("schedule", "resque.scheduler.cli:schedule")

# The dashboard (resque/web/cli.py); needs the 'web' extra.
lazy_command("web", "resque.web.cli:web")

# Several supervised workers from a config (resque/pool/cli.py), like resque-pool.
lazy_command("pool", "resque.pool.cli:pool")

# The farm's Prometheus metrics (resque/prometheus/cli.py); needs the 'prometheus' extra.
lazy_command("metrics", "resque.prometheus.cli:metrics")


if __name__ == "__main__":
    main()
