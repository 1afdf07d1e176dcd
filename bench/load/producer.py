"""Enqueue one workload for one framework: ``python producer.py FRAMEWORK KIND COUNT RATE``.

RATE 0: as fast as the framework's own bulk call allows (the jobs wait while workers start);
otherwise one job at a time, RATE per second, each carrying ``time.time()`` just before its
enqueue call, for the enqueue-to-start latency. ``cpu`` jobs alternate 5 units and 1 unit
(a mixed CPU-bound load). Run by bench/workloads.py, with the arq environment's interpreter
for arq.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from typing import Any

URL = os.environ["BENCH_REDIS"]
QUEUE = "bench"


def units(kind: str, n: int) -> int:
    return (5 if n % 4 == 0 else 1) if kind == "cpu" else 0


def paced(count: int, rate: float, send: Callable[[float, int], Any]) -> None:
    begin = time.monotonic()
    for n in range(count):
        pause = begin + n / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        send(time.time(), n)


def ours(kind: str, count: int, rate: float) -> None:
    from resque import Resque

    client, name = Resque(URL), f"load.{kind}"
    if rate:
        paced(count, rate, lambda t, n: client.enqueue_to(QUEUE, name, t, units(kind, n)))
    else:
        client.enqueue_many(name, [[0.0, units(kind, n)] for n in range(count)], queue=QUEUE)


def rq(kind: str, count: int, rate: float) -> None:
    import redis
    from rq import Queue

    queue, name = Queue(QUEUE, connection=redis.Redis.from_url(URL)), f"jobs.{kind}"
    if rate:
        paced(count, rate, lambda t, n: queue.enqueue(name, t, units(kind, n)))
        return
    for start in range(0, count, 1000):
        queue.enqueue_many([Queue.prepare_data(name, (0.0, units(kind, n)))
                            for n in range(start, min(count, start + 1000))])


def dramatiq(kind: str, count: int, rate: float) -> None:
    from dramatiq_app import actors

    actor = actors[kind]
    if rate:
        paced(count, rate, lambda t, n: actor.send(t, units(kind, n)))
    else:
        for n in range(count):
            actor.send(0.0, units(kind, n))


def celery(kind: str, count: int, rate: float) -> None:
    from celery_app import tasks

    task = tasks[kind]
    if rate:
        paced(count, rate, lambda t, n: task.apply_async((t, units(kind, n)), queue=QUEUE))
    else:
        for n in range(count):
            task.apply_async((0.0, units(kind, n)), queue=QUEUE)


def arq(kind: str, count: int, rate: float) -> None:
    from arq import create_pool
    from arq.connections import RedisSettings

    async def run() -> None:
        pool = await create_pool(RedisSettings.from_dsn(URL), default_queue_name=QUEUE)
        if rate:
            begin = time.monotonic()
            for n in range(count):
                pause = begin + n / rate - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                await pool.enqueue_job(kind, time.time(), units(kind, n))
        else:
            for start in range(0, count, 500):
                await asyncio.gather(*(pool.enqueue_job(kind, 0.0, units(kind, n))
                                       for n in range(start, min(count, start + 500))))
        await pool.aclose()

    asyncio.run(run())


if __name__ == "__main__":
    framework, kind, count, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    {"resque": ours, "rq": rq, "dramatiq": dramatiq, "celery": celery, "arq": arq}[framework](
        kind, count, rate)
