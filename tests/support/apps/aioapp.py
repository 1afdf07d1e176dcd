"""``async def`` jobs for tests/test_aio.py (``--app aioapp``): each notes, in workerapp's log,
the thread it ran on (``resque-loop``: the worker's loop; ``resque-job``: a job thread);
``AioTogether`` how many of its kind waited at once at most; ``AioCurrent`` what
``resque.current_job()`` tells it; ``AioTracked`` asks for a status."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref

import workerapp

import resque


def note(*parts: object) -> None:
    name = threading.current_thread().name  # resque-loop, or resque-job-N: noted resque-job
    workerapp.note(*parts, name if name == "resque-loop" else name.rstrip("0123456789-"))


@resque.job(name="AioTag")
async def aio_tag(tag: str) -> None:
    await asyncio.sleep(0.01)
    note("aio", tag)


@resque.job(name="AioPool")
async def aio_pool(tag: str) -> None:
    await asyncio.sleep(0.01)
    note("pool", tag)


_waiting = [0, 0]  # AioTogether jobs waiting now, the most seen at once


@resque.job(name="AioTogether")
async def aio_together(tag: str) -> None:
    _waiting[0] += 1
    _waiting[1] = max(_waiting)
    await asyncio.sleep(0.3)
    _waiting[0] -= 1
    note("together", tag, _waiting[1])


@resque.job(name="AioCurrent")
async def aio_current(tag: str, *, locale: str = "en") -> None:
    await asyncio.sleep(0.01)
    job = resque.current_job()
    note("current", tag, locale, job.id, job.kwargs == {"locale": locale}, job.tracked)


@resque.job(name="AioTracked", status=True)
async def aio_tracked(tag: str) -> str:
    await asyncio.sleep(0.01)
    job = resque.current_job()
    job.at(1, 2, "halfway")
    note("tracked", tag, job.id, job.tracked)
    return f"done {tag}"


@resque.job(name="AioFail")
async def aio_fail(tag: str) -> None:
    await asyncio.sleep(0)
    raise ValueError(f"aio failed: {tag}")


@resque.job(name="AioHooked")
async def aio_hooked(tag: str) -> None:
    note("hooked", tag)


def _before(tag: str) -> None:
    note("before", tag)


aio_hooked.hook("before_perform")(_before)


@resque.job(name="SyncTag")
def sync_tag(tag: str) -> None:
    note("sync", tag)


def _resolve(loop: asyncio.AbstractEventLoop, ref: weakref.ref[asyncio.Future[None]]) -> None:
    future = ref()
    if future is not None:
        loop.call_soon_threadsafe(future.set_result, None)


@resque.job(name="AioOrphan")
async def aio_orphan(tag: str) -> None:
    """Waits on a future that only its own task holds (the timer keeps a weak reference), as
    a job reading a stream can: the worker must hold the task, or the collector ends it."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    threading.Timer(0.5, _resolve, [loop, weakref.ref(future)]).start()
    await future
    note("orphan", tag)


@resque.job(name="SyncCollect")
def sync_collect(tag: str) -> None:
    time.sleep(0.1)
    gc.collect()
    note("collected", tag)
