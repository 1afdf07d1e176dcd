"""``resque scheduler``, ``resque delayed`` and ``resque schedule``. Thin: each verb calls
``resque.scheduler``. The scheduler's options fall back to the environment variables Ruby's
resque-scheduler reads, through ``resque.settings.SchedulerSettings``."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import click

from resque import layout
from resque.cli import import_apps, namespace_option, redis_option, redis_wait
from resque.connection import check_credentials, wait_until_reachable
from resque.errors import ResqueError
from resque.facade import Resque
from resque.logs import setup_logging
from resque.scheduler.process import Scheduler
from resque.scheduler.schedule import ScheduleError, load_schedule_file
from resque.scheduler.state import lock_prefix_from_env, read_state
from resque.settings import SchedulerSettings


def _client(redis_url: str | None, namespace: str | None, apps: tuple[str, ...] = ()) -> Resque:
    """The farm, once Redis answers (as the admin verbs: up to ``RESQUE_REDIS_WAIT``)."""
    modules = import_apps(apps)
    resque = Resque(redis_url, namespace=namespace, allowed_modules=modules)
    wait_until_reachable(resque.redis, redis_wait(), logging.getLogger("resque.scheduler"))
    return resque


def _when(timestamp: float) -> str:
    return f"{layout.started_at(timestamp)} ({int(timestamp)})"


def warn_if_overdue(resque: Resque) -> None:
    """On stderr: due delayed jobs that no scheduler will move (none is master)."""
    warning = read_state(resque, lock_prefix_from_env()).overdue_warning()
    if warning:
        click.echo(f"warning: {warning}", err=True)


def _note_schedule_change(resque: Resque) -> None:
    """Who picks a stored schedule's change up: a warning when nobody will soon."""
    warning, text = read_state(resque, lock_prefix_from_env()).schedule_change_note()
    click.echo(f"{'warning' if warning else 'note'}: {text}", err=True)


def _json_args(values: tuple[str, ...]) -> list[Any]:
    """Each argument as JSON (``1``, ``"a"``, ``{"k":2}``); what is not JSON is a string."""
    parsed: list[Any] = []
    for value in values:
        try:
            parsed.append(layout.decode(value))
        except ValueError:
            parsed.append(value)
    return parsed


app_option = click.option(
    "--app", "apps", multiple=True,
    help="Module(s) that register your jobs (for their queues and hooks); imported first.",
)


# --- resque scheduler -------------------------------------------------------------------------


def _default(name: str) -> str:
    """A setting's default, for --help (the value is written once, in SchedulerSettings)."""
    return f"default {getattr(SchedulerSettings, name)!r}"


@click.command()
@click.option("-s", "--schedule", "schedule_file", type=click.Path(exists=True, dir_okay=False),
              help="A resque-scheduler YAML schedule file (RESQUE_SCHEDULE).")
@click.option("-D", "--dynamic", is_flag=True, default=None,
              help="Follow schedules stored in Redis while running (DYNAMIC_SCHEDULE).")
@click.option("-i", "--interval", type=click.FloatRange(min=0.01),
              help=f"Seconds between polls (RESQUE_SCHEDULER_INTERVAL, {_default('interval')}).")
@click.option("--lock-timeout", type=click.IntRange(min=1),
              help=f"Master lock TTL in seconds (LOCK_TIMEOUT, {_default('lock_timeout')}).")
@click.option("--lock-prefix", help="Master lock prefix (RESQUE_SCHEDULER_MASTER_LOCK_PREFIX).")
@click.option("--batch-size", type=click.IntRange(min=1, max=SchedulerSettings.MAX_BATCH_SIZE),
              help="Delayed jobs moved per atomic batch (DELAYED_REQUEUE_BATCH_SIZE, "
              f"{_default('batch_size')}).")
@click.option("-E", "--env", "env_name",
              help="Environment: schedules with rails_env/env load only if it is listed "
              "(RAILS_ENV).")
@click.option("--catch-up", type=click.FloatRange(min=0),
              help="Enqueue (once) a recurring tick missed up to this many seconds ago when "
              "becoming master. Default: lock timeout + 2 intervals; 0 = never, as Ruby.")
