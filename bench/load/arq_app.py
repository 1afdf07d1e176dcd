"""The ``async def`` workloads as arq functions (``arq arq_app.WorkerSettings``), run by the
interpreter of the arq environment (arq needs redis-py < 6, the other frameworks >= 6)."""

from __future__ import annotations

import os
from typing import Any

import jobs
from arq.connections import RedisSettings


async def aio_sleep(ctx: dict[str, Any], enqueued: float, units: int = 0) -> None:
    await jobs.aio_sleep(enqueued, units)


async def aio_http(ctx: dict[str, Any], enqueued: float, units: int = 0) -> None:
    await jobs.aio_http(enqueued, units)


async def cpu(ctx: dict[str, Any], enqueued: float, units: int = 1) -> None:
    jobs.cpu(enqueued, units)


class WorkerSettings:
    functions = [aio_sleep, aio_http, cpu]
    redis_settings = RedisSettings.from_dsn(os.environ["BENCH_REDIS"])
    max_jobs = int(os.environ.get("BENCH_CONCURRENCY", "16"))
    poll_delay = 0.01  # its default, 0.5 s, would cap it at a few hundred jobs/s here
    queue_name = "bench"
    keep_result = 0
    max_tries = 1
    handle_signals = True
