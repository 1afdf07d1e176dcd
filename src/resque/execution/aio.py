"""``async def`` jobs of a concurrent worker (``concurrency=N``), awaited on its event loop.

Why: through the thread pool, each ``async def`` job holds a pool thread that hands the
coroutine to the loop and blocks on its result: four thread switches per job, all under one
GIL, which made an asyncio job slower than the same wait in a plain function. A plain
``async def`` job function without hooks is instead awaited on the loop directly, the whole
batch's in one hand-off from the worker's thread. Anything else in the batch (plain jobs, jobs
with hooks, whose Ruby order of before/around/after around an awaited ``perform`` is
``jobs.run``'s, payloads that cannot be read or resolved) goes to the pool as before, at the
same time. Either way each job gets the same acknowledgement ``Executor.perform`` gives.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from resque import jobs, layout
from resque.errors import TermException
from resque.execution.base import Executor
from resque.store import ACK_FAILED, ACK_OK, ACK_REQUEUE, Ack, Reserved

Direct = tuple[Reserved, dict[str, Any], Callable[..., Coroutine[Any, Any, Any]]]


def direct(executor: Executor, job: Reserved) -> Direct | None:
    """The job, its payload and its coroutine function, if it can be awaited directly."""
    try:
        payload = layout.decode_job(job.raw, job.queue)
        resque = executor.host.resque
        target = resque.registry.resolve(payload["class"], resque.allowed_modules)
    except Exception:  # noqa: BLE001 - Executor.perform records why, on the pool
        return None
    if (isinstance(target, jobs.JobFunction) and not any(target.hooks.values())
            and inspect.iscoroutinefunction(target.func)):
        return job, payload, target.func
    return None


async def perform(executor: Executor, plan: Direct) -> Ack:
    """``Executor.perform_here`` for a hookless ``async def`` job, awaited on this loop."""
    job, payload, func = plan
    executor.show_processing(job, payload)
    try:
        jobs.check_arguments(func, payload["args"], payload["class"])
        await func(*payload["args"])
        return Ack(ACK_OK)
    except BaseException as exc:  # a job may raise anything, as in perform_here
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
