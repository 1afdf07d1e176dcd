"""Typed tasks for the tests of tasks, keyword arguments, job ids and statuses; workers load it
with ``--app taskapp``.

Each job reports what it saw (its arguments, its id from ``resque.current_job()``, its pid) as
one JSON object appended to the Redis list ``taskapp:log`` on the server named by
``TASKAPP_REDIS`` (outside the ``resque:`` namespace). ``gate`` lets a test hold a job while it
looks at the job's status: the job waits until the test pushes to ``taskapp:gate:<tag>``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import redis

import resque

LOG = "taskapp:log"
_clients: dict[tuple[str, int], redis.Redis] = {}


def client() -> redis.Redis:
    """One connection per process (a forked child opens its own)."""
    key = (os.environ["TASKAPP_REDIS"], os.getpid())
    if key not in _clients:
        _clients[key] = redis.Redis.from_url(key[0])
    return _clients[key]


def report(**seen: Any) -> None:
    job = resque.current_job()
    seen.update(id=job.id, queue=job.queue, class_name=job.class_name, pid=os.getpid(),
                tracked=job.tracked)
    client().rpush(LOG, json.dumps(seen))


def log(r: redis.Redis) -> list[dict[str, Any]]:
    """What the jobs reported, in order (read by the tests)."""
    return [json.loads(raw) for raw in r.lrange(LOG, 0, -1)]


def gate(tag: str, timeout: float = 30.0) -> None:
    """Wait until the test opens ``taskapp:gate:<tag>`` (a blocking pop: no polling)."""
    client().blpop([f"taskapp:gate:{tag}"], timeout=timeout)


@resque.job(queue="tasks", name="taskapp.echo")
def echo(tag: str, *numbers: int, locale: str = "en", **extra: Any) -> dict[str, Any]:
    """Reports its arguments as it received them, and returns them."""
    seen = {"tag": tag, "numbers": list(numbers), "locale": locale, "extra": extra}
    report(**seen)
    return seen


@resque.job(queue="tasks", name="taskapp.aecho")
async def aecho(tag: str, *, locale: str = "en") -> str:
    """An ``async def`` job: reads ``current_job()`` after an await."""
    await asyncio.sleep(0.001)
    report(tag=tag, locale=locale, mode="async")
    return f"{tag}/{locale}"


@resque.job(queue="tasks", name="taskapp.steps", status=True, result_ttl=600)
def steps(count: int, tag: str = "steps") -> int:
    """Reports progress ``count`` times; waits at the gate ``<tag>`` after the first step."""
    job = resque.current_job()
    for done in range(1, count + 1):
        job.at(done, count, f"step {done} of {count}")
        if done == 1:
            report(tag=tag, step=done)
            gate(tag)
    return count * 10


@resque.job(queue="tasks", name="taskapp.boom")
def boom(message: str) -> None:
    raise ValueError(message)


@resque.job(queue="tasks", name="taskapp.hang")
def hang(tag: str) -> None:
    """Reports, then sleeps until killed."""
    report(tag=tag)
    time.sleep(120)


@resque.job(queue="tasks", name="taskapp.unjson")
def unjson() -> object:
    """Returns a value JSON cannot carry."""
    return {1, 2}


@resque.job(queue="tasks", name="taskapp.Add")
class Add:
    """A Ruby-style job class with a static ``perform``."""

    @staticmethod
    def perform(a: int, b: int, *, times: int = 1) -> int:
        report(a=a, b=b, times=times)
        return (a + b) * times
