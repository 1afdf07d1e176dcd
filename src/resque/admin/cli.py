"""Admin verbs of the ``resque`` command: queues, peek, enqueue, remove-queue, workers, prune,
recover, stats, pause, resume (``failed`` and its verbs are ``resque/failure/cli.py``, on the same
plumbing). Thin: each verb calls ``resque.admin`` and prints the result.

Every verb takes ``--redis``/``--namespace`` and ``--json`` (a machine-readable document on
stdout). Destructive verbs ask first on a terminal and refuse elsewhere unless ``--yes``.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

import click
import redis

from resque import layout, rubyjson
from resque.admin.operations import Admin
from resque.cli import as_click_error, namespace_option, redis_option, redis_wait
from resque.connection import wait_until_reachable
from resque.errors import ResqueError
from resque.logs import setup_logging
from resque.scheduler.state import lock_prefix_from_env, read_state

F = TypeVar("F", bound=Callable[..., Any])

ERROR_WIDTH = 60  # characters of an error message shown in a table cell


# --- shared plumbing ----------------------------------------------------------------------------


def farm_options(command: F) -> F:
    """``--redis``, ``--namespace`` and ``--json``, and ``ResqueError`` as a clean exit 1."""

    @redis_option
    @namespace_option
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    @click.pass_context
    @functools.wraps(command)
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        setup_logging(0)
        parent = ctx.find_object(dict) or {}  # options given to ``resque failed`` itself
        for name in ("redis_url", "namespace", "as_json"):
            if not kwargs.get(name) and parent.get(name):
                kwargs[name] = parent[name]
        try:
            return ctx.invoke(command, *args, **kwargs)
        except (ResqueError, redis.RedisError) as exc:  # WRONGTYPE: a key another tool wrote
            raise as_click_error(exc) from exc

    return cast(F, wrapper)


def admin_for(redis_url: str | None, namespace: str | None) -> Admin:
    """The farm, once Redis answers: a verb waits for it up to ``RESQUE_REDIS_WAIT`` seconds
    (60; 0 fails at once), saying so once on stderr, then runs once. Only that PING is
    retried: repeating a verb whose reply was lost could act twice."""
    admin = Admin(redis=redis_url, namespace=namespace)
    wait_until_reachable(admin.redis, redis_wait(), logging.getLogger("resque.admin"))
    return admin


def echo(message: str = "", err: bool = False) -> None:
    """``click.echo``, but text that is not UTF-8 (names decoded from odd bytes in Redis)
    prints as ``\\udcff`` escapes instead of failing the verb."""
    click.echo(message.encode("utf-8", "backslashreplace").decode("utf-8"), err=err)


def emit_json(value: Any) -> None:
    echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def confirm(question: str, yes: bool) -> None:
    """Ask on a terminal; elsewhere a destructive verb needs ``--yes``."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.UsageError(f"{question} Not on a terminal: pass --yes to confirm.")
    click.confirm(question, abort=True)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Left-aligned columns; cells are one line, long ones cut with an ellipsis."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
              for row in cells]
    return "\n".join(lines)


