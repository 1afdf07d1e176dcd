"""Timeouts: a job that runs past its limit is ended and recorded as ``Resque::JobTimeout``
(then retried, if its retry policy says so).

Declared on the job (``@resque.job(timeout=30)``, a class's ``__resque_timeout__``), or for
every job of a worker that has none (``WorkerSettings.job_timeout``, ``RESQUE_JOB_TIMEOUT``).
How a job is ended depends on where it runs, each mode in its own module:

* a forked child (``execution/fork.py``): TERM (``TermException`` in the job), then KILL
  after the worker's ``term_timeout``; the worker records the timeout;
* in the worker process (``execution/inline.py``): ``JobTimeout`` raised inside the job by
  the worker's alarm, as a stop raises ``TermException``;
* an ``async def`` job on the loop of ``-c N`` (``execution/threads.py``): cancelled at the
  deadline (``asyncio.wait_for``);
* a plain job on a thread of ``-c N``: Python cannot interrupt a thread. The job is recorded
  as timed out at the deadline and its place is freed (it runs on, abandoned, on a thread of
  its own); the worker then takes no more jobs and exits once the others end, so that a
  supervisor starts a fresh process and the abandoned thread ends with this one.

This module decides, with no I/O; a job without a timeout pays an attribute lookup.
"""

from __future__ import annotations

import contextvars
from collections.abc import Coroutine
from typing import Any

from resque import layout
from resque.errors import JobTimeout

# The limit of the job being performed in this context, in seconds (None: no limit).
_limit: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "resque_job_timeout", default=None)


def of(target: Any, default: float | None, payload: Any = None) -> float | None:
    """The job's timeout: one given to this call (``timeout`` in its payload), else a
    task's ``timeout`` or a class's ``__resque_timeout__``, else the worker's ``default``."""
    found = payload.get(layout.JOB_TIMEOUT) if isinstance(payload, dict) else None
    if found is None:
        found = getattr(target, "__resque_timeout__" if isinstance(target, type)
                        else "timeout", None)
    if isinstance(found, (int, float)) and not isinstance(found, bool) and found > 0:
        return float(found)
    return default


def check(seconds: Any) -> float | None:
    """A timeout as given to ``@resque.job(timeout=...)``: positive seconds, or None."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {seconds!r}")
    return float(seconds)


def current() -> float | None:
    """The limit of the job this context performs, if it has one."""
    return _limit.get()


def begin(seconds: float) -> contextvars.Token[float | None]:
    return _limit.set(seconds)


def end(token: contextvars.Token[float | None]) -> None:
    _limit.reset(token)


def expired(seconds: float) -> JobTimeout:
    return JobTimeout(layout.timeout_message(seconds))


async def within(coroutine: Coroutine[Any, Any, Any], seconds: float) -> Any:
    """Await a job's coroutine, cancelled at its deadline: ``JobTimeout`` then."""
    import asyncio  # only where async jobs run: asyncio is heavy to import

    try:
        return await asyncio.wait_for(coroutine, seconds)
    except asyncio.TimeoutError:
        raise expired(seconds) from None
