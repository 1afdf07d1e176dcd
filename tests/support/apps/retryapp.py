"""Jobs with retry policies, for tests/test_retry.py; workers load it with ``--app retryapp``.

Each job appends ``name:tag:attempt`` to the Redis list ``retryapp:log`` (outside the
``resque:`` namespace) on the server named by ``WORKERAPP_REDIS``, so a test reads which
attempts ran, in which process, and in what order.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import redis

import resque
from resque.policies.retry import Retry

LOG = "retryapp:log"


def note(*parts: Any) -> None:
    client = redis.Redis.from_url(os.environ["WORKERAPP_REDIS"])
    try:
        client.rpush(LOG, ":".join(str(part) for part in parts))
    finally:
        client.close()


def attempt() -> int:
    return resque.current_job().attempt


class Transient(Exception):
    """The error these jobs retry on."""


class Final(Exception):
    """An error that gives up at once."""


def gave_up(exc: BaseException, tag: str, *args: Any) -> None:
    note("gave_up", tag, type(exc).__name__, attempt())


@resque.job(name="Flaky", queue="retry",
            retry=Retry(max_attempts=3, on=Transient, on_give_up=gave_up))
def flaky(tag: str, fail_times: int) -> None:
    """Fails its first ``fail_times`` attempts with ``Transient``; hangs on the attempt that
    ``RETRYAPP_HANG`` names (``tag:attempt``), for a test to kill its worker."""
    note("flaky", tag, attempt())
    if os.environ.get("RETRYAPP_HANG") == f"{tag}:{attempt()}":
        time.sleep(60)
    if attempt() <= fail_times:
        raise Transient(f"attempt {attempt()} of {tag}")


@resque.job(name="Fatal", queue="retry",
            retry=Retry(max_attempts=5, on=Exception, give_up_on=Final, on_give_up=gave_up))
def fatal(tag: str) -> None:
    """Raises an error its policy gives up on at once."""
    note("fatal", tag, attempt())
    raise Final("no point trying again")


@resque.job(name="Everyone", queue="retry", retry=Retry(max_attempts=2, record_attempts=True))
def everyone(tag: str) -> None:
    """Always fails: each attempt gets its failure record."""
    note("everyone", tag, attempt())
    raise Transient(f"attempt {attempt()}")


@resque.job(name="Later", queue="retry", retry=Retry(max_attempts=2, backoff=[1]))
def later(tag: str) -> None:
    """Fails once; its retry is delayed one second, for a scheduler to move."""
    note("later", tag, attempt())
    if attempt() == 1:
        raise Transient("first attempt")


@resque.job(name="Tracked", queue="retry", status=True, retry=Retry(max_attempts=2, backoff=60))
def tracked(tag: str) -> str:
    """A tracked job whose retry waits a minute: its status says retrying meanwhile."""
    note("tracked", tag, attempt())
    if attempt() == 1:
        raise Transient("first attempt")
    return f"done {tag}"


@resque.job(name="Dies", queue="retry", retry=Retry(max_attempts=2))
def dies(tag: str) -> None:
    """Kills its own process on the first attempt (a DirtyExit when forked)."""
    note("dies", tag, attempt())
    if attempt() == 1:
        os.kill(os.getpid(), signal.SIGKILL)


@resque.job(name="AsyncFlaky", queue="retry", retry=Retry(max_attempts=3))
async def async_flaky(tag: str, fail_times: int) -> None:
    """``flaky``, awaited."""
    await asyncio.sleep(0)
    note("async", tag, attempt())
    if attempt() <= fail_times:
        raise Transient(f"attempt {attempt()} of {tag}")


class ClassJob:
    """A Ruby-style class with its policy as ``__resque_retry__``."""

    queue = "retry"
    __resque_retry__ = Retry(max_attempts=2)

    @staticmethod
    def perform(tag: str) -> None:
        note("class", tag, attempt())
        if attempt() == 1:
            raise Transient("first attempt")


resque.registry.register(ClassJob, name="ClassJob")


@resque.job(name="Plain", queue="retry")
def plain(tag: str) -> None:
    """No policy: fails once and for all."""
    note("plain", tag, attempt())
    raise Transient("no retry")


# --- timeouts ----------------------------------------------------------------------------------


@resque.job(name="Sleepy", queue="retry", timeout=0.5)
def sleepy(tag: str, seconds: float) -> None:
    """Sleeps past its timeout when ``seconds`` > 0.5; notes whether it got to the end."""
    note("sleepy", tag, attempt())
    time.sleep(seconds)
    note("woke", tag)


@resque.job(name="AsyncSleepy", queue="retry", timeout=0.5)
async def async_sleepy(tag: str, seconds: float) -> None:
    note("async_sleepy", tag, attempt())
    await asyncio.sleep(seconds)
    note("woke", tag)


@resque.job(name="SlowOnce", queue="retry", timeout=0.5, retry=Retry(max_attempts=2))
def slow_once(tag: str) -> None:
    """Its first attempt runs past the timeout; the retry is quick."""
    note("slow_once", tag, attempt())
    if attempt() == 1:
        time.sleep(5)


@resque.job(name="Stubborn", queue="retry", timeout=0.5)
def stubborn(tag: str) -> None:
    """Swallows the TERM that ends a timed-out child: the worker KILLs it after its grace."""
    note("stubborn", tag)
    for _ in range(50):
        try:
            time.sleep(0.1)
        except BaseException:  # noqa: BLE001 - the point: a job that ignores the stop
            note("ignored", tag)


@resque.job(name="Nap", queue="retry")
def nap(tag: str, seconds: float) -> None:
    """No timeout of its own: the worker's ``job_timeout`` applies."""
    note("nap", tag)
    time.sleep(seconds)
    note("woke", tag)