@click.option("-n", "--app-name", help="Shown in the process title (APP_NAME).")
@click.option("-P", "--pidfile", help="Write the pid here (PIDFILE).")
@app_option
@click.option("-v", "--verbose", count=True, help="-v info, -vv debug (VERBOSE, VVERBOSE).")
@redis_option
@namespace_option
def scheduler(
    apps: tuple[str, ...],
    verbose: int,
    redis_url: str | None,
    namespace: str | None,
    env_name: str | None,
    **options: Any,
) -> None:
    """Move due delayed jobs and enqueue recurring ones (resque-scheduler's master/standby).

    Every option falls back to the environment variable in brackets (resque-scheduler's)."""
    setup_logging(max(verbose, 1))
    try:
        settings = SchedulerSettings.from_env(env=env_name, **options)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    resque = Resque(redis_url, namespace=namespace, allowed_modules=import_apps(apps))
    check_credentials(resque.redis)  # a refused password is fatal now; an outage is waited out
    try:
        process = Scheduler(resque, settings=settings)
    except ScheduleError as exc:
        raise click.UsageError(str(exc)) from exc
    process.run(pidfile=settings.pidfile)


# --- resque delayed ---------------------------------------------------------------------------


@click.group()
def delayed() -> None:
    """Delayed jobs (enqueue_at / enqueue_in), in resque-scheduler's layout."""


