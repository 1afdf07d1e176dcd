"""Jobs with policies (unique locks, limits) for tests/test_policies_*.py; workers load it with
``--app policyapp``.

Each job reports what it saw through taskapp's ``report`` (the list ``taskapp:log`` on the
server named by ``TASKAPP_REDIS``) and may wait at a gate (``taskapp:gate:<tag>``), so that a
test can look at the locks and slots while the job runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import redis
from taskapp import client, gate, report

import resque
from resque import Limit, Retry, Unique


def held(tag: str) -> None:
    """Report, then wait at the gate ``tag`` when the test asked for one (``hold=True``)."""
    report(tag=tag)
    if client().exists(f"taskapp:hold:{tag}"):
        gate(tag)


@resque.job(queue="policies", name="policyapp.until_end",
            unique=Unique(until="end", lease=1.0))
def until_end(tag: str, account: int) -> None:
    held(tag)


@resque.job(queue="policies", name="policyapp.until_start", unique=Unique(until="start"))
def until_start(tag: str, account: int) -> None:
    held(tag)


@resque.job(queue="policies", name="policyapp.window",
            unique=Unique(until="window", ttl=1.5))
def window(tag: str, account: int) -> None:
    held(tag)


@resque.job(queue="policies", name="policyapp.per_account",
            unique=Unique(key=lambda tag, account: f"account:{account}", lease=1.0))
def per_account(tag: str, account: int) -> None:
    held(tag)


@resque.job(queue="policies", name="policyapp.async_until_end",
            unique=Unique(until="end", lease=1.0))
async def async_until_end(tag: str, account: int) -> None:
    await asyncio.sleep(0)
    held(tag)


@resque.job(queue="policies", name="policyapp.plain")
def plain(tag: str, account: int) -> None:
    held(tag)


@resque.job(queue="policies", name="policyapp.UniqueClass", unique=Unique(until="end"))
class UniqueClass:
    """A Ruby-style job class with a unique lock."""

    @staticmethod
    def perform(tag: str, account: int) -> Any:
        held(tag)


@resque.job(queue="policies", name="policyapp.capped",
            limit=Limit(concurrency=1, lease=1.0, retry_in=1.0))
def capped(tag: str, account: int) -> None:
    held(tag)


@resque.job(queue="policies", name="policyapp.async_capped",
            limit=Limit(concurrency=1, lease=1.0, retry_in=1.0))
async def async_capped(tag: str, account: int) -> None:
    await asyncio.sleep(0)
    held(tag)


@resque.job(queue="policies", name="policyapp.rated", limit=Limit(rate=2, per=3.0))
def rated(tag: str, account: int) -> None:
    held(tag)


@resque.job(queue="policies", name="policyapp.per_customer",
            limit=Limit(concurrency=1, key=lambda tag, account: str(account), lease=1.0))
def per_customer(tag: str, account: int) -> None:
    held(tag)


@resque.job(queue="policies", name="policyapp.CappedClass", limit=Limit(concurrency=1))
class CappedClass:
    """A Ruby-style job class with a limit."""

    @staticmethod
    def perform(tag: str, account: int) -> Any:
        held(tag)


_kept: list[bytes] = []  # what ``grow`` keeps alive: the worker's memory grows for good


@resque.job(queue="policies", name="policyapp.grow")
def grow(tag: str, megabytes: int) -> None:
    """Keeps ``megabytes`` MB alive in the worker's process (written, so resident)."""
    _kept.append(b"x" * (megabytes * 1024 * 1024))
    held(tag)


@resque.job(queue="policies", name="policyapp.rss")
def rss(tag: str, account: int) -> None:
    """Reports the resident memory of the process it runs in, in MB."""
    from resque.policies import memory

    report(tag=tag, rss=memory.rss() // memory.MB)


@resque.job(queue="policies", name="policyapp.async_plain")
async def async_plain(tag: str, account: int) -> None:
    await asyncio.sleep(0)
    held(tag)


def results() -> redis.Redis:
    """The chaos run's results Redis (``CHAOS_RESULTS``), one connection per process."""
    key = (os.environ["CHAOS_RESULTS"], os.getpid())
    if key not in _results:
        _results[key] = redis.Redis.from_url(key[0])
    return _results[key]


_results: dict[tuple[str, int], redis.Redis] = {}
CHAOS_CAP = 3


@resque.job(name="policyapp.chaos", queue="chaos",
            unique=Unique(until="end", lease=2.0),
            limit=Limit(concurrency=CHAOS_CAP, lease=2.0, retry_in=0.5))
def limited_chaos(job_id: str, seconds: float) -> None:
    """The policies' chaos job: records its run (``chaos:done``, ``chaos:runs``) and, once it
    ends, its interval (``chaos:spans``), from which the test counts how many ran at once."""
    began = time.time()
    time.sleep(seconds)
    with results().pipeline(transaction=True) as pipe:
        pipe.sadd("chaos:done", job_id)
        pipe.hincrby("chaos:runs", job_id, 1)
        pipe.rpush("chaos:spans", json.dumps([began, time.time()]))
        pipe.execute()


@resque.job(queue="policies", name="policyapp.bad_key",
            limit=Limit(concurrency=1, key=lambda tag, account: tag[99]))
def bad_key(tag: str, account: int) -> None:
    """Its limit's key function raises (IndexError) for any short tag."""
    held(tag)


@resque.job(queue="policies", name="policyapp.unique_flaky",
            unique=Unique(until="end"), retry=Retry(max_attempts=2, backoff=0))
def unique_flaky(tag: str, account: int) -> None:
    """Unique until it ends, and retried once at once: its first attempt fails."""
    report(tag=tag, attempt=resque.current_job().attempt)
    if resque.current_job().attempt == 1:
        raise RuntimeError(f"first attempt of {tag}")
