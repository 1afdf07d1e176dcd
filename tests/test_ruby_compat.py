"""Against the real Ruby resque 3.0: the same Redis, read and written by both.

Uses the real Ruby peer that ``tests/support/peers.py`` finds; skipped with the reason where it
is absent.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from support.peers import ruby_app_worker
from support.replies import as_bytes, as_text
from support.workerkit import wait_for

from resque import Resque

pytestmark = pytest.mark.ruby

HARNESS = Path(__file__).parent / "ruby" / "harness.rb"


def ruby(lib: str, url: str, *args: str, timeout: float = 30) -> str:
    done = subprocess.run(
        ["ruby", "-I", lib, str(HARNESS), url, *args],
        capture_output=True, text=True, timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_ruby_dequeues_a_python_job_by_its_exact_bytes(
    ruby_lib: str, r: redis.Redis, redis_url: str
) -> None:
    """With job ids off (``job_ids=False``), our payload is Ruby's bytes: Ruby's exact-string
    ``Resque.dequeue(Klass, *args)`` finds it."""
    Resque(r, job_ids=False).enqueue_to("high", "Hello", "a", 1, {"k": [2.5, None, True]},
                                        "ünï/code")
    assert ruby(ruby_lib, redis_url, "dequeue", "Hello",
                json.dumps(["a", 1, {"k": [2.5, None, True]}, "ünï/code"])).strip() == "1"
    assert r.llen("resque:queue:high") == 0


def test_ruby_dequeue_misses_a_python_job_that_carries_its_id(
    ruby_lib: str, r: redis.Redis, redis_url: str
) -> None:
    """With job ids on (the default), the payload's bytes differ from what Ruby rebuilds from
    class and args, so Ruby's ``Resque.dequeue(Klass, *args)`` removes nothing; our own
    ``dequeue`` (compared decoded) and a handle's ``cancel()`` remove it."""
    client = Resque(r)
    handle = client.enqueue_to("high", "Hello", "a", 1)
    assert handle is not None
    assert ruby(ruby_lib, redis_url, "dequeue", "Hello", json.dumps(["a", 1])).strip() == "0"
    assert r.lrange("resque:queue:high", 0, -1) == [handle.payload.encode()]
    assert client.dequeue("Hello", "a", 1, queue="high") == 1


def test_python_worker_performs_a_job_ruby_enqueued(
    ruby_lib: str, r: redis.Redis, redis_url: str, processes: list[subprocess.Popen[bytes]]
) -> None:
    ruby(ruby_lib, redis_url, "enqueue", "high", "Hello", '["from ruby", 7]')
    processes.append(ruby_app_worker(redis_url, "high", "--burst"))
    assert processes[-1].wait(30) == 0
    assert r.lrange("python-ran", 0, -1) == [b'["from ruby",7]']


def test_ruby_worker_performs_a_job_python_enqueued(
    ruby_lib: str, r: redis.Redis, redis_url: str
) -> None:
    Resque(r).enqueue_to("high", "Hello", "from python")
    ruby(ruby_lib, redis_url, "work", "high")
    ran = [json.loads(x) for x in r.lrange("resque:ruby-ran", 0, -1)]
    assert ran == [["Hello", ["from python"]]]


def test_ruby_worker_starting_on_the_same_host_leaves_a_live_python_worker_alone(
    ruby_lib: str, r: redis.Redis, redis_url: str, processes: list[subprocess.Popen[bytes]]
) -> None:
    worker = ruby_app_worker(redis_url, "high,low")
    processes.append(worker)
    wait_for(lambda: r.scard("resque:workers") == 1)
    (python_id,) = r.smembers("resque:workers")
    ruby(ruby_lib, redis_url, "work", "high,low")  # prunes same-host workers with our queues
    assert python_id in r.smembers("resque:workers")
    assert as_text(python_id) in ruby(ruby_lib, redis_url, "workers").split()


def test_job_of_a_killed_python_worker_pruned_by_ruby_is_failed_once_and_not_rerun(
    ruby_lib: str, r: redis.Redis, redis_url: str, processes: list[subprocess.Popen[bytes]]
) -> None:
    client = Resque(r)
    client.enqueue_to("slow", "Sleepy", 30)
    worker = ruby_app_worker(redis_url, "slow", "--no-fork")
    processes.append(worker)
    wait_for(lambda: r.exists(f"resque:worker:{_only_worker(r)}"))
    dead_id = _only_worker(r)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    r.delete("resque:pruning_dead_workers_in_progress")  # as if our worker's lock expired
    ruby(ruby_lib, redis_url, "work", "slow")  # Ruby's same-host prune finds the dead pid
    failures = json.loads(ruby(ruby_lib, redis_url, "failures"))
    assert [(f["exception"], f["worker"]) for f in failures] == [
        ("Resque::DirtyExit", dead_id)
    ]
    # Our pruner now finds only the orphaned in-flight list: it must not requeue the job.
    r.delete("resque:pruning_dead_workers_in_progress")  # as if Ruby's 60 s lock expired
    survivor = ruby_app_worker(redis_url, "other", env={"RESQUE_PRUNE_INTERVAL": "1"})
    processes.append(survivor)
    wait_for(lambda: not r.exists(f"resque:inflight:{dead_id}"), timeout=15)
    assert r.llen("resque:queue:slow") == 0
    assert r.llen("resque:failed") == 1


def test_ruby_reads_and_retries_a_python_failure(
    ruby_lib: str, r: redis.Redis, redis_url: str, processes: list[subprocess.Popen[bytes]]
) -> None:
    """Ruby reads the failed payload with our id in it; its retry rebuilds the job from class
    and args (``Job.create``), so the requeued job has no id: Ruby's exact payload."""
    handle = Resque(r).enqueue_to("high", "Broken", "x")
    assert handle is not None
    processes.append(ruby_app_worker(redis_url, "high", "--burst"))
    assert processes[-1].wait(30) == 0
    (failure,) = json.loads(ruby(ruby_lib, redis_url, "failures"))
    assert failure["exception"] == "RuntimeError"
    assert failure["error"] == "broken on purpose"
    assert failure["payload"] == {"class": "Broken", "args": ["x"], "id": handle.id}
    ruby(ruby_lib, redis_url, "retry", "0")
    assert r.lrange("resque:queue:high", 0, -1) == [b'{"class":"Broken","args":["x"]}']
    assert "retried_at" in json.loads(as_bytes(r.lindex("resque:failed", 0)))


def test_ruby_info_counts_python_workers_and_stats(
    ruby_lib: str, r: redis.Redis, redis_url: str, processes: list[subprocess.Popen[bytes]]
) -> None:
    client = Resque(r)
    for i in range(3):
        client.enqueue_to("high", "Hello", i)
    processes.append(ruby_app_worker(redis_url, "high", "--burst"))
    assert processes[-1].wait(30) == 0
    info = json.loads(ruby(ruby_lib, redis_url, "info"))
    ours = client.info()
    for field in ("pending", "processed", "queues", "workers", "working", "failed"):
        assert info[field] == ours[field], field


def _only_worker(r: redis.Redis) -> str:
    members = r.smembers("resque:workers")
    return as_text(members.pop()) if len(members) == 1 else "none"
