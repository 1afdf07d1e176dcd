"""``resque retries``: the retries waiting for their next attempt, soonest first. Thin: it
reads ``policies.retry_store.pending`` and prints it with the admin verbs' plumbing."""

from __future__ import annotations

import datetime

import click

from resque.admin.cli import admin_for, echo, emit_json, farm_options, table
from resque.policies.retry_store import pending


@click.command()
@click.option("--start", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--count", default=50, show_default=True, type=click.IntRange(min=1))
@farm_options
def retries(start: int, count: int, redis_url: str | None, namespace: str | None,
            as_json: bool) -> None:
    """Jobs whose attempt failed and whose retry is pending: the next attempt, when it is
    due, and why the last one failed."""
    admin = admin_for(redis_url, namespace)
    total, found = pending(admin.redis, admin.keys, start, count)
    if as_json:
        emit_json({"total": total, "retries": [retry.to_json() for retry in found]})
        return
    if not found:
        echo("no retries pending" if not start else f"no retries from index {start}")
        return
    rows = [[retry.class_name, retry.next_attempt, _local(retry.due), retry.queue or "-",
             retry.error or "-"] for retry in found]
    echo(table(["CLASS", "NEXT ATTEMPT", "DUE", "QUEUE", "LAST ERROR"], rows))
    echo(f"{total} retr{'y' if total == 1 else 'ies'} pending")


def _local(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")

