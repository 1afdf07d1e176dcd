"""The job being performed, as the job itself sees it: ``resque.current_job()``.

Every way of performing a job (a forked child, in the worker, on a thread of ``-c N``, an
``async def`` job on the shared event loop, an inline client, the test plugin's ``drain``)
goes through ``execute`` (``execute_awaited`` for the hookless, untracked ``async def`` jobs
a ``-c N`` worker awaits on its loop directly), which sets a context variable for the
duration of the job, so the job can read its id and report progress wherever it runs.
``contextvars`` follow threads and event-loop tasks as they should: each thread has its own,
and a coroutine handed to a loop runs in the context of the code that handed it over.

Setting the variable costs one ``ContextVar.set``; the ``CurrentJob`` object is built only when
a job asks for it. This module imports neither redis-py nor the client (the fork server's
children load it).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from resque import layout, performing, tracing
from resque.policies import retry

if TYPE_CHECKING:
    from resque.status import StatusStore

log = logging.getLogger("resque.jobs")
_TRACK = layout.JOB_TRACK

# (payload, queue, worker, status store or None): what ``current_job`` builds its answer from.
# The worker is any object whose ``str`` is its id (the Worker itself: no string per job).
_running: contextvars.ContextVar[tuple[dict[str, Any], str, object, StatusStore | None] | None] = (
    contextvars.ContextVar("resque_current_job", default=None))


@dataclass
class CurrentJob:
    """The job being performed: its id, where it came from, and progress reporting."""

    id: str | None  # None for a job enqueued without an id (Ruby, Perl, job_ids=False)
    queue: str
    class_name: str
    args: list[Any]
    kwargs: dict[str, Any]
    worker: str
    tracked: bool  # asked for a status: at() is recorded
    attempt: int = 1  # which attempt this is, from 1 (a job with a retry policy counts)
    _store: StatusStore | None = field(default=None, repr=False)
    _ttl: int = field(default=0, repr=False)

    def at(self, num: float, total: float, message: str = "") -> None:
        """Report progress, ``num`` of ``total`` done (resque-status's ``at``). Recorded for
        a tracked job (one round trip); for any other job it is only logged at debug level."""
        if not total or total <= 0:
            raise ValueError(f"at() needs a positive total, not {total!r}")
        if self._store is None or self.id is None:
            log.debug("job %s: %s of %s %s (untracked: not recorded)", self.class_name, num,
                      total, message)
            return
        self._store.progress(self.id, self._ttl, num, total, message)


def current_job() -> CurrentJob:
    """The job being performed by this thread or task; ``RuntimeError`` outside a job."""
    running = _running.get()
    if running is None:
        raise RuntimeError("resque.current_job() is only available while a job is performed")
    payload, queue, worker, store = running
    args, kwargs = layout.split_kwargs(payload["args"])
    job_id = payload.get(layout.JOB_ID)
    ttl = payload.get(layout.JOB_TRACK)
    tracked = store is not None and isinstance(job_id, str) and type(ttl) is int
    ttl = ttl if tracked and isinstance(ttl, int) else 0
    return CurrentJob(
        id=job_id if isinstance(job_id, str) else None, queue=queue,
        class_name=payload["class"], args=args, kwargs=kwargs, worker=str(worker),
        tracked=tracked, attempt=retry.attempt_number(),
        _store=store if tracked else None, _ttl=ttl,
    )


def execute(target: Any, payload: dict[str, Any], queue: str, worker: object,
            store: StatusStore | None = None) -> Any:
    """Perform a decoded job (``performing.run``) as the current job; what it returned.
    ``worker``: the worker id, or an object whose ``str`` is (read only if asked for).

    A tracked job (``track`` in its payload) with a ``store`` is marked started before and
    finished (with its result) after; a failure is recorded by whoever acknowledges the job
    (``status.settle``), since only it knows whether the job failed or goes back to its queue.
    An untracked job costs a ``ContextVar.set`` and ``reset``: this is every job's path.
    A tracer (``resque.tracing``) opens its span around the job.
    """
    if tracing.tracer is not None:
        with tracing.tracer.performing(payload, queue, worker):
            return _execute(target, payload, queue, worker, store)
    return _execute(target, payload, queue, worker, store)


def _execute(target: Any, payload: dict[str, Any], queue: str, worker: object,
             store: StatusStore | None) -> Any:
    if store is not None and _TRACK in payload:
        return _execute_tracked(target, payload, queue, worker, store)
    token = _running.set((payload, queue, worker, None))
    try:
        return performing.run(target, payload["args"], payload["class"])
    except BaseException as exc:
        retry.ruling(exc, payload)  # policies: a give-up hook sees current_job()
        raise
    finally:
        _running.reset(token)


async def execute_awaited(func: Callable[..., Awaitable[Any]], payload: dict[str, Any],
                          queue: str, worker: object) -> Any:
    """``execute`` for an untracked, hookless ``async def`` job that a concurrent worker
    awaits on its own loop (``execution/aio.py``): the same current job, set in the context
    of the task that awaits it, and the same argument check; what the job returned. A tracer
    opens its span around the job here too: the span is current in the awaiting task only."""
    if tracing.tracer is not None:
        with tracing.tracer.performing(payload, queue, worker):
            return await _execute_awaited(func, payload, queue, worker)
    return await _execute_awaited(func, payload, queue, worker)


async def _execute_awaited(func: Callable[..., Awaitable[Any]], payload: dict[str, Any],
                           queue: str, worker: object) -> Any:
    token = _running.set((payload, queue, worker, None))
    try:
        args, kwargs = payload["args"], _NO_KEYWORDS
        if args and type(args[-1]) is dict:  # only then can there be keywords
            args, kwargs = layout.split_kwargs(args)
        performing.check_arguments(func, args, payload["class"], kwargs)
        return await (func(*args, **kwargs) if kwargs else func(*args))
    finally:
        _running.reset(token)


_NO_KEYWORDS: dict[str, Any] = {}  # shared, never changed


def _execute_tracked(target: Any, payload: dict[str, Any], queue: str, worker: object,
                     store: StatusStore) -> Any:
    token = _running.set((payload, queue, worker, store))
    try:
        _mark(store, payload, "started", str(worker))
        result = performing.run(target, payload["args"], payload["class"])
        _mark(store, payload, "finished", None if result is performing.SKIPPED else result)
        return result
    except BaseException as exc:
        retry.ruling(exc, payload)
        raise
    finally:
        _running.reset(token)


def _mark(store: Any, payload: dict[str, Any], what: str, value: Any) -> None:
    job_id, ttl = payload.get(layout.JOB_ID), payload.get(layout.JOB_TRACK)
    if not isinstance(job_id, str) or type(ttl) is not int:
        return
    try:
        getattr(store, what)(job_id, ttl, value)
    except Exception as exc:  # noqa: BLE001 - a status write never fails the job itself
        log.warning("could not record job %s as %s: %s", job_id, what, exc)
