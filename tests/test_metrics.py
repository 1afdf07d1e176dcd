"""resque.metrics: one sample per time bucket, whoever calls, cheaply, and only our keys."""

from __future__ import annotations

import subprocess
import sys
import threading

import redis
from support.webkit import add_worker

from resque import Resque, layout
from resque.metrics import HISTORY, RECENT, TOP_QUEUES, read_samples, record_sample, tier_for

T0 = 1_795_824_000  # a multiple of both buckets


def test_a_sample_holds_the_counters_and_gauges_as_ruby_reads_them(
    r: redis.Redis, resque: Resque
) -> None:
    keys = resque.keys
    resque.enqueue_many("Job", [[i] for i in range(5)], queue="high")
    resque.push("low", {"class": "Job", "args": []})
    r.sadd(keys.queues, "empty")
    r.set(keys.stat("processed"), 42)
    r.set(keys.stat("failed"), 3)
    r.rpush(keys.failed, "a", "b")
    r.rpush(keys.failure_list("low_failed"), "c")
    r.sadd(keys.failed_queues, "failed", "low_failed")  # "failed" listed too: counted once
    add_worker(r, keys, "h:1:high", job=("high", "Job", [1]))
    add_worker(r, keys, "h:2:high")

    assert record_sample(r, keys, now=T0) == 2
    (sample,) = read_samples(r, keys, T0 - 1)
    assert (sample.t, sample.processed, sample.failed, sample.failures) == (T0, 42, 3, 3)
    assert (sample.pending, sample.workers, sample.working) == (6, 2, 1)
    assert sample.queues == (("high", 5), ("low", 1))
    assert read_samples(r, keys, T0 - 1, HISTORY) == [sample]


def test_one_sample_per_bucket_however_many_processes_call(
    r: redis.Redis, resque: Resque, redis_url: str
) -> None:
    keys = resque.keys
    results: list[int] = []

    def call() -> None:
        with redis.Redis.from_url(redis_url) as own:  # a connection each, as processes have
            results.append(record_sample(own, keys, now=T0 + 3))

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0] * 15 + [2]
    assert record_sample(r, keys, now=T0 + RECENT.bucket - 1) == 0
    assert record_sample(r, keys, now=T0 + RECENT.bucket) == 1  # a new recent bucket only
    assert record_sample(r, keys, now=T0 + HISTORY.bucket) == 2
    assert r.zcard(layout.metrics_key(keys, RECENT.name)) == 3
    assert r.zcard(layout.metrics_key(keys, HISTORY.name)) == 2


def test_samples_expire_and_old_ones_are_trimmed(r: redis.Redis, resque: Resque) -> None:
    keys = resque.keys
    record_sample(r, keys, now=T0)
    record_sample(r, keys, now=T0 + RECENT.retention + RECENT.bucket)
    recent = layout.metrics_key(keys, RECENT.name)
    assert r.zcard(recent) == 1  # the first fell out of the window
    assert 0 < r.ttl(recent) <= RECENT.retention
    assert 0 < r.ttl(layout.metrics_key(keys, HISTORY.name)) <= HISTORY.retention


def test_without_now_redis_time_picks_the_bucket(r: redis.Redis, resque: Resque) -> None:
    assert record_sample(r, resque.keys) == 2
    seconds, _ = r.time()
    (sample,) = read_samples(r, resque.keys, 0)
    assert abs(sample.t - seconds) <= 1


def test_only_the_longest_queues_are_kept(r: redis.Redis, resque: Resque) -> None:
    for n in range(1, TOP_QUEUES + 6):
        resque.enqueue_many("Job", [[i] for i in range(n)], queue=f"q{n:02d}")
    record_sample(r, resque.keys, now=T0)
    (sample,) = read_samples(r, resque.keys, 0)
    assert len(sample.queues) == TOP_QUEUES
    assert sample.queues[0] == (f"q{TOP_QUEUES + 5:02d}", TOP_QUEUES + 5)
    assert sample.pending == sum(range(1, TOP_QUEUES + 6))


def test_a_namespace_keeps_samples_apart(r: redis.Redis) -> None:
    other = Resque(r, namespace="other")
    other.push("q", {"class": "Job", "args": []})
    record_sample(r, other.keys, now=T0)
    assert r.exists("other:metrics:recent") and not r.exists("resque:metrics:recent")
    assert read_samples(r, other.keys, 0)[0].pending == 1


def test_unreadable_members_are_skipped(r: redis.Redis, resque: Resque) -> None:
    r.zadd(layout.metrics_key(resque.keys, RECENT.name), {"not json": T0, '{"t":"x"}': T0})
    record_sample(r, resque.keys, now=T0 + RECENT.bucket)
    assert [s.t for s in read_samples(r, resque.keys, 0)] == [T0 + RECENT.bucket]


def test_tier_for_a_window() -> None:
    assert tier_for(3600) is RECENT
    assert tier_for(86400) is HISTORY


def test_the_worker_and_metrics_never_import_the_dashboard() -> None:
    code = ("import sys, resque.worker, resque.metrics, resque.cli; "
            "bad = [m for m in sys.modules if m.startswith(('resque.web', 'starlette', 'jinja2',"
            " 'uvicorn'))]; print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
