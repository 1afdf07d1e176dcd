"""In-process workers take jobs in batches: every guarantee holds as with one job per step.

Stats are exact, each job runs once, priority order is kept, and a worker killed or stopped
in the middle of a batch loses nothing.
"""

from __future__ import annotations

import signal
from collections import Counter

import pytest
import redis
from support.workerkit import Workers, failures, notes, wait_for

from resque import Resque

FAST_PRUNE = {"RESQUE_PRUNE_INTERVAL": "1"}


def test_a_large_batch_run_counts_every_job_once_and_in_order(
    r: redis.Redis, workers: Workers
) -> None:
    Resque(r).enqueue_many("Record", ([f"j{i}"] for i in range(3000)), queue="low")
    workers.run("low", "--no-fork", timeout=60)
    assert notes(r) == [f"j{i}" for i in range(3000)]
    assert r.get("resque:stat:processed") == b"3000"
    assert r.get("resque:stat:failed") is None
    assert not r.keys("resque:inflight:*")


def test_failures_inside_batches_are_counted_and_recorded_exactly(
    r: redis.Redis, workers: Workers
) -> None:
    client = Resque(r)
    for i in range(600):
        if i % 7 == 0:
            client.enqueue_to("low", "Fail", i)
        else:
            client.enqueue_to("low", "Record", f"j{i}")
    workers.run("low", "--no-fork", timeout=60)
    failed = [i for i in range(600) if i % 7 == 0]
    assert r.get("resque:stat:processed") == b"600"
    assert r.get("resque:stat:failed") == str(len(failed)).encode()
    assert [f["payload"]["args"] for f in failures(r)] == [[i] for i in failed]
    assert len(notes(r)) == 600 - len(failed)


def test_batches_keep_strict_priority_between_queues(r: redis.Redis, workers: Workers) -> None:
    client = Resque(r)
    client.enqueue_many("Record", ([f"low{i}"] for i in range(500)), queue="low")
    client.enqueue_many("Record", ([f"high{i}"] for i in range(500)), queue="high")
    workers.run("high,low", "--no-fork", timeout=60)
    ran = notes(r)
    assert ran == [f"high{i}" for i in range(500)] + [f"low{i}" for i in range(500)]


def test_a_worker_killed_mid_batch_loses_nothing(r: redis.Redis, workers: Workers) -> None:
    total = 400
    Resque(r).enqueue_many("Sleep", ([0.005, f"j{i}"] for i in range(total)), queue="low")
    victim = workers.start("low", "--no-fork", env=FAST_PRUNE)
    wait_for(lambda: sum(n.startswith("end:") for n in notes(r)) >= 60, timeout=20)
    in_flight = r.llen(f"resque:inflight:{victim.id}")
    victim.kill()
    workers.start("low", "--no-fork", env=FAST_PRUNE)  # prunes the victim within a second

    def all_ended() -> bool:
        return len({n for n in notes(r) if n.startswith("end:")}) == total

    wait_for(all_ended, timeout=30, what="every job to run")
    ends = Counter(n for n in notes(r) if n.startswith("end:"))
    assert set(ends) == {f"end:j{i}" for i in range(total)}  # every job ran
    duplicates = sum(count - 1 for count in ends.values())
    assert duplicates <= max(in_flight, 1) + 1  # only jobs that were in flight at the kill
    assert not r.exists(f"resque:inflight:{victim.id}")


@pytest.mark.parametrize("signum", [signal.SIGQUIT, signal.SIGTERM])
def test_a_worker_stopped_mid_batch_requeues_the_jobs_it_had_not_started(
    r: redis.Redis, workers: Workers, signum: int
) -> None:
    total = 400
    Resque(r).enqueue_many("Sleep", ([0.005, f"j{i}"] for i in range(total)), queue="low")
    worker = workers.start("low", "--no-fork")
    wait_for(lambda: sum(n.startswith("end:") for n in notes(r)) >= 60, timeout=20)
    worker.signal(signum)
    assert worker.wait(20) == 0
    processed = int(r.get("resque:stat:processed") or 0)
    assert processed + r.llen("resque:queue:low") == total
    assert not r.exists(f"resque:inflight:{worker.id}")
    workers.run("low", "--no-fork", timeout=60)
    ends = Counter(n for n in notes(r) if n.startswith("end:"))
    assert ends == {f"end:j{i}": 1 for i in range(total)}
    assert r.get("resque:stat:processed") == str(total).encode()
