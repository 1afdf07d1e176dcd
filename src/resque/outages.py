"""How a worker lives through Redis going away, or refusing a write for now.

Three kinds of Redis work, one policy each, sharing one outage log (``connection.Outage``: a
line when Redis stops answering and one when it is back, whichever thread sees it):

* startup steps (``until_answered``) wait for Redis with backoff, as long as it takes;
* background tasks (``background``, the heartbeat thread) log and try again next time;
* the step (``until_done``) retries with backoff and never runs twice: each attempt after a
  lost reply first asks whether the previous one ran.

An error that is not an outage (a key of the wrong type, another tool's bug) is the task's
own: logged when it starts or changes and when it clears, not at every attempt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis

from resque.connection import Backoff, Outage, after_refusal, is_transient, unavailable_error
from resque.store import NOT_NOW

log = logging.getLogger("resque.worker")
T = TypeVar("T")


class TaskReports:
    """What failed last, per task: one log line when a task's error starts or changes, one
    when it works again."""

    def __init__(self) -> None:
        self._last: dict[str, str] = {}

    def report(self, task: str, exc: BaseException | None) -> None:
        message = "" if exc is None else str(exc)
        if self._last.get(task, "") == message:
            return
        self._last[task] = message
        if exc is None:
            log.warning("%s works again", task)
        else:
            log.error("%s failed: %s (the worker goes on; retried every few seconds)", task,
                      message)


class Retries:
    """One worker's retry policies. ``sleep`` wakes early for a signal; ``stopping`` says
    the worker was told to stop."""

    def __init__(self, client: redis.Redis, outage: Outage, sleep: Callable[[float], None],
                 stopping: Callable[[], bool]) -> None:
        self.client = client
        self.outage = outage
        self.reports = TaskReports()
        self.sleep = sleep
        self.stopping = stopping

    def until_answered(self, task: str, action: Callable[[], Any]) -> None:
        """A startup step: retried with backoff while Redis is away (not once stopping). A
        refused password is no outage: it ends the worker with a clear error. A key of the
        wrong type is reported, and the worker starts anyway."""
        backoff = Backoff()
        while not self.stopping():
            try:
                action()
            except redis.AuthenticationError as exc:
                raise unavailable_error(self.client, exc) from exc
            except redis.RedisError as exc:
                if not is_transient(exc):
                    self.reports.report(task, exc)
                    return
                self._away(exc)
                self.sleep(backoff.next())
                continue
            self.outage.recovered()
            self.reports.report(task, None)
            return

    def background(self, task: str, action: Callable[[], Any]) -> None:
        """A background task, run once: whatever it raises is logged, never raised."""
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - the heartbeat thread must never die
            if is_transient(exc):
                self.outage.failed(exc)
            else:
                self.reports.report(task, exc)
        else:
            self.outage.recovered()
            self.reports.report(task, None)

    def until_done(self, task: str, attempt: Callable[[bool], T], give_up_after: float) -> T:
        """Retry ``attempt`` with backoff until Redis answers. ``attempt(True)`` means an
        earlier attempt may have run with its reply lost: it must check before acting again.
        A refusal before any write (``NOTNOW``) is reported and sent again. Once the worker
        is stopping, an outage longer than ``give_up_after`` seconds raises."""
        failed_at: float | None = None
        backoff = Backoff()
        while True:
            try:
                result = attempt(failed_at is not None)
            except redis.RedisError as exc:
                failed_at = self._failed(task, exc, failed_at, give_up_after)
                self.sleep(backoff.next())
                continue
            self.outage.recovered()
            self.reports.report(task, None)
            return result

    def _failed(self, task: str, exc: redis.RedisError, failed_at: float | None,
                give_up_after: float) -> float | None:
        """Report a failed attempt; returns when the outage began, or raises to give up."""
        if str(exc).startswith(NOT_NOW):  # refused before writing anything
            self.reports.report(task, exc)
            return failed_at
        if not is_transient(exc):
            raise exc
        self._away(exc)
        if failed_at is None:
            return time.monotonic()
        if self.stopping() and time.monotonic() - failed_at > give_up_after:
            raise exc  # stopping: the jobs stay in flight and a pruner requeues them
        return failed_at

    def _away(self, exc: BaseException) -> None:
        self.outage.failed(exc)
        after_refusal(self.client, exc)
