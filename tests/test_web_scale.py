"""The dashboard at scale: 100,000 failures, 1,000 queues, 500 workers and a queue of
1,000,000 jobs. Every page must render well under a second (paging everywhere, counts from
LLEN/SCARD). Filled with pipelined bulk writes in a few seconds; run with ``-s`` to see the
timings.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import pytest
import redis
from support.webkit import client, failure_record, post

from resque import Resque, layout
from resque.admin import Admin
from resque.metrics import record_sample

pytestmark = pytest.mark.slow

FAILURES = 100_000
QUEUES = 1_000
WORKERS = 500
BIG = 1_000_000
CHUNK = 10_000
LIMIT = 1.0  # seconds; the figures are typically a tenth of this


def fill(r: redis.Redis, keys: layout.Keys) -> None:
    template = failure_record("Scale::Fail", [0], queue="q0001", error="boom " * 8,
                              worker="scale-host:1:q0001", backtrace=["app/job.rb:1"] * 5)
    head, tail = template.split('"args":[0]')
    with r.pipeline(transaction=False) as pipe:
        for start in range(0, FAILURES, CHUNK):
            pipe.rpush(keys.failed, *(f'{head}"args":[{i}]{tail}'
                                      for i in range(start, start + CHUNK)))
        for start in range(0, BIG, CHUNK):
            pipe.rpush(keys.queue("big"), *(f'{{"class":"Big","args":[{i}]}}'
                                            for i in range(start, start + CHUNK)))
        pipe.sadd(keys.queues, "big", *(f"q{n:04d}" for n in range(QUEUES - 1)))
        for n in range(QUEUES - 1):
            pipe.rpush(keys.queue(f"q{n:04d}"), '{"class":"Small","args":[]}')
        beat = layout.heartbeat_at(time.time())
        for n in range(WORKERS):
            worker = f"scale-host-{n % 20}:{1000 + n}:q{n % 999:04d},big"
            pipe.sadd(keys.workers, worker)
            pipe.set(keys.worker_started(worker), layout.started_at())
            pipe.hset(keys.heartbeat, worker, beat)
            pipe.set(keys.worker_stat("processed", worker), n * 10)
            if n % 2:
                pipe.set(keys.worker(worker), layout.working_on(
                    f"q{n % 999:04d}", '{"class":"Small","args":[]}'))
        pipe.execute()


def timed(action: Callable[[], object], runs: int = 3) -> float:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def test_every_page_renders_well_under_a_second_at_scale(
    r: redis.Redis, resque: Resque, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.perf_counter()
    fill(r, resque.keys)
    filled = time.perf_counter() - started
    assert resque.size("big") == BIG and r.llen(resque.keys.failed) == FAILURES
    record_sample(r, resque.keys)
    web = client(resque)
    middle_failure = str(Admin(resque).failures.page(FAILURES // 2, 1).entries[0].id)
    worker = "scale-host-3:1003:q0003,big"
    pages = [
        "/", "/queues", "/queues?start=950", "/queues?sort=size", "/queues/big",
        "/queues/big?start=500000", "/queues/big?start=999980", "/working",
        "/working?start=200", "/workers", "/workers?start=450", "/workers?host=scale-host-3",
        "/workers/" + worker.replace(":", "%3A").replace(",", "%2C"), "/failed",
        "/failed?start=50000", "/failed?start=99980", "/failed?order=asc",
        "/failed?class=Scale::Fail", "/failed?class=Nothing::Matches",
        f"/failures/{middle_failure}", "/stats", "/stats/redis", "/stats/keys",
        "/stats/keys/failed", "/stats/keys/queue%3Abig?start=999980", "/stats.txt",
        "/live.json", "/charts/throughput.svg", "/charts/depth.svg", "/delayed", "/schedule",
    ]
    timings = {}
    for path in pages:
        response = web.get(path)
        assert response.status_code == 200, path
        timings[path] = timed(lambda path=path: web.get(path))  # type: ignore[misc]
    ids = iter(str(e.id) for e in Admin(resque).failures.page(40_000, 6).entries)
    timings["POST retry one failure"] = timed(
        lambda: post(web, "/actions/failed/retry", id=next(ids)))
    timings["POST remove one failure"] = timed(
        lambda: post(web, "/actions/failed/remove", id=next(ids)))
    r.delete(layout.metrics_key(resque.keys, "recent"), layout.metrics_key(resque.keys, "history"))
    timings["record_sample (Redis side)"] = timed(lambda: record_sample(r, resque.keys), runs=1)
    with capsys.disabled():
        print(f"\nfilled {FAILURES:,} failures, {QUEUES:,} queues, {WORKERS} workers and a "
              f"queue of {BIG:,} jobs in {filled:.1f}s; median of 3 renders:")
        for path, seconds in timings.items():
            print(f"  {seconds * 1000:7.1f} ms  {path}")
    slow = {path: round(s, 3) for path, s in timings.items() if s >= LIMIT}
    assert not slow, slow
