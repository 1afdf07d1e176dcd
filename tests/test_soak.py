"""Resource hygiene: a worker's memory and file descriptors stay flat over many jobs, and no
Redis key grows without bound.

A real worker process runs no-op jobs: first a warm-up (imports, caches, connections, the
first heartbeats and prunes), then the measured run. Its resident memory (``VmRSS``) and open
file descriptors (``/proc/<pid>/fd``), and those of its fork server in fork mode, are
compared after the warm-up and at the end. Redis keys are counted the same way, and at the
end the per-worker keys are gone, the chart data is trimmed and expires.

Sizes: ``RESQUE_SOAK_JOBS`` in-process jobs (100,000 by default: a few seconds) and
``RESQUE_SOAK_FORK_JOBS`` forked ones (2,000 by default). The long run is
``RESQUE_SOAK_JOBS=1000000 RESQUE_SOAK_FORK_JOBS=100000 pytest tests/test_soak.py -s``
(about five minutes forking, on two cores); the measurements are printed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from support.replies import bytes_list, texts
from support.workerkit import Workers, wait_for

from resque import Resque
from resque.metrics import TIERS

pytestmark = pytest.mark.slow

JOBS = int(os.environ.get("RESQUE_SOAK_JOBS", "100000"))
FORK_JOBS = int(os.environ.get("RESQUE_SOAK_FORK_JOBS", "2000"))
RSS_SLACK_KB = 3 * 1024  # allocator noise; a leak of even 200 bytes a job shows above it
ENV = {"RESQUE_HEARTBEAT_INTERVAL": "0.5", "RESQUE_PRUNE_INTERVAL": "1"}


@dataclass
class Usage:
    rss_kb: int
    fds: int

    @classmethod
    def of(cls, pids: list[int]) -> Usage:
        rss = fds = 0
        for pid in pids:
            status = Path(f"/proc/{pid}/status").read_text()
            rss += int(next(line.split()[1] for line in status.splitlines()
                            if line.startswith("VmRSS:")))
            fds += len(os.listdir(f"/proc/{pid}/fd"))
        return cls(rss, fds)


def long_lived(pid: int) -> list[int]:
    """The worker and its fork server (not the per-job children, which come and go)."""
    found = [pid]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            title = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"Fork server" in title:
            found.append(int(entry.name))
    return found


def namespace_keys(r: redis.Redis) -> set[bytes]:
    """Keys in the namespace, but the prune lock, which comes and goes every second."""
    return set(bytes_list(r.keys("resque:*"))) - {b"resque:pruning_dead_workers_in_progress"}


@pytest.mark.parametrize(("mode", "total"), [("--no-fork", JOBS), ("--fork", FORK_JOBS)])
def test_memory_descriptors_and_keys_stay_flat_over_a_long_run(
    r: redis.Redis, workers: Workers, mode: str, total: int
) -> None:
    client = Resque(r)
    warmup = max(200, total // 10)
    client.enqueue_many("Noop", ([i] for i in range(warmup)), queue="soak")
    worker = workers.start("soak", mode, "--app", "chaosapp", env=ENV, interval=1)

    def processed() -> int:
        return int(r.get("resque:stat:processed") or 0)

    wait_for(lambda: processed() == warmup, timeout=120, what="the warm-up")
    time.sleep(1.5)  # heartbeats, prunes and chart samples have all run
    before, keys_before = Usage.of(long_lived(worker.pid)), namespace_keys(r)
    started = time.monotonic()
    for start in range(warmup, total, 10_000):
        client.enqueue_many("Noop", ([i] for i in range(start, min(total, start + 10_000))),
                            queue="soak")
    wait_for(lambda: processed() == total, timeout=30 + total * 0.05, what="every job")
    seconds = time.monotonic() - started
    time.sleep(1.5)
    after, keys_after = Usage.of(long_lived(worker.pid)), namespace_keys(r)
    print(f"\nsoak {mode}: {total - warmup} jobs in {seconds:.1f}s; "
          f"rss {before.rss_kb} -> {after.rss_kb} kB; fds {before.fds} -> {after.fds}; "
          f"keys {len(keys_before)} -> {len(keys_after)}")

    assert after.rss_kb - before.rss_kb < RSS_SLACK_KB
    # The connection pool may open one more connection the first time the heartbeat thread
    # and the loop need one at the same moment (3 at most, with the subscription); a leak
    # would show as thousands.
    assert after.fds <= before.fds + 1
    assert keys_after == keys_before  # nothing new per job: no key grows in number
    assert not [k for k in r.keys("resque:inflight:*") if r.llen(k)]
    for tier in TIERS:  # chart data: trimmed to its retention, and expiring
        key = f"resque:metrics:{tier.name}"
        if r.exists(key):
            assert 0 < r.ttl(key) <= tier.retention + tier.bucket
            assert r.zcard(key) <= tier.retention // tier.bucket + 1

    worker.signal(15)
    assert worker.wait(20) == 0
    left = set(texts(r.keys("resque:*")))
    assert not [k for k in left if worker.id in k], left  # per-worker keys deleted
    assert left <= {"resque:stat:processed", "resque:queues",
                    "resque:pruning_dead_workers_in_progress",
                    *(f"resque:metrics:{tier.name}" for tier in TIERS)}, left
    assert r.ttl("resque:pruning_dead_workers_in_progress") in (-2, 0, 1)  # Ruby's lock, expiring
