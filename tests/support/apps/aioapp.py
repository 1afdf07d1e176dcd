"""``async def`` jobs for tests/test_aio.py (``--app aioapp``): each notes, in workerapp's log,
the thread it ran on (``resque-loop``: the worker's loop; ``resque-job``: the thread pool);
``AioPool`` notes how many pool threads exist while it runs (none once a batch of hookless
``async def`` jobs never needed one); ``AioCurrent`` what ``resque.current_job()`` tells it;
``AioTracked`` asks for a status."""

from __future__ import annotations

import asyncio
import threading

import workerapp

import resque


def note(*parts: object) -> None:
    workerapp.note(*parts, threading.current_thread().name.split("_")[0])


@resque.job(name="AioTag")
async def aio_tag(tag: str) -> None:
    await asyncio.sleep(0.01)
    note("aio", tag)


@resque.job(name="AioPool")
async def aio_pool(tag: str) -> None:
    await asyncio.sleep(0.01)
    pool = [t for t in threading.enumerate() if t.name.startswith("resque-job")]
    note("pool", tag, len(pool))


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
