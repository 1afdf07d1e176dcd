"""100,000 delayed jobs falling due at once: how long until they are all on their queue.

    python bench/scheduler_due.py [--jobs N] [--repeat K] [--batch-sizes 100,1000]

Starts its own redis-server (resque.embedded) on loopback, writes N delayed items due at the
same second in resque-scheduler's layout (``delayed:<ts>``, ``timestamps:<item>``, the zset;
not timed), then measures, repeated K times:

* move:    ``Delayed.move_due`` fenced by the master lock, the call the scheduler process
           makes each pass: one Lua round trip per batch (check lock, compare the list head,
           push, trim, read the next batch), Python decoding and re-encoding each item;
* process: a real ``python -m resque scheduler`` subprocess, from its start until the queue
           holds all N jobs (startup, lock and first poll included);
* floor:   RPUSH of the same N payloads, pipelined 1,000 per command: only writing the jobs,
           with no reading, no JSON work and no removal, a lower bound for any mover.

Each run is checked: the queue holds exactly N distinct jobs and no delayed key remains.
Target: N = 100,000 moved in under 5 s. Not a test; never run in CI.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

import redis

from resque import Resque, layout
from resque.embedded import EmbeddedRedis
from resque.scheduler.delayed import Delayed
from resque.scheduler.lock import MasterLock

QUEUE = "bench"
TARGET_SECONDS = 5.0

def load(client: redis.Redis, resque: Resque, jobs: int, when: int) -> None:
    """N items due at ``when``, written as resque-scheduler writes them (pipelined)."""
    client.flushdb()
    keys = resque.keys
    member = layout.delayed_member(when)
    with client.pipeline(transaction=False) as pipe:
        for n in range(jobs):
            item = layout.delayed_item("Bench::Job", [n, "user@example.com", {"plan": "pro"}],
                                       QUEUE)
            pipe.rpush(keys.delayed(when), item)
            pipe.sadd(keys.timestamps(item), member)
            if n % 10_000 == 9_999:
                pipe.execute()
        pipe.zadd(keys.delayed_schedule, {str(when): when})
        pipe.execute()


def check(client: redis.Redis, jobs: int, distinct: bool = True) -> None:
    assert client.llen(f"resque:queue:{QUEUE}") == jobs, "every job on the queue"
    assert not client.keys("resque:delayed*"), "no delayed key left"
    if distinct:
        raws = client.lrange(f"resque:queue:{QUEUE}", 0, -1)
        assert len({layout.decode(raw)["args"][0] for raw in raws}) == jobs, "each job once"


def run_move(client: redis.Redis, resque: Resque, jobs: int, batch_size: int) -> float:
    when = int(time.time()) - 1
    load(client, resque, jobs, when)
    lock = MasterLock(client, resque.keys)
    assert lock.acquire()
    mover = Delayed(resque)
    started = time.perf_counter()
    result = mover.move_due(when, batch_size=batch_size, fence=lock)
    elapsed = time.perf_counter() - started
    assert result.moved == jobs and not result.not_master, result
    lock.release()
    check(client, jobs)
    return elapsed


def run_process(client: redis.Redis, resque: Resque, url: str, jobs: int) -> float:
    load(client, resque, jobs, int(time.time()) - 1)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "resque", "scheduler", "--redis", url, "-i", "0.05"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ},
    )
    try:
        while client.llen(f"resque:queue:{QUEUE}") < jobs:
            if time.perf_counter() - started > 60:
                raise RuntimeError("the scheduler did not move the jobs within 60 s")
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(10)
    check(client, jobs)
    return elapsed


def run_floor(client: redis.Redis, resque: Resque, jobs: int) -> float:
    client.flushdb()
    payloads = [layout.encode_job("Bench::Job", [n, "user@example.com", {"plan": "pro"}])
                for n in range(jobs)]
    key = resque.keys.queue(QUEUE)
    started = time.perf_counter()
    with client.pipeline(transaction=False) as pipe:
        for first in range(0, jobs, 1000):
            pipe.rpush(key, *payloads[first : first + 1000])
        pipe.execute()
    elapsed = time.perf_counter() - started
    assert client.llen(key) == jobs
    return elapsed


def report(name: str, runs: list[float], jobs: int) -> None:
    best, median = min(runs), statistics.median(runs)
    verdict = "ok" if median < TARGET_SECONDS else "OVER TARGET"
    print(f"{name:<22} median {median:6.2f} s  best {best:6.2f} s  "
          f"{jobs / median:>9,.0f} jobs/s  [{verdict}]")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-sizes", default="100,1000",
                        help="comma-separated DELAYED_REQUEUE_BATCH_SIZE values to measure")
    options = parser.parse_args()
    sizes = [int(size) for size in options.batch_sizes.split(",")]
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} cpus; {options.jobs:,} jobs due at once, {options.repeat} runs each")
    with EmbeddedRedis() as server:
        client = server.client()
        resque = Resque(client)
        print(f"redis-server {client.info()['redis_version']} on loopback")
        results: dict[str, list[float]] = {}
        for _ in range(options.repeat):  # interleaved, so drift hits every method alike
            for size in sizes:
                key = f"move, batch {size}"
                results.setdefault(key, []).append(run_move(client, resque, options.jobs, size))
            results.setdefault("process (batch 100)", []).append(
                run_process(client, resque, server.url, options.jobs)
            )
            results.setdefault("floor (RPUSH only)", []).append(
                run_floor(client, resque, options.jobs)
            )
        for name, runs in results.items():
            report(name, runs, options.jobs)
        slowest = max(statistics.median(runs) for name, runs in results.items())
    return 0 if slowest < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
