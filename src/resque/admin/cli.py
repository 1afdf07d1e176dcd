"""Admin verbs of the ``resque`` command: queues, peek, enqueue, remove-queue, failed, workers,
prune, stats, pause, resume. Thin: each verb calls ``resque.admin`` and prints the result.

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
from click.core import ParameterSource

from resque import layout, rubyjson
from resque.admin.operations import Admin
from resque.cli import (
    as_click_error,
    namespace_option,
    redis_option,
    redis_wait,
    setup_logging,
)
from resque.connection import wait_until_reachable
from resque.errors import ResqueError
from resque.failure.operations import Filter
from resque.failure.records import FailureEntry, FailureNotFound, NotRequeueable

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
    """Push a job: `resque enqueue mail SendWelcome '[42, "en"]'` (no enqueue hooks run)."""
    try:
        args = rubyjson.decode_strict(args_json)  # no NaN, no lone surrogate: as a worker reads
    except ValueError as exc:
        raise click.UsageError(f"ARGS_JSON is not JSON a job can take: {exc}") from exc
    if not isinstance(args, list):
        raise click.UsageError(f"ARGS_JSON must be a JSON array, like '[1, \"a\"]': {args_json}")
    admin = admin_for(redis_url, namespace)
    try:
        admin.enqueue(queue, class_name, args)
    except ValueError as exc:  # a queue name no worker could select, args too deep to encode
        raise click.UsageError(str(exc)) from exc
    if as_json:
        emit_json({"queue": queue, "class": class_name, "args": args})
    else:
        echo(f"enqueued {class_name} to {queue}")


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


# --- failures -----------------------------------------------------------------------------------


def filter_options(command: F) -> F:
    for option in reversed([
        click.option("--queue", "-q", help="Only failures from this job queue."),
        click.option("--class", "class_name", help="Only failures of this job class."),
        click.option("--list", "list_name",
                     help="Only this failure list: failed, or <queue>_failed."),
        click.option("--malformed", is_flag=True, default=None,
                     help="Only entries that are not readable failure records."),
    ]):
        command = option(command)
    return command


def make_filter(
    queue: str | None, class_name: str | None, list_name: str | None, malformed: bool | None,
    retried: bool | None = None,
) -> Filter:
    return Filter(queue=queue, class_name=class_name, list_name=list_name, retried=retried,
                  malformed=malformed or None)


def list_options(command: F) -> F:
    """What picks a page of failures: the filters, --retried, --start, --count, the order."""
    for option in reversed([
        click.option("--retried/--not-retried", default=None,
                     help="Only retried (or never retried)."),
        click.option("--start", default=0, show_default=True, type=click.IntRange(min=0)),
        click.option("--count", default=20, show_default=True, type=click.IntRange(min=1)),
        click.option("--newest/--oldest", default=True, show_default=True, help="Order."),
    ]):
        command = option(command)
    return filter_options(command)


@click.group(invoke_without_command=True)
@redis_option
@namespace_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@list_options
@click.pass_context
def failed(
    ctx: click.Context, /, redis_url: str | None, namespace: str | None, as_json: bool,
    **listing: Any,
) -> None:
    """Failed jobs: list (the default, with the list's options), count, show, retry, remove,
    retry-all, clear, clear-retried. Ids look like 12-0123456789ab; they stay valid while
    others add or remove failures, and change when the entry is retried."""
    ctx.obj = {"redis_url": redis_url, "namespace": namespace, "as_json": as_json}
    if ctx.invoked_subcommand is None:
        ctx.invoke(failed_list, **listing)
        return
    given = [param.opts[0] for param in ctx.command.params if param.name in listing
             and ctx.get_parameter_source(param.name) is not ParameterSource.DEFAULT]
    if given:
        raise click.UsageError(
            f"options of the list ({', '.join(given)}) go after 'resque failed' alone, or "
            f"after the verb: 'resque failed {ctx.invoked_subcommand} {given[0]} ...'")


@failed.command("list")
@list_options
@farm_options
def failed_list(
    queue: str | None = None, class_name: str | None = None, list_name: str | None = None,
    malformed: bool | None = None, retried: bool | None = None, start: int = 0, count: int = 20,
    newest: bool = True, redis_url: str | None = None, namespace: str | None = None,
    as_json: bool = False,
) -> None:
    """A page of failures, newest first."""
    where = make_filter(queue, class_name, list_name, malformed, retried)
    page = admin_for(redis_url, namespace).failures.page(start, count, newest=newest, where=where)
    if as_json:
        emit_json({"start": page.start, "total": page.total, "more": page.more,
                   "entries": [entry.to_json() for entry in page.entries]})
        return
    if not page.entries:
        echo("no failures" + (" match" if where.by_content else ""))
        return
    echo(table(["ID", "FAILED AT", "QUEUE", "CLASS", "EXCEPTION", "ERROR", "RETRIED"],
                     (_failure_row(entry) for entry in page.entries)))
    last = page.start + len(page.entries)
    of = f" of {page.total}" if page.total is not None else ""
    hint = f"; next page: --start {last}" if page.more else ""
    order = "newest" if newest else "oldest"
    echo(f"{page.start + 1}-{last}{of}, {order} first{hint}")


def _failure_row(entry: FailureEntry) -> tuple[Any, ...]:
    if entry.record is None:
        return (str(entry.id), "-", "-", "(unreadable)", "-", entry.problems[0], "-")
    error = (entry.error or "").split("\n", 1)[0]
    if entry.problems:
        error = f"[{'; '.join(entry.problems)}] {error}"
    return (str(entry.id), entry.failed_at_text, entry.queue, entry.class_name,
            entry.exception, error, entry.retried_at_text or "")


@failed.command("count")
@filter_options
@click.option("--retried/--not-retried", default=None, help="Only retried (or never retried).")
@farm_options
def failed_count(
    queue: str | None, class_name: str | None, list_name: str | None, malformed: bool | None,
    retried: bool | None, redis_url: str | None, namespace: str | None, as_json: bool,
) -> None:
    """How many failures (per list without conditions)."""
    failures = admin_for(redis_url, namespace).failures
    where = make_filter(queue, class_name, list_name, malformed, retried)
    if not where.by_content and list_name is None:
        counts = failures.counts()
        if as_json:
            emit_json({"total": sum(counts.values()), "lists": counts})
            return
        echo(table(["LIST", "FAILURES"], counts.items()))
        echo(f"{sum(counts.values())} failure(s)")
        return
    total = failures.count(where)
    emit_json({"total": total}) if as_json else echo(str(total))


@failed.command("show")
@click.argument("failure_id", metavar="ID")
@farm_options
def failed_show(
    failure_id: str, redis_url: str | None, namespace: str | None, as_json: bool
) -> None:
    """Everything about one failure, backtrace included."""
    entry = _get(admin_for(redis_url, namespace), failure_id)
    if as_json:
        emit_json({**entry.to_json(), "raw": layout.raw_text(entry.raw)})
        return
    if entry.record is None:
        echo(f"id:        {entry.id}\nproblem:   {entry.problems[0]}")
        echo(f"raw:       {layout.raw_text(entry.raw)}")
        return
    fields = [
        ("id", str(entry.id)), ("list", entry.id.list_name), ("queue", entry.queue),
        ("class", entry.class_name), ("args", json.dumps(entry.args, ensure_ascii=False)),
        ("exception", entry.exception), ("worker", entry.worker),
        ("failed at", entry.failed_at_text), ("retried at", entry.retried_at_text),
    ]
    for name, value in fields:
        if value is not None:
            echo(f"{name + ':':<11}{value}")
    if entry.problems:
        echo(f"{'problems:':<11}{'; '.join(entry.problems)}")
    echo("error:")
    for line in (entry.error or "").splitlines() or [""]:
        echo(f"  {line}")
    if entry.backtrace:
        echo("backtrace:")
        for line in entry.backtrace:
            echo(f"  {line}")


def _get(admin: Admin, failure_id: str) -> FailureEntry:
    try:
        return admin.failures.get(failure_id)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="ID") from exc


@failed.command("retry")
@click.argument("failure_ids", metavar="ID...", nargs=-1, required=True)
@click.option("--remove", is_flag=True, help="Remove each entry instead of marking it retried.")
@farm_options
def failed_retry(
    failure_ids: tuple[str, ...], remove: bool, redis_url: str | None, namespace: str | None,
    as_json: bool,
) -> None:
    """Push the jobs of these failures back to their queues."""
    admin = admin_for(redis_url, namespace)
    done: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for failure_id in failure_ids:
        try:
            entry = _get(admin, failure_id)
            updated = admin.failures.requeue(entry, remove=remove)
            done.append({"id": failure_id, "queue": entry.queue, "class": entry.class_name,
                         "new_id": str(updated.id) if updated else None})
        except (FailureNotFound, NotRequeueable) as exc:
            errors[failure_id] = str(exc)
        except click.BadParameter as exc:
            errors[failure_id] = exc.format_message()
    if as_json:
        emit_json({"retried": done, "errors": errors})
    else:
        for item in done:
            new = f", now {item['new_id']}" if item["new_id"] else ", removed"
            echo(f"retried {item['id']}: {item['class']} to {item['queue']}{new}")
        for failure_id, message in errors.items():
            echo(f"not retried {failure_id}: {message}", err=True)
    if errors:
        sys.exit(1)


@failed.command("remove")
@click.argument("failure_ids", metavar="[ID...]", nargs=-1)
@filter_options
@click.option("--retried", is_flag=True, default=None, help="Only entries already retried.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@farm_options
def failed_remove(
    failure_ids: tuple[str, ...], queue: str | None, class_name: str | None,
    list_name: str | None, malformed: bool | None, retried: bool | None, yes: bool,
    redis_url: str | None, namespace: str | None, as_json: bool,
) -> None:
    """Remove failures by id, or every failure matching --queue/--class/--list/--malformed."""
    admin = admin_for(redis_url, namespace)
    where = make_filter(queue, class_name, list_name, malformed, retried)
    if failure_ids and (where.by_content or list_name):
        raise click.UsageError("give ids or conditions, not both")
    if not failure_ids:
        if not where.by_content:
            raise click.UsageError(
                "give failure ids, or conditions (--queue, --class, --malformed, --retried); "
                "'resque failed clear [--list NAME]' removes everything"
            )
        confirm(f"Remove every failure matching {_describe(where)}?", yes)
        result = admin.failures.remove_where(where)
        if as_json:
            emit_json(result.to_json())
        else:
            echo(f"removed {result.done} failure(s)"
                       + (f"; {result.gone} were gone already" if result.gone else ""))
        return
    confirm(f"Remove {len(failure_ids)} failure(s)?", yes)
    removed: list[str] = []
    errors: dict[str, str] = {}
    for failure_id in failure_ids:
        try:
            admin.failures.remove(_get(admin, failure_id))
            removed.append(failure_id)
        except FailureNotFound as exc:
            errors[failure_id] = str(exc)
        except click.BadParameter as exc:
            errors[failure_id] = exc.format_message()
    if as_json:
        emit_json({"removed": removed, "errors": errors})
    else:
        for failure_id in removed:
            echo(f"removed {failure_id}")
        for failure_id, message in errors.items():
            echo(f"not removed {failure_id}: {message}", err=True)
    if errors:
        sys.exit(1)


def _describe(where: Filter) -> str:
    parts = [f"{name}={value}" for name, value in (
        ("queue", where.queue), ("class", where.class_name), ("list", where.list_name),
        ("retried", where.retried), ("malformed", where.malformed)) if value is not None]
    return ", ".join(parts) or "anything"


@failed.command("retry-all")
@filter_options
@click.option("--include-retried", is_flag=True,
              help="Also retry entries retried before (Ruby's retry-all does).")
@click.option("--remove", is_flag=True, help="Remove the entries instead of marking them.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before --remove.")
@farm_options
def failed_retry_all(
    queue: str | None, class_name: str | None, list_name: str | None, malformed: bool | None,
    include_retried: bool, remove: bool, yes: bool, redis_url: str | None,
    namespace: str | None, as_json: bool,
) -> None:
    """Retry every failure (or those matching --queue/--class/--list), oldest first. Nothing
    is deleted, so nothing is asked, unless --remove."""
    where = make_filter(queue, class_name, list_name, malformed)
    if remove:
        confirm(f"Retry every failure matching {_describe(where)} and remove them?", yes)
    result = admin_for(redis_url, namespace).failures.requeue_where(
        where, remove=remove, include_retried=include_retried)
    if as_json:
        emit_json(result.to_json())
        return
    echo(f"retried {result.done} failure(s)"
               + (f"; skipped {result.skipped} that cannot be retried" if result.skipped else "")
               + (f"; {result.gone} were gone meanwhile" if result.gone else ""))


@failed.command("clear")
@click.option("--list", "list_name", help="Only this failure list: failed, or <queue>_failed.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@farm_options
def failed_clear(
    list_name: str | None, yes: bool, redis_url: str | None, namespace: str | None,
    as_json: bool,
) -> None:
    """Delete every failure (or one list), as resque-web's Clear Failed Jobs."""
    admin = admin_for(redis_url, namespace)
    count = admin.failures.count(Filter(list_name=list_name))
    confirm(f"Delete {count} failure(s){' in ' + list_name if list_name else ''}?", yes)
    removed = admin.failures.clear(list_name)
    if as_json:
        emit_json({"removed": removed})
    else:
        echo(f"cleared {removed} failure(s)")


@failed.command("clear-retried")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@farm_options
def failed_clear_retried(
    yes: bool, redis_url: str | None, namespace: str | None, as_json: bool
) -> None:
    """Remove every failure that has been retried."""
    confirm("Remove every failure that has been retried?", yes)
    result = admin_for(redis_url, namespace).failures.clear_retried()
    if as_json:
        emit_json(result.to_json())
    else:
        echo(f"removed {result.done} retried failure(s)")


# --- workers, stats, pausing --------------------------------------------------------------------


@click.command()
@farm_options
def workers(redis_url: str | None, namespace: str | None, as_json: bool) -> None:
    """Registered workers: state, current job, start time and last heartbeat."""
    found = admin_for(redis_url, namespace).workers()
    if as_json:
        emit_json([worker.to_json() for worker in found])
        return
    if not found:
        echo("no workers")
        return
    rows = []
    for worker in found:
        job = worker.job or {}
        payload: dict[str, Any] = job["payload"] if isinstance(job.get("payload"), dict) else {}
        doing = (f"{payload.get('class')} on {job.get('queue')} since {job.get('run_at')}"
                 if worker.job and "unreadable" not in job else job.get("unreadable", "-"))
        rows.append((worker.id, worker.state, ",".join(worker.queues), doing,
                     worker.started, age(worker.heartbeat_age), worker.processed))
    echo(table(["WORKER", "STATE", "QUEUES", "JOB", "STARTED", "HEARTBEAT", "PROCESSED"],
                     rows))
    working = sum(1 for worker in found if worker.working)
    echo(f"{len(found)} worker(s), {working} working")


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
    """Totals, as Ruby's Resque.info and resque-web's Stats tab show them."""
    info = admin_for(redis_url, namespace).stats()
    if as_json:
        emit_json(info)
        return
    width = max(len(name) for name in info) + 1
    for name, value in info.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        echo(f"{name + ':':<{width}} {shown}")


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
