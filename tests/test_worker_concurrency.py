"""``resque work -c N``: N jobs at once in one process, on threads; ``async def`` jobs on a
shared event loop. The worker still appears to Ruby as one worker with one pid."""

from __future__ import annotations

import time

import pytest
import redis
from support.workerkit import Workers, failures, notes, push

from resque import Resque


@pytest.mark.parametrize("job", ["Nap", "AsyncNap"])
def test_four_threads_wait_on_io_at_once(r: redis.Redis, workers: Workers, job: str) -> None:
    client = Resque(r)
    for i in range(8):
        client.enqueue_to("low", job, 0.5, f"j{i}")
    started = time.monotonic()
    workers.run("low", "-c", "4", timeout=30)
    elapsed = time.monotonic() - started
    assert sorted(notes(r)) == sorted(
        f"{'nap' if job == 'Nap' else 'async'}:j{i}" for i in range(8)
    )
    assert elapsed < 3.5  # 8 jobs of 0.5 s one at a time would take 4 s plus start-up
    assert r.get("resque:stat:processed") == b"8"
    assert failures(r) == []


def test_a_concurrent_worker_counts_failures_and_registers_once(
    r: redis.Redis, workers: Workers
) -> None:
    for i in range(6):
        push(r, "low", "Fail" if i % 2 else "Record", f"j{i}")
    worker = workers.run("low", "-c", "3")
    assert r.get("resque:stat:processed") == b"6"
    assert r.get("resque:stat:failed") == b"3"
    assert len(failures(r)) == 3
    assert f"worker {worker.id} started (no fork)" in worker.output()


def test_an_async_job_runs_in_an_ordinary_worker_too(r: redis.Redis, workers: Workers) -> None:
    client = Resque(r)
    client.enqueue_to("low", "AsyncNap", 0.01, "in-process")
    workers.run("low", "--no-fork")
    client.enqueue_to("low", "AsyncNap", 0.01, "forked")
    workers.run("low")  # fork mode: the child runs it on a loop of its own
    assert notes(r) == ["async:in-process", "async:forked"]
