"""A worker survives its Redis going away: it waits, logs once, and resumes without a restart.

The queue Redis here is a server of the test's own (restarted mid-run, append-only file on);
the jobs log to the session Redis, which stays up, so the log shows what really ran.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from support.faultkit import stop
from support.workerkit import Workers, notes, wait_for

from resque import Resque
from resque.embedded import EmbeddedRedis


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis", persistent=True).start()
    yield server
    server.stop()


@pytest.mark.parametrize("mode", ["--fork", "--no-fork"])
def test_a_redis_restart_mid_run_loses_no_job_and_runs_none_twice(
    r: redis.Redis, redis_url: str, own_redis: EmbeddedRedis, tmp_path: Path, mode: str
) -> None:
    client = Resque(own_redis.url)
    for i in range(6):
        client.enqueue_to("low", "Sleep", 0.3, f"job{i}")
    farm = Workers(own_redis.url, tmp_path)
    try:
        worker = farm.start("low", mode, env={"WORKERAPP_REDIS": redis_url})
        wait_for(lambda: "start:job1" in notes(r), timeout=10, what="job1 to start")
        stop(own_redis)  # Redis goes away while job1 runs (AOF is fsynced)
        wait_for(lambda: "end:job1" in notes(r), timeout=5, what="job1 to finish offline")
        own_redis.start()  # same port, same data directory
        wait_for(lambda: notes(r).count("end:job5") == 1, timeout=20, what="the last job")
        starts = Counter(n for n in notes(r) if n.startswith("start:"))
        assert starts == {f"start:job{i}": 1 for i in range(6)}
        back = own_redis.client()
        wait_for(lambda: back.get("resque:stat:processed") == b"6", timeout=5)
        assert not back.exists(f"resque:inflight:{worker.id}")
        assert worker.alive()  # still working, without a restart
        log = worker.output()
        assert log.count("Redis is unreachable") == 1, log
        assert log.count("Redis is back") == 1
    finally:
        farm.cleanup()
