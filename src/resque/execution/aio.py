"""``async def`` jobs of a concurrent worker (``concurrency=N``), awaited on its event loop.

Why: through a job thread, each ``async def`` job holds the thread while it hands the
coroutine to the loop and blocks on its result: four thread switches per job, all under one
GIL, which made an asyncio job slower than the same wait in a plain function. A plain
``async def`` task without hooks and without a status record is instead awaited on the loop
directly (``current.execute_awaited``: ``current_job()``, keyword arguments and the argument
check as everywhere else); it takes one of the worker's N places but no thread. Anything else
goes to the threads: plain jobs; jobs with a retry policy or a timeout (their attempt and
deadline are kept there); jobs with hooks, whose Ruby order of before/around/after
around an awaited ``perform`` is ``performing.run``'s; tracked jobs (``status=True``), whose started
and finished marks are Redis round trips that must not block the loop, as are the locks of
jobs with a policy (``policies/guard.py``); payloads that cannot
be read or resolved. Either way each job ends as ``Executor.perform`` ends it: the same
acknowledgement, line and timing (``Executor.settle``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Callable, Coroutine
from typing import Any

from resque import current, layout, logs
from resque.execution.base import Executor
from resque.policies import guard, retry
from resque.policies import timeout as timeouts
from resque.store import ACK_FAILED, ACK_OK, Ack, Reserved
from resque.tasks import AsyncTask

Direct = tuple[Reserved, dict[str, Any], Callable[..., Coroutine[Any, Any, Any]]]


def direct(executor: Executor, job: Reserved) -> Direct | None:
    """The job, its payload and its coroutine function, if it can be awaited directly."""
    try:
        payload = layout.decode_job(job.raw, job.queue)
        resque = executor.host.resque
        target = resque.registry.resolve(payload["class"], resque.allowed_modules,
                                         executor.preload)
    except Exception:  # noqa: BLE001 - Executor.perform records why, on a thread
        return None
    if (isinstance(target, AsyncTask) and not any(target.hooks.values())
            and layout.JOB_TRACK not in payload and not guard.applies(payload, target)
            and inspect.iscoroutinefunction(target.func)
            and retry.policy_of(target, payload) is None
            and timeouts.of(target, executor.job_timeout, payload) is None):
        return job, payload, target.func
    return None


async def perform(executor: Executor, plan: Direct) -> Ack:
    """``Executor.perform`` for a hookless, untracked ``async def`` job, on this loop."""
    job, payload, func = plan
    started = time.monotonic()
    context = logs.current_job.set((job.queue, payload))  # this task's context only
    try:
        executor.show_processing(job, payload)
        await current.execute_awaited(func, payload, job.queue, executor.host)
        ack = Ack(ACK_OK)
    except BaseException as exc:  # noqa: BLE001 - a job may raise anything, as in perform_here
        ack = executor.ended_by(job, payload, exc)
    finally:
        logs.current_job.reset(context)
    return executor.settle(job, payload, ack, started, performed=True, tracked=False)


def start(executor: Executor, loop: asyncio.AbstractEventLoop, plans: list[Direct],
          ended: Callable[[Reserved, Ack], None], tasks: set[asyncio.Future[Ack]]) -> None:
    """Start awaiting the jobs on ``loop``, all in one hand-off; ``ended(job, ack)`` is
    called on the loop as each one ends. ``tasks`` holds each task until it ends: the loop
    keeps only weak references, and a task collected while it waits (on a stream whose only
    owner is the task) would never end, its ``finally`` run by the collector in whatever
    thread and context it happens to be."""
    loop.call_soon_threadsafe(_start_all, executor, plans, ended, tasks)


def _start_all(executor: Executor, plans: list[Direct],
               ended: Callable[[Reserved, Ack], None], tasks: set[asyncio.Future[Ack]]) -> None:
    for plan in plans:
        task = asyncio.ensure_future(perform(executor, plan))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        task.add_done_callback(functools.partial(_done, executor, plan, ended))


def _done(executor: Executor, plan: Direct, ended: Callable[[Reserved, Ack], None],
          task: asyncio.Future[Ack]) -> None:
    job, payload, _ = plan
    try:
        ack = task.result()
    except BaseException as exc:  # noqa: BLE001 - settling failed (Redis away): still ends
        ack = executor.failure(ACK_FAILED, job, payload, exc)
    ended(job, ack)
