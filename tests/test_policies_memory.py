"""Memory and lifetime limits (resque/policies/memory.py, --max-jobs): a worker ends after the
job that crossed its limit, in every mode, without losing or repeating a job, and `resque
pool` replaces it at once."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import policyapp
import pytest
import redis
from support.replies import texts
from support.workerkit import Workers, wait_for

from resque import Resque

MODES = {"fork": (), "in-process": ("--no-fork",), "threads": ("-c", "2")}


@pytest.fixture
def client(r: redis.Redis, taskapp_redis: str) -> Resque:
    return Resque(r)


def seen(r: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in r.lrange("taskapp:log", 0, -1)]


def tags(r: redis.Redis) -> list[str]:
    return [entry["tag"] for entry in seen(r)]


def queued_tags(r: redis.Redis) -> list[str]:
    return [json.loads(raw)["args"][0] for raw in texts(r.lrange("resque:queue:policies", 0, -1))]


def enqueue_plain(client: Resque, *names: str) -> None:
    for name in names:
        policyapp.plain.options(client=client).enqueue(name, 0)


def test_rss_reads_the_process_resident_memory() -> None:
    """In a fresh interpreter: this one may reuse pages it freed, already resident."""
    script = ("from resque.policies import memory; before = memory.rss(); "
              "kept = b'x' * (64 * memory.MB); print((memory.rss() - before) // memory.MB)")
    grown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True).stdout
    assert 60 <= int(grown) <= 70


def test_the_in_process_worker_ends_after_the_job_that_crossed_max_memory(
        client: Resque, r: redis.Redis, workers: Workers) -> None:
    enqueue_plain(client, "p1")
    policyapp.grow.options(client=client).enqueue("grow", 150)
    enqueue_plain(client, "p2", "p3")
    worker = workers.start("policies", "--app", "policyapp", "--no-fork", "--max-memory", "140")
    assert worker.wait() == 0
    assert (tags(r), queued_tags(r)) == (["p1", "grow"], ["p2", "p3"])  # reserved, unstarted
    assert (client.stat("processed"), r.llen("resque:failed")) == (2, 0)
    assert r.keys("resque:inflight:*") == []
    assert "over --max-memory 140 MB" in worker.output()


@pytest.mark.parametrize("mode", ["fork", "threads"])
def test_every_mode_ends_once_over_max_memory_with_every_job_accounted_for(
        client: Resque, r: redis.Redis, workers: Workers, mode: str) -> None:
    enqueue_plain(client, *(f"p{n}" for n in range(6)))
    worker = workers.start("policies", "--app", "policyapp", "--max-memory", "1", *MODES[mode])
    assert worker.wait() == 0
    ran, left = tags(r), queued_tags(r)
    assert sorted(ran + left) == [f"p{n}" for n in range(6)]  # none lost, none twice
    assert 1 <= len(ran) <= (2 if mode == "threads" else 1)
    assert (client.stat("processed"), r.llen("resque:failed")) == (len(ran), 0)


def test_an_asyncio_worker_ends_once_over_max_memory(
        client: Resque, r: redis.Redis, workers: Workers) -> None:
    for n in range(4):
        policyapp.async_plain.options(client=client).enqueue(f"a{n}", n)
    worker = workers.start("policies", "--app", "policyapp", "--max-memory", "1", "-c", "2")
    assert worker.wait() == 0
    ran, left = tags(r), queued_tags(r)
    assert sorted(ran + left) == [f"a{n}" for n in range(4)]
    assert client.stat("processed") == len(ran)


@pytest.mark.parametrize("mode", MODES)
def test_max_jobs_ends_every_mode_after_exactly_that_many(
        client: Resque, r: redis.Redis, workers: Workers, mode: str) -> None:
    enqueue_plain(client, *(f"p{n}" for n in range(5)))
    worker = workers.start("policies", "--app", "policyapp", "--max-jobs", "3", *MODES[mode])
    assert worker.wait() == 0
    assert (len(tags(r)), len(queued_tags(r)), client.stat("processed")) == (3, 2, 3)
    assert sorted(tags(r) + queued_tags(r)) == [f"p{n}" for n in range(5)]


# --- resque pool ------------------------------------------------------------------------------


@pytest.fixture
def pool(redis_url: str, tmp_path: Path, taskapp_redis: str) -> Iterator[subprocess.Popen[bytes]]:
    """``resque pool`` of one worker on ``policies``, recycled after every job."""
    env = Workers(redis_url, tmp_path).env({"RESQUE_MAX_JOBS": "1", "FORK_PER_JOB": "false"})
    output = tmp_path / "pool.log"
    with open(output, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "resque", "pool", "--app", "policyapp", "--redis", redis_url,
             "--interval", "0.2", "-w", "policies:1"], env=env, cwd=tmp_path,
            stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    yield process
    process.terminate()
    process.wait(20)


def test_the_pool_replaces_a_recycled_worker_at_once(
        client: Resque, r: redis.Redis, pool: subprocess.Popen[bytes]) -> None:
    for n in range(4):
        policyapp.rss.options(client=client).enqueue(f"r{n}", n)
    wait_for(lambda: len(seen(r)) == 4, timeout=30, what="four jobs, by four workers")
    assert tags(r) == ["r0", "r1", "r2", "r3"]
    workers = {entry["pid"] for entry in seen(r)}
    assert len(workers) == 4 and pool.poll() is None
    assert (r.llen("resque:queue:policies"), r.llen("resque:failed")) == (0, 0)
