"""Jobs and worker hooks for the worker tests; workers load it with ``--app workerapp``.

Every job reports what it did by appending to the Redis list ``workerapp:log`` on the server
named by ``WORKERAPP_REDIS``. The list lies outside the ``resque:`` namespace, so it never
counts as a key a worker leaves behind. Entries are ``word:word:...`` strings.

The worker hooks act only when ``WORKERAPP_HOOKS=1``, so that importing this module (as the
in-process tests do) changes nothing for other tests.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

import redis

import resque
import resque.failure
from resque.worker import worker_hook

LOG = "workerapp:log"
_clients: dict[tuple[str, int], redis.Redis] = {}


def client() -> redis.Redis:
    """One connection per process (a forked child opens its own)."""
    key = (os.environ["WORKERAPP_REDIS"], os.getpid())
    if key not in _clients:
        _clients[key] = redis.Redis.from_url(key[0])
    return _clients[key]


def note(*parts: Any) -> None:
    client().rpush(LOG, ":".join(str(part) for part in parts))


# --- jobs -------------------------------------------------------------------------------------


@resque.job(name="Record")
def record(tag: str) -> None:
    """Leaves ``tag`` in the log: shows that a job ran, and in which order."""
    note(tag)


@resque.job(name="Hello")
def hello(name: str) -> None:
    """Takes exactly one argument, so other arities show the args check."""
    note("hello", name)


@resque.job(name="Pid")
def pid(tag: str) -> None:
    """Leaves the pid of the process that performed it: a forked child, or the worker."""
    note("pid", tag, os.getpid())


@resque.job(name="Sleep")
def sleep(seconds: float, tag: str = "sleep") -> None:
    note("start", tag)
    try:
        time.sleep(seconds)
    except resque.TermException:
        note("term", tag)
        raise
    note("end", tag)


@resque.job(name="Fail")
def fail(*args: Any) -> None:
    raise RuntimeError("boom")


@resque.job(name="Exit")
def exit_3() -> None:
    sys.exit(3)


@resque.job(name="Abort")
def abort_3() -> None:
    """Leaves the child at once, with no exception for the worker to see."""
    os._exit(3)


@resque.job(name="Segfault")
def segfault() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
    os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(5)


@resque.job(name="Hooked")
class Hooked:
    """A Ruby-style job class with every perform hook; ``perform("fail")`` raises and
    ``perform("sleep")`` takes 30 s."""

    @staticmethod
    def before_perform(*args: Any) -> None:
        note("before_perform", *args)

    @staticmethod
    def before_perform_second(*args: Any) -> None:
        note("before_perform_second")

    @staticmethod
    def around_perform(*args: Any) -> Iterator[None]:
        note("around_enter")
        yield
        note("around_exit")

    @staticmethod
    def perform(*args: Any) -> None:
        note("perform", *args)
        if args == ("fail",):
            raise RuntimeError("hooked boom")
        if args == ("sleep",):
            time.sleep(30)

    @staticmethod
    def after_perform(*args: Any) -> None:
        note("after_perform")

    @staticmethod
    def on_failure(exc: BaseException, *args: Any) -> None:
        note("on_failure", type(exc).__name__, exc)


@resque.job(name="Skipped")
class Skipped:
    """``before_perform`` raises DontPerform: the job is skipped quietly."""

    @staticmethod
    def before_perform(*args: Any) -> None:
        note("before_perform")
        raise resque.DontPerform("not today")

    @staticmethod
    def perform(*args: Any) -> None:
        note("perform")

    @staticmethod
    def on_failure(exc: BaseException, *args: Any) -> None:
        note("on_failure")


@resque.job(name="BadHook")
class BadHook:
    """Fails, and its ``on_failure`` hook fails too: the hook's error is logged where the job
    ran (a forked child's line, in the worker's format)."""

    @staticmethod
    def perform(*args: Any) -> None:
        raise RuntimeError("job boom")

    @staticmethod
    def on_failure(exc: BaseException, *args: Any) -> None:
        raise ValueError("hook boom")


# --- worker hooks -----------------------------------------------------------------------------


def _hooks_on() -> bool:
    return os.environ.get("WORKERAPP_HOOKS") == "1"


@worker_hook("before_first_fork")
def _before_first_fork() -> None:
    if _hooks_on():
        note("before_first_fork", os.getpid())


@worker_hook("before_fork")
def _before_fork(job: dict[str, Any]) -> None:
    if _hooks_on():
        note("before_fork", os.getpid(), job["class"])


@worker_hook("before_fork")
def _broken_before_fork(job: dict[str, Any]) -> None:
    if _hooks_on():
        raise RuntimeError("broken hook")


@worker_hook("after_fork")
def _after_fork(job: dict[str, Any]) -> None:
    if _hooks_on():
        note("after_fork", os.getpid(), job["class"])


@worker_hook("queue_empty")
def _queue_empty() -> None:
    if _hooks_on():
        note("queue_empty", os.getpid())


@worker_hook("worker_exit")
def _worker_exit() -> None:
    if _hooks_on():
        note("worker_exit", os.getpid())


class TrackerBackend(resque.failure.FailureBackend):
    """A non-Redis failure backend, as an error tracker would be: it only reports."""

    def save(self, failure: resque.failure.Failure) -> None:
        exc = failure.exception
        note("tracked", failure.class_name, type(exc).__name__ if exc else None)


@resque.job(name="Nap")
def nap(seconds: float, tag: str) -> None:
    """A job that waits on 'I/O' (sleeps): threads let several wait at once."""
    time.sleep(seconds)
    note("nap", tag)


@resque.job(name="AsyncNap")
async def async_nap(seconds: float, tag: str) -> None:
    import asyncio

    await asyncio.sleep(seconds)
    note("async", tag)
