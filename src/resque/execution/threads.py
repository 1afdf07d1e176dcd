"""``concurrency=N``: up to N jobs at once on threads of the worker process.

A step reserves up to N jobs and the batch runs on N threads; ``async def`` jobs share one
event loop on a thread of its own, so N of them can wait on I/O at once. Ruby sees one worker
with one pid. A job on a thread cannot be interrupted: a stop lets it finish (TERM acts as
QUIT), and USR1 has no child to kill.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from resque import jobs
from resque.execution import aio
from resque.execution.base import Executor, Host
from resque.store import Ack, Reserved


class ThreadExecutor(Executor):
    """Runs each batch on a pool of ``concurrency`` threads."""

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.batch = host.settings.concurrency  # one job per thread; all start at once
        self._pool: ThreadPoolExecutor | None = None
        self._loop: Any = None
        self._default_awaiter = jobs.awaiter

    def start(self) -> None:
        import asyncio

        loop = self._loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="resque-loop", daemon=True).start()

        def on_loop(awaitable: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(jobs.as_coroutine(awaitable), loop).result()

        self._default_awaiter = jobs.awaiter
        jobs.awaiter = on_loop
        self._pool = ThreadPoolExecutor(self.batch, thread_name_prefix="resque-job")

    def run(self, batch: Sequence[Reserved]) -> list[Ack]:
        if self._pool is None:
            raise RuntimeError("ThreadExecutor.run() before start()")
        return aio.run_batch(self, self._loop, self._pool, batch)

    def perform_job(self, job: Reserved, payload: dict[str, Any], target: Any) -> Ack:
        self.show_processing(job, payload)
        return self.perform_here(job, payload, target)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
            jobs.awaiter = self._default_awaiter
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop = None
