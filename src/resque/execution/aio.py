"""``async def`` jobs of a concurrent worker (``concurrency=N``), awaited on its event loop.

Why: through the thread pool, each ``async def`` job holds a pool thread that hands the
coroutine to the loop and blocks on its result: four thread switches per job, all under one
GIL, which made an asyncio job slower than the same wait in a plain function. A plain
``async def`` task without hooks and without a status record is instead awaited on the loop
directly (``current.execute_awaited``: ``current_job()``, keyword arguments and the argument
check as everywhere else), the whole batch's in one hand-off from the worker's thread.
Anything else in the batch goes to the pool as before, at the same time: plain jobs; jobs with
hooks, whose Ruby order of before/around/after around an awaited ``perform`` is
``jobs.run``'s; tracked jobs (``status=True``), whose started and finished marks are Redis
round trips that must not block the loop; payloads that cannot be read or resolved. Either way
each job gets the same acknowledgement ``Executor.perform`` gives, and is timed into the
worker's duration histograms the same way.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from resque import current, layout
from resque.errors import TermException
from resque.execution.base import Executor
from resque.store import ACK_FAILED, ACK_OK, ACK_REQUEUE, Ack, Reserved
from resque.tasks import AsyncTask

Direct = tuple[Reserved, dict[str, Any], Callable[..., Coroutine[Any, Any, Any]]]


def direct(executor: Executor, job: Reserved) -> Direct | None:
    """The job, its payload and its coroutine function, if it can be awaited directly."""
    try:
        payload = layout.decode_job(job.raw, job.queue)
        resque = executor.host.resque
        target = resque.registry.resolve(payload["class"], resque.allowed_modules)
    except Exception:  # noqa: BLE001 - Executor.perform records why, on the pool
        return None
    if (isinstance(target, AsyncTask) and not any(target.hooks.values())
            and layout.JOB_TRACK not in payload and inspect.iscoroutinefunction(target.func)):
        return job, payload, target.func
    return None


async def perform(executor: Executor, plan: Direct) -> Ack:
    """``Executor.perform`` for a hookless, untracked ``async def`` job, on this loop."""
    job, payload, func = plan
    durations = executor.host.durations
    started = time.perf_counter()
    ack = await _outcome(executor, job, payload, func)
    if durations is not None and ack.mode != ACK_REQUEUE:  # a requeued job is timed when rerun
        durations.observe(job.queue, payload["class"], time.perf_counter() - started,
                          ack.mode != ACK_OK)
    return ack


async def _outcome(executor: Executor, job: Reserved, payload: dict[str, Any],
                   func: Callable[..., Coroutine[Any, Any, Any]]) -> Ack:
    """``Executor.perform_here``, awaited."""
    executor.show_processing(job, payload)
    try:
        await current.execute_awaited(func, payload, job.queue, executor.host)
        return Ack(ACK_OK)
    except BaseException as exc:  # noqa: BLE001 - a job may raise anything, as in perform_here
        if executor.host.stop.interrupt and isinstance(exc, TermException):
            return Ack(ACK_REQUEUE)
        return executor.failure(ACK_FAILED, job, payload, exc)


async def _gather(executor: Executor, plans: list[Direct]) -> list[Ack]:
    return list(await asyncio.gather(*(perform(executor, plan) for plan in plans)))


def run_batch(executor: Executor, loop: asyncio.AbstractEventLoop, pool: ThreadPoolExecutor,
              batch: Sequence[Reserved]) -> list[Ack]:
    """Perform a batch at once: direct ``async def`` jobs gathered on ``loop``, the rest on
    ``pool``; one acknowledgement per job, in the batch's order."""
    plans = [direct(executor, job) for job in batch]
    on_pool: dict[int, Future[Ack]] = {
        i: pool.submit(executor.perform, job) for i, (job, plan) in
        enumerate(zip(batch, plans, strict=True)) if plan is None}
    awaited = [plan for plan in plans if plan is not None]
    acks = iter(asyncio.run_coroutine_threadsafe(_gather(executor, awaited), loop).result()
                if awaited else [])
    return [on_pool[i].result() if i in on_pool else next(acks) for i in range(len(batch))]