@delayed.command("list")
@click.option("--start", type=click.IntRange(min=0), default=0, help="First timestamp shown.")
@click.option("--count", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--items", is_flag=True, help="Show every job of each timestamp (up to 100).")
@redis_option
@namespace_option
def delayed_list(
    start: int, count: int, items: bool, redis_url: str | None, namespace: str | None
) -> None:
    """Timestamps with delayed jobs, oldest first."""
    resque = _client(redis_url, namespace)
    total, rows = resque.delayed.page(start, count)
    click.echo(f"{total} timestamps, {resque.count_all_scheduled_jobs()} delayed jobs")
    for row in rows:
        summary = f"{row.size} jobs"
        if row.size == 1 and row.first is not None:
            summary = f"{row.first.get('class')} {layout.encode(row.first.get('args'))} " \
                      f"on {row.first.get('queue')}"
        click.echo(f"{_when(row.timestamp)}  {summary}")
        if items and row.size:
            for item in resque.delayed.delayed_timestamp_peek(row.timestamp, 0, 100):
                click.echo(f"    {layout.encode(item)}")
    warn_if_overdue(resque)


@delayed.command("remove")
@click.argument("job_class")
@click.argument("args", nargs=-1)
@click.option("-q", "--queue", help="The queue it was delayed to (default: the class's own).")
@click.option("--at", "timestamp", type=int, help="Only from this timestamp.")
@app_option
@redis_option
@namespace_option
def delayed_remove(
    job_class: str,
    args: tuple[str, ...],
    queue: str | None,
    timestamp: int | None,
    apps: tuple[str, ...],
    redis_url: str | None,
    namespace: str | None,
) -> None:
    """Remove delayed JOB_CLASS jobs with exactly ARGS (each a JSON value)."""
    resque = _client(redis_url, namespace, apps)
    values = _json_args(args)
    try:
        if timestamp is not None:
            if queue:
                item = layout.delayed_item(job_class, values, queue)
                removed = resque.delayed.remove_item_at(timestamp, item)
            else:
                removed = resque.delayed.remove_delayed_job_from_timestamp(
                    timestamp, job_class, *values
                )
        elif queue:
            removed = resque.remove_delayed_in_queue(job_class, queue, *values)
        else:
            removed = resque.remove_delayed(job_class, *values)
    except ResqueError as exc:
        raise click.UsageError(f"{exc} (or give --queue)") from exc
    click.echo(f"removed {removed} delayed job{'s' if removed != 1 else ''}")


@delayed.command("queue-now")
@click.argument("timestamp", type=int)
@redis_option
@namespace_option
def delayed_queue_now(timestamp: int, redis_url: str | None, namespace: str | None) -> None:
    """Move every job of TIMESTAMP to its queue now."""
    result = _client(redis_url, namespace).delayed.queue_now(timestamp)
    click.echo(f"queued {result.moved} jobs ({result.failed} parked in failed)")


# --- resque schedule --------------------------------------------------------------------------


@click.group()
def schedule() -> None:
    """Recurring schedules (cron / every) stored in Redis, as resque-scheduler's."""


@schedule.command("list")
@click.option("-s", "--schedule", "schedule_file", type=click.Path(exists=True, dir_okay=False),
              help="Also show the schedules of this YAML file.")
@app_option
@redis_option
@namespace_option
def schedule_list(
    schedule_file: str | None, apps: tuple[str, ...], redis_url: str | None,
    namespace: str | None,
) -> None:
    """Schedules with their last and next run, and the current master."""
    resque = _client(redis_url, namespace, apps)
    try:
        local = load_schedule_file(schedule_file) if schedule_file else {}
    except ScheduleError as exc:
        raise click.UsageError(str(exc)) from exc
    state = read_state(resque, lock_prefix_from_env())
    click.echo(f"current master: {state.describe_master()}")
    for row in resque.schedules.status(local, time.time()):
        where = "redis" if row.persistent else "file"
        if row.error:
            click.echo(f"{row.name} [{where}]  ERROR: {row.error}")
            continue
        last = row.last_enqueued_at or "never"
        following = layout.started_at(row.next_run) if row.next_run else "after the first run"
        click.echo(
            f"{row.name} [{where}]  {row.interval}  {row.class_name} "
            f"{layout.encode(row.args)} on {row.queue}  last: {last}  next: {following}"
            + (f"  — {row.description}" if row.description else "")
        )


@schedule.command("set")
@click.argument("name")
@click.option("--cron", help='Cron expression, e.g. "0 3 * * *" or "*/10 * * * * * UTC".')
@click.option("--every", help="Interval, e.g. 30s, 5m, 1h.")
@click.option("--class", "job_class", help="Job class (default: NAME).")
@click.option("-q", "--queue", help="Queue (default: the class's own).")
@click.option("--args", "args_json", help="Args as a JSON array (or a single JSON value).")
@click.option("--description")
@click.option("--config", "config_json", help="The whole config as a JSON object instead.")
@app_option
@redis_option
@namespace_option
def schedule_set(
    name: str,
    cron: str | None,
    every: str | None,
    job_class: str | None,
    queue: str | None,
    args_json: str | None,
    description: str | None,
    config_json: str | None,
    apps: tuple[str, ...],
    redis_url: str | None,
    namespace: str | None,
) -> None:
    """Store (or replace) schedule NAME in Redis; a --dynamic master picks it up."""
    config: dict[str, Any] = {}
    try:
        if config_json:
            config = layout.decode(config_json)
            if not isinstance(config, dict):
                raise click.UsageError("--config must be a JSON object")
        else:
            for key, value in (("cron", cron), ("every", every)):
                if value:
                    config[key] = value
            config["class"] = job_class or name
            if queue:
                config["queue"] = queue
            if args_json:
                config["args"] = layout.decode(args_json)
            if description:
                config["description"] = description
    except ValueError as exc:
        raise click.UsageError(f"not valid JSON: {exc}") from exc
    resque = _client(redis_url, namespace, apps)
    try:
        resque.schedules.set(name, config)
    except ScheduleError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"schedule {name} set: {layout.encode(config)}")
    _note_schedule_change(resque)


@schedule.command("remove")
@click.argument("name")
@redis_option
@namespace_option
def schedule_remove(name: str, redis_url: str | None, namespace: str | None) -> None:
    """Delete schedule NAME from Redis."""
    resque = _client(redis_url, namespace)
    if resque.schedules.remove(name):
        click.echo(f"schedule {name} removed")
        _note_schedule_change(resque)
    else:
        click.echo(f"no stored schedule {name}", err=True)
        sys.exit(1)