def _cell(value: Any, width: int = ERROR_WIDTH) -> str:
    text = "-" if value is None else value if isinstance(value, str) else json.dumps(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


# --- queues -------------------------------------------------------------------------------------


@click.command()
@farm_options
def queues(redis_url: str | None, namespace: str | None, as_json: bool) -> None:
    """Queues and their sizes."""
    sizes = admin_for(redis_url, namespace).queues()
    if as_json:
        emit_json(sizes)
        return
    if not sizes:
        echo("no queues")
        return
    echo(table(["QUEUE", "SIZE"], sorted(sizes.items())))
    echo(f"{len(sizes)} queue(s), {sum(sizes.values())} job(s)")


@click.command()
@click.argument("queue")
@click.option("--start", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--count", default=10, show_default=True, type=click.IntRange(min=1))
@farm_options
def peek(
    queue: str, start: int, count: int, redis_url: str | None, namespace: str | None,
    as_json: bool,
) -> None:
    """Show jobs waiting in QUEUE, without taking them."""
    items = admin_for(redis_url, namespace).peek(queue, start, count)
    if as_json:
        emit_json([item.to_json() for item in items])
        return
    if not items:
        echo(f"no jobs in {queue} from index {start}")
        return
    rows = [
        (item.index, item.job["class"], item.job["args"]) if item.job
        else (item.index, "(unreadable)", layout.raw_text(item.raw))
        for item in items
    ]
    echo(table(["INDEX", "CLASS", "ARGS"], rows))


@click.command()
@click.argument("queue")
@click.argument("class_name", metavar="CLASS")
@click.argument("args_json", metavar="[ARGS_JSON]", default="[]")
@farm_options
def enqueue(
    queue: str, class_name: str, args_json: str, redis_url: str | None, namespace: str | None,
    as_json: bool,
) -> None:
    """Push a job: `resque enqueue mail SendWelcome '[42, "en"]'` (no enqueue hooks run).

    Warns (on stderr; the job is queued all the same) when no live worker serves QUEUE."""
    try:
        args = rubyjson.decode_strict(args_json)  # no NaN, no lone surrogate: as a worker reads
    except ValueError as exc:
        raise click.UsageError(f"ARGS_JSON is not JSON a job can take: {exc}") from exc
    if not isinstance(args, list):
        raise click.UsageError(f"ARGS_JSON must be a JSON array, like '[1, \"a\"]': {args_json}")
    admin = admin_for(redis_url, namespace)
    try:
        job_id = admin.enqueue(queue, class_name, args)
    except ValueError as exc:  # a queue name no worker could select, args too deep to encode
        raise click.UsageError(str(exc)) from exc
    if as_json:
        emit_json({"queue": queue, "class": class_name, "args": args, "id": job_id})
    else:
        echo(f"enqueued {class_name} to {queue}")
    if not admin.serving(queue):
        click.echo(f"warning: no live worker takes jobs from {queue!r}, so the job waits there "
                   f"until one starts (e.g. resque work -q {queue} --app <your jobs module>); "
                   "`resque workers` lists the registered ones", err=True)


@click.command("remove-queue")
@click.argument("queue")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@farm_options
def remove_queue(
    queue: str, yes: bool, redis_url: str | None, namespace: str | None, as_json: bool
) -> None:
    """Delete QUEUE and every job in it (resque-web's Remove Queue)."""
    admin = admin_for(redis_url, namespace)
    confirm(f"Delete queue {queue} and its {admin.resque.size(queue)} job(s)?", yes)
    removed = admin.remove_queue(queue)
    if as_json:
        emit_json({"queue": queue, "removed_jobs": removed})
    else:
        echo(f"removed queue {queue} ({removed} job(s))")


# --- workers, stats, pausing --------------------------------------------------------------------


@click.command()
@farm_options
def workers(redis_url: str | None, namespace: str | None, as_json: bool) -> None:
    """Registered workers: state, current job, jobs in flight, start time and last heartbeat;
    then jobs in flight under workers no longer registered, which no Ruby tool shows."""
    admin = admin_for(redis_url, namespace)
    found, orphans = admin.workers(inflight=True), admin.orphans()
    if as_json:
        emit_json([worker.to_json() for worker in found] + [o.to_json() for o in orphans])
        return
    if found:
        rows = []
        for worker in found:
            job = worker.job or {}
            payload: dict[str, Any] = (job["payload"] if isinstance(job.get("payload"), dict)
                                       else {})
            doing = (f"{payload.get('class')} on {job.get('queue')} since {job.get('run_at')}"
                     if worker.job and "unreadable" not in job else job.get("unreadable", "-"))
            rows.append((worker.id, worker.state, ",".join(worker.queues), doing,
                         len(worker.inflight or ()) or "-", worker.started,
                         age(worker.heartbeat_age), worker.processed))
        echo(table(["WORKER", "STATE", "QUEUES", "JOB", "IN FLIGHT", "STARTED", "HEARTBEAT",
                    "PROCESSED"], rows))
    working = sum(1 for worker in found if worker.working)
    echo(f"{len(found)} worker(s), {working} working" if found else "no workers")
    if orphans:
        echo("\njobs in flight under workers no longer registered (a worker of ours requeues "
             "them when it next prunes; `resque recover <worker>` does it now):")
        for orphan in orphans:
            jobs = ", ".join(f"{job.class_name} on {job.queue}" for job in orphan.to_requeue)
            failed = (" (the first, its record's job, was failed by the pruner that "
                      "unregistered it)" if orphan.first_failed else "")
            echo(f"  {orphan.worker}: {len(orphan.jobs)} job(s){failed}; to requeue: "
                 f"{jobs or 'none'}")


@click.command()
@click.argument("worker_ids", metavar="WORKER...", nargs=-1, required=True)
@click.option("--expiry", default=300.0, show_default=True,
              help="A heartbeat newer than this many seconds means the worker may be alive.")
@click.option("--force", is_flag=True,
              help="Recover even a worker that shows signs of life (its jobs may run twice).")
@farm_options
def recover(worker_ids: tuple[str, ...], expiry: float, force: bool, redis_url: str | None,
            namespace: str | None, as_json: bool) -> None:
    """Unregister WORKER now and requeue the jobs it holds in flight, at the heads of their
    queues (a Ruby or Perl worker's job is failed, as Ruby does). Refused while the worker
    may be alive: its pid running on this host or, for another host, a fresh heartbeat."""
    admin = admin_for(redis_url, namespace)
    results = [admin.recover(worker, expiry, force=force) for worker in worker_ids]
    if as_json:
        emit_json([result.to_json() for result in results])
    for result in results if not as_json else []:
        echo(f"{result.worker}: not recovered: {result.refused}" if result.refused else
             f"{result.worker}: recovered, {result.count} job(s) requeued or failed")
    if any(result.refused for result in results):
        sys.exit(1)


@click.command()
@click.option("--expiry", default=300.0, show_default=True,
              help="Seconds without a heartbeat after which a worker is dead.")
@click.option("--force", is_flag=True, help="Prune even if another pruner holds the lock.")
@farm_options
def prune(
    expiry: float, force: bool, redis_url: str | None, namespace: str | None, as_json: bool
) -> None:
    """Unregister dead workers now; their jobs are requeued (ours) or failed (Ruby's, Perl's)."""
    result = admin_for(redis_url, namespace).prune(expiry, force=force)
    if as_json:
        emit_json(result.to_json())
        return
    if result.lock_holder:
        echo(f"another pruner ({result.lock_holder}) holds the lock for "
                   f"{result.lock_ttl}s more; try again then, or use --force")
        sys.exit(1)
    echo("\n".join(f"pruned {worker}" for worker in result.pruned) or "no dead workers")


@click.command()
@farm_options
def stats(redis_url: str | None, namespace: str | None, as_json: bool) -> None:
    """Totals, as Ruby's Resque.info and resque-web's Stats tab show them; on stderr, a
    warning when delayed jobs are overdue because no scheduler runs."""
    admin = admin_for(redis_url, namespace)
    info = admin.stats()
    if as_json:
        emit_json(info)
    else:
        width = max(len(name) for name in info) + 1
        for name, value in info.items():
            shown = ", ".join(value) if isinstance(value, list) else value
            echo(f"{name + ':':<{width}} {shown}")
    overdue = read_state(admin.resque, lock_prefix_from_env()).overdue_warning()
    if overdue:
        echo(f"warning: {overdue}", err=True)


@click.command()
@farm_options
def pause(redis_url: str | None, namespace: str | None, as_json: bool) -> None:
    """Stop every Ruby and Python worker from taking jobs (sets pause-all-workers)."""
    admin_for(redis_url, namespace).pause()
    emit_json({"paused": True}) if as_json else echo(
        "paused: Ruby and Python workers take no new jobs (Perl workers ignore this)")


@click.command()
@farm_options
def resume(redis_url: str | None, namespace: str | None, as_json: bool) -> None:
    """Let workers take jobs again (deletes pause-all-workers)."""
    admin_for(redis_url, namespace).resume()
    emit_json({"paused": False}) if as_json else echo("resumed")
