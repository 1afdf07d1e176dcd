"""``resque scheduler``, ``resque delayed`` and ``resque schedule``. Thin: each verb calls
``resque.scheduler``. Options read the environment variables Ruby's resque-scheduler reads."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import click

from resque import layout
from resque.cli import import_apps, namespace_option, redis_option, redis_wait, setup_logging
from resque.client import Resque
from resque.connection import check_credentials, wait_until_reachable
from resque.errors import ResqueError

EXTRA_HINT = "recurring schedules need croniter and PyYAML: pip install 'resque[scheduler]'"


def _client(redis_url: str | None, namespace: str | None, apps: tuple[str, ...] = ()) -> Resque:
    """The farm, once Redis answers (as the admin verbs: up to ``RESQUE_REDIS_WAIT``)."""
    modules = import_apps(apps)
    resque = Resque(redis_url, namespace=namespace, allowed_modules=modules)
    wait_until_reachable(resque.redis, redis_wait(), logging.getLogger("resque.scheduler"))
    return resque


def _when(timestamp: float) -> str:
    return f"{layout.started_at(timestamp)} ({int(timestamp)})"


def _json_args(values: tuple[str, ...]) -> list[Any]:
    """Each argument as JSON (``1``, ``"a"``, ``{"k":2}``); what is not JSON is a string."""
    parsed: list[Any] = []
    for value in values:
        try:
            parsed.append(layout.decode(value))
        except ValueError:
            parsed.append(value)
    return parsed


def _schedule_module() -> Any:
    try:
        from resque.scheduler import schedule
    except ImportError as exc:
        raise click.UsageError(f"{EXTRA_HINT} ({exc})") from exc
    return schedule


app_option = click.option(
    "--app", "apps", multiple=True,
    help="Module(s) that register your jobs (for their queues and hooks); imported first.",
)


# --- resque scheduler -------------------------------------------------------------------------


@click.command()
@click.option("-s", "--schedule", "schedule_file", envvar="RESQUE_SCHEDULE",
              type=click.Path(exists=True, dir_okay=False),
              help="A resque-scheduler YAML schedule file (RESQUE_SCHEDULE).")
@click.option("-D", "--dynamic", is_flag=True, envvar="DYNAMIC_SCHEDULE",
              help="Follow schedules stored in Redis while running (DYNAMIC_SCHEDULE).")
@click.option("-i", "--interval", type=click.FloatRange(min=0.01), default=5.0,
              envvar="RESQUE_SCHEDULER_INTERVAL", show_default=True,
              help="Seconds between polls (RESQUE_SCHEDULER_INTERVAL).")
@click.option("--lock-timeout", type=click.IntRange(min=1), default=180, envvar="LOCK_TIMEOUT",
              show_default=True, help="Master lock TTL in seconds (LOCK_TIMEOUT).")
@click.option("--lock-prefix", default="", envvar="RESQUE_SCHEDULER_MASTER_LOCK_PREFIX",
              help="Master lock prefix (RESQUE_SCHEDULER_MASTER_LOCK_PREFIX).")
@click.option("--batch-size", type=click.IntRange(min=1, max=5000), default=100,
              envvar="DELAYED_REQUEUE_BATCH_SIZE", show_default=True,
              help="Delayed jobs moved per atomic batch (DELAYED_REQUEUE_BATCH_SIZE).")
@click.option("-E", "--env", "env_name", envvar="RAILS_ENV",
              help="Environment: schedules with rails_env/env load only if it is listed.")
@click.option("--catch-up", type=click.FloatRange(min=0),
              help="Enqueue (once) a recurring tick missed up to this many seconds ago when "
              "becoming master. Default: lock timeout + 2 intervals; 0 = never, as Ruby.")
@click.option("-n", "--app-name", envvar="APP_NAME", help="Shown in the process title.")
@click.option("-P", "--pidfile", envvar="PIDFILE", help="Write the pid here.")
@app_option
@click.option("-v", "--verbose", count=True, help="-v info, -vv debug (VERBOSE, VVERBOSE).")
@redis_option
@namespace_option
def scheduler(
    schedule_file: str | None,
    dynamic: bool,
    interval: float,
    lock_timeout: int,
    lock_prefix: str,
    batch_size: int,
    env_name: str | None,
    catch_up: float | None,
    app_name: str | None,
    pidfile: str | None,
    apps: tuple[str, ...],
    verbose: int,
    redis_url: str | None,
    namespace: str | None,
) -> None:
    """Move due delayed jobs and enqueue recurring ones (resque-scheduler's master/standby)."""
    setup_logging(max(verbose, 1))
    try:
        from resque.scheduler.process import Scheduler
        from resque.scheduler.schedule import ScheduleError
    except ImportError as exc:
        raise click.UsageError(f"{EXTRA_HINT} ({exc})") from exc
    resque = Resque(redis_url, namespace=namespace, allowed_modules=import_apps(apps))
    check_credentials(resque.redis)  # a refused password is fatal now; an outage is waited out
    try:
        process = Scheduler(
            resque, schedule_file=schedule_file, dynamic=dynamic, interval=interval,
            lock_timeout=lock_timeout, lock_prefix=lock_prefix, batch_size=batch_size,
            env=env_name, catch_up=catch_up, app_name=app_name,
        )
    except ScheduleError as exc:
        raise click.UsageError(str(exc)) from exc
    if pidfile:
        with open(pidfile, "w") as handle:
            handle.write(str(os.getpid()))
    try:
        process.run()
    finally:
        if pidfile and os.path.exists(pidfile):
            os.unlink(pidfile)


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
    module = _schedule_module()
    resque = _client(redis_url, namespace, apps)
    local = module.load_schedule_file(schedule_file) if schedule_file else {}
    click.echo(f"current master: {resque.schedules.master() or 'none'}")
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
    module = _schedule_module()
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
    except module.ScheduleError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"schedule {name} set: {layout.encode(config)}")


@schedule.command("remove")
@click.argument("name")
@redis_option
@namespace_option
def schedule_remove(name: str, redis_url: str | None, namespace: str | None) -> None:
    """Delete schedule NAME from Redis."""
    _schedule_module()
    if _client(redis_url, namespace).schedules.remove(name):
        click.echo(f"schedule {name} removed")
    else:
        click.echo(f"no stored schedule {name}", err=True)
        sys.exit(1)
