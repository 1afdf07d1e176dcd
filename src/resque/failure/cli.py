"""``resque failed``: list, count, show, retry, remove, retry-all, clear and clear-retried
failed jobs. Thin: each verb calls ``resque.failure.operations`` (through ``Admin.failures``)
and prints the result with the admin verbs' plumbing (``--json``, confirmations, tables).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from resque import layout
from resque.admin.cli import admin_for, confirm, echo, emit_json, farm_options, table
from resque.admin.operations import Admin
from resque.cli import namespace_option, redis_option
from resque.failure.operations import Filter
from resque.failure.records import FailureEntry, FailureNotFound, NotRequeueable

F = TypeVar("F", bound=Callable[..., Any])


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
    if failure_ids:
        _remove_ids(admin, failure_ids, yes, as_json)
    else:
        _remove_where(admin, where, yes, as_json)


def _remove_where(admin: Admin, where: Filter, yes: bool, as_json: bool) -> None:
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


def _remove_ids(admin: Admin, failure_ids: tuple[str, ...], yes: bool, as_json: bool) -> None:
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
