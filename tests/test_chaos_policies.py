"""Chaos with retries and timeouts on: real workers of every mode retry failing and timed-out
jobs while some of them are SIGKILLed and their connections dropped; every job reaches exactly
one end state.

Jobs (``ChaosRetry`` in chaosapp.py, ``Retry(max_attempts=3)``, retried at once) fail their
first 0 to 2 attempts, and end done, or fail every attempt (99), and end failed after
the last (a killed attempt counts as one). One job in five is ``ChaosSlow`` instead
(``timeout=0.3``), which runs past its timeout on its first 0 to 2 attempts, or on every one.
A ``-c N`` worker whose thread ran past a timeout exits on its own: it is replaced, as a killed
one is. Faults as in
tests/test_chaos.py (a random worker SIGKILLed and replaced, every connection dropped). At the
end:

* done and failed partition the jobs: each job is done, or failed after its last attempt (its
  one failure record says attempt 3 of 3), never both, never neither;
* the counts add up: ``processed - failed`` is the number of jobs done (one acknowledged
  success each), and the failed list holds one record per job meant to fail;
* nothing is left: no retry key, no failure copy, no index entry, no job in flight.

``RESQUE_CHAOS_RETRY_JOBS`` sets the size (600), ``RESQUE_CHAOS_SEED`` replays a run.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from chaosapp import DONE
from support.replies import texts
from support.workerkit import WorkerProcess, Workers, wait_for

from resque import Resque
from resque.embedded import EmbeddedRedis

pytestmark = pytest.mark.chaos

JOBS = int(os.environ.get("RESQUE_CHAOS_RETRY_JOBS", "600"))
SEED = int(os.environ.get("RESQUE_CHAOS_SEED", str(random.randrange(1 << 30))))
WORKER_ENV = {"RESQUE_PRUNE_INTERVAL": "1", "RESQUE_HEARTBEAT_INTERVAL": "1",
              "RESQUE_HEARTBEAT_EXPIRY": "15", "RESQUE_REQUEUE_LIMIT": "1000000"}
MODES = ("--fork", "--no-fork", "--concurrency=3")


@pytest.fixture
def queue_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "queue-redis", persistent=True).start()
    yield server
    server.stop()


def test_chaos_with_retries_every_job_ends_once_done_or_failed_after_its_last_attempt(
    r: redis.Redis, redis_url: str, queue_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    print(f"chaos seed {SEED} (RESQUE_CHAOS_SEED={SEED} replays the schedule)")
    fails = {f"r{i}": rng.choice([0, 0, 1, 2, 99]) for i in range(JOBS)}
    slow = {i for i in fails if rng.random() < 0.2}
    client = Resque(queue_redis.url)
    client.enqueue_many(
        "ChaosRetry", ([i, n, round(rng.uniform(0, 0.02), 4)] for i, n in fails.items()
                       if i not in slow), queue="chaos")
    client.enqueue_many("ChaosSlow", ([i, fails[i]] for i in sorted(slow)), queue="chaos")
    farm = Workers(queue_redis.url, tmp_path)
    farm_env = farm.env
    farm.env = lambda extra=None: {**farm_env(extra), "CHAOS_RESULTS": redis_url}  # type: ignore[method-assign]
    live: list[tuple[WorkerProcess, str]] = []
    queues = queue_redis.client()

    def start(mode: str) -> None:
        live.append((farm.start("chaos", mode, "--app", "chaosapp", env=WORKER_ENV,
                                interval=0.5), mode))

    def ended() -> int:
        for n, (worker, mode) in enumerate(live):  # recycled after a timeout on a thread
            if not worker.alive():
                live.pop(n)
                start(mode)
                break
        return r.scard(DONE) + queues.llen("resque:failed")

    events = ["kill"] * (2 * math.ceil(JOBS / 300)) + ["client_kill"] * math.ceil(JOBS / 300)
    rng.shuffle(events)
    kills = events.count("kill")
    try:
        for mode in MODES * 2:
            start(mode)
        for n, event in enumerate(events, 1):
            target = JOBS * n // (len(events) + 1)
            wait_for(lambda target=target: ended() >= target, timeout=120,  # type: ignore[misc]
                     what=f"{target} jobs ended before {event}")
            if event == "kill":
                worker, mode = live.pop(rng.randrange(len(live)))
                os.kill(worker.pid, signal.SIGKILL)
                worker.popen.wait(10)
                start(mode)
            else:
                queues.execute_command("CLIENT", "KILL", "TYPE", "normal")

        def settled() -> bool:
            try:
                busy = [k for k in texts(queues.smembers("resque:inflight"))
                        if queues.llen(f"resque:inflight:{k}")]
                return ended() == JOBS and queues.llen("resque:queue:chaos") == 0 and not busy
            except redis.ConnectionError:
                return False

        wait_for(settled, timeout=180, what="every job to end")
        done = set(texts(r.smembers(DONE)))
        records = [json.loads(raw) for raw in queues.lrange("resque:failed", 0, -1)]
        failed = [record["payload"]["args"][0] for record in records]
        print(f"\nchaos with retries: jobs={JOBS} slow={len(slow)} done={len(done)} "
              f"failed={len(failed)} recycled={len(farm.started) - len(MODES) * 2 - kills} "
              f"attempts={sum(int(v) for v in r.hvals('chaos:attempts'))} seed={SEED}")
        assert done == {i for i, n in fails.items() if n < 3}
        assert sorted(failed) == sorted(i for i, n in fails.items() if n >= 3)
        assert sorted(rec["payload"]["args"][0] for rec in records
                      if rec["exception"] == "Resque::JobTimeout") == sorted(
            i for i in slow if fails[i] >= 3)
        assert {(rec["attempt"], rec["max_attempts"]) for rec in records} <= {(3, 3), (4, 3),
                                                                              (5, 3)}
        processed = int(queues.get("resque:stat:processed") or 0)
        assert processed - int(queues.get("resque:stat:failed") or 0) == len(done)
        assert (queues.keys("resque:resque-retry:*"), queues.keys("resque:failure-*"),
                queues.zcard("resque:retries:due")) == ([], [], 0)
    finally:
        farm.cleanup()
