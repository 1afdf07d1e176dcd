"""Chaos with policies on: unique jobs under a concurrency cap, deferred through the delayed
schedule by a scheduler process, while workers of every mode are SIGKILLed.

Every job (``policyapp.chaos``: ``Unique(until="end")`` and ``Limit(concurrency=3)``) is
enqueued twice; the second enqueue is refused as a duplicate. Workers forking, in process and
on threads take them; a scheduler queues the deferred ones again when due. At moments spread
over the run a random worker is SIGKILLed (frozen first, so that we know which jobs it had in
flight) and replaced. At the end:

* every job ran, and only jobs in flight at a kill ran twice;
* ``stat:processed`` equals the number of jobs: each acknowledged once, a deferral counts
  nothing;
* never more than 3 jobs ran at once (from the intervals the jobs recorded);
* no place and no lock is left held once the leases of the killed have run out.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import policyapp
import pytest
import redis
from support.replies import as_text, texts
from support.workerkit import WorkerProcess, Workers, wait_for

from resque import Resque

pytestmark = pytest.mark.chaos

JOBS = int(os.environ.get("RESQUE_POLICY_CHAOS_JOBS", "240"))
SEED = int(os.environ.get("RESQUE_CHAOS_SEED", str(random.randrange(1 << 30))))
MODES = ("--fork", "--no-fork", "--concurrency=3")
WORKER_ENV = {"RESQUE_PRUNE_INTERVAL": "1", "RESQUE_HEARTBEAT_INTERVAL": "1",
              "RESQUE_HEARTBEAT_EXPIRY": "15", "RESQUE_REQUEUE_LIMIT": "1000000"}
RUNNING = "resque:limits:policyapp.chaos:running"


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The most intervals that overlap at any instant."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def done_reaches(r: redis.Redis, count: int) -> Callable[[], bool]:
    return lambda: r.scard("chaos:done") >= count


def in_flight(q: redis.Redis, worker: WorkerProcess) -> set[str]:
    entries = texts(q.lrange(f"resque:inflight:{worker.id}", 0, -1))
    return {json.loads(json.loads(entry)[1])["args"][0] for entry in entries}


def test_policies_under_chaos_every_job_ends_once_and_no_place_or_lock_leaks(
        r: redis.Redis, redis_url: str, tmp_path: Path, taskapp_redis: str) -> None:
    rng = random.Random(SEED)
    print(f"policy chaos seed {SEED}")
    client = Resque(r)
    ids = [f"p{i}" for i in range(JOBS)]
    for job_id in ids:
        call = policyapp.limited_chaos.options(client=client)
        seconds = round(rng.uniform(0.0, 0.04), 3)
        first = call.enqueue(job_id, seconds)
        again = call.enqueue(job_id, seconds)
        assert first is not None and again is not None and again.duplicate
    farm = Workers(redis_url, tmp_path)
    env = {**WORKER_ENV, "CHAOS_RESULTS": redis_url}
    live = [(farm.start("chaos", mode, "--app", "policyapp", env=env, interval=0.5), mode)
            for mode in MODES * 2]
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "resque", "scheduler", "--redis", redis_url, "-i", "0.2"],
        env=farm.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    killed_in_flight: set[str] = set()
    try:
        for n in range(1, 5):
            wait_for(done_reaches(r, JOBS * n // 5), timeout=120,
                     what=f"{JOBS * n // 5} jobs done")
            victim, mode = live.pop(rng.randrange(len(live)))
            os.kill(victim.pid, signal.SIGSTOP)
            killed_in_flight |= in_flight(r, victim)
            victim.kill()
            live.append((farm.start("chaos", mode, "--app", "policyapp", env=env, interval=0.5),
                         mode))
        wait_for(lambda: r.scard("chaos:done") == JOBS, timeout=180,
                 what="every job to be done")
        wait_for(lambda: r.exists(RUNNING) == 0, timeout=10, what="every place given back")
        wait_for(lambda: not r.keys("resque:loners:*"), timeout=10, what="every lock gone")
        wait_for(lambda: not [k for k in texts(r.smembers("resque:inflight"))
                              if r.llen(f"resque:inflight:{k}")], what="nothing in flight")
    finally:
        scheduler.terminate()
        scheduler.wait(10)
        farm.cleanup()
    runs = {as_text(k): int(v) for k, v in r.hgetall("chaos:runs").items()}
    twice = {job for job, count in runs.items() if count > 1}
    spans = [(float(a), float(b)) for a, b in
             (json.loads(raw) for raw in texts(r.lrange("chaos:spans", 0, -1)))]
    print(f"\npolicy chaos: jobs={JOBS} kills=4 duplicates={sum(runs.values()) - JOBS} "
          f"most_at_once={most_at_once(spans)} (seed {SEED})")
    assert set(runs) == set(ids)
    assert twice <= killed_in_flight
    assert int(r.get("resque:stat:processed") or 0) == JOBS
    assert (r.llen("resque:failed"), r.llen("resque:queue:chaos")) == (0, 0)
    assert r.zcard("resque:delayed_queue_schedule") == 0
    assert most_at_once(spans) <= policyapp.CHAOS_CAP
