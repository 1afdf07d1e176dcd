"""Dead workers and their jobs (resque/recovery.py, resque/lua/recover.lua).

A worker killed mid-job is found by a live worker's periodic prune: on the same host by its
pid, on any host by an expired heartbeat. Our workers' jobs go back to their queues exactly
once; a Ruby or Perl worker's job is recorded as failed, as Ruby does; a job a Ruby pruner
already failed is never requeued. Prune intervals are set to a second here so that each test
takes a few seconds.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time

import redis
from support.replies import texts
from support.workerkit import HOST, Workers, failures, notes, push, queued, wait_for

from resque import layout

FAST_PRUNE = {"RESQUE_PRUNE_INTERVAL": "1", "RESQUE_HEARTBEAT_EXPIRY": "5"}
RECORD_X = '{"class":"Record","args":["x"]}'


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def heartbeat_ago(r: redis.Redis, seconds: float) -> str:
    """A heartbeat value written ``seconds`` ago by Redis's clock, in Ruby's format."""
    now, _ = r.time()
    return layout.heartbeat_at(now - seconds)


def fake_worker(
    r: redis.Redis,
    worker: str,
    *,
    job: str | None = RECORD_X,
    queue: str = "high",
    beat_age: float | None = 600,
    registered: bool = True,
    inflight: list[str] | None = None,
) -> None:
    """Write a worker's keys as a crashed worker leaves them.

    ``inflight`` (payloads) makes it one of ours; without it, it looks like a Ruby worker.
    """
    if registered:
        r.sadd("resque:workers", worker)
        r.set(f"resque:worker:{worker}:started", layout.started_at())
    if job is not None and registered:
        r.set(f"resque:worker:{worker}", layout.working_on(queue, job))
    if beat_age is not None:
        r.hset("resque:workers:heartbeat", worker, heartbeat_ago(r, beat_age))
    if inflight:
        r.sadd("resque:inflight", worker)
        for payload in inflight:
            r.rpush(f"resque:inflight:{worker}", json.dumps([queue, payload]))
    r.sadd("resque:queues", queue)


def keys_of(r: redis.Redis, worker: str) -> list[str]:
    found = [key for key in texts(r.keys("resque:*")) if worker in key]
    if r.sismember("resque:workers", worker):
        found.append("workers member")
    if r.hexists("resque:workers:heartbeat", worker):
        found.append("heartbeat field")
    if r.sismember("resque:inflight", worker):
        found.append("inflight member")
    return found


# --- our workers: requeued exactly once -----------------------------------------------------


def test_a_sigkilled_workers_job_is_requeued_once_and_runs_again(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "high", "Sleep", 1, "a")
    first = workers.start("high", env=FAST_PRUNE)
    wait_for(lambda: "start:a" in notes(r), what="the job to start")
    first.kill()  # the worker and its child, without any chance to clean up
    assert r.get(f"resque:worker:{first.id}") is not None
    assert r.llen(f"resque:inflight:{first.id}") == 1

    second = workers.start("high", env=FAST_PRUNE)
    wait_for(lambda: "end:a" in notes(r), timeout=10, what="the job to run again")
    time.sleep(1.5)  # another prune round: nothing more may happen
    assert notes(r) == ["start:a", "start:a", "end:a"]
    assert queued(r, "high") == []
    assert failures(r) == []
    assert keys_of(r, first.id) == []
    assert r.get("resque:stat:processed") == b"1"
    assert "pruned dead worker" in second.output()


def test_two_live_workers_pruning_the_same_dead_worker_run_its_job_once(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "high", "Sleep", 0.5, "a")
    first = workers.start("high", env=FAST_PRUNE)
    wait_for(lambda: "start:a" in notes(r), what="the job to start")
    first.kill()
    workers.start("high", env=FAST_PRUNE)
    workers.start("high", env=FAST_PRUNE)
    wait_for(lambda: "end:a" in notes(r), timeout=10, what="the job to run again")
    time.sleep(1.5)
    assert notes(r) == ["start:a", "start:a", "end:a"]
    assert failures(r) == []


def test_a_worker_with_an_expired_heartbeat_on_another_host_has_its_job_requeued_once(
    r: redis.Redis, workers: Workers
) -> None:
    dead = "otherhost:4242:high"
    fake_worker(r, dead, beat_age=600, inflight=[RECORD_X])
    push(r, "high", "Record", "queued")
    worker = workers.start("high", env=FAST_PRUNE)  # prunes at startup, then takes jobs
    wait_for(lambda: len(notes(r)) == 2, timeout=10, what="both jobs to run")
    time.sleep(1.5)
    assert notes(r) == ["x", "queued"]  # requeued at the head of its queue
    assert failures(r) == []
    assert keys_of(r, dead) == []
    assert worker.alive()


def test_a_worker_on_another_host_with_a_fresh_heartbeat_is_left_alone(
    r: redis.Redis, workers: Workers
) -> None:
    alive = "otherhost:4242:high"
    fake_worker(r, alive, beat_age=0, inflight=[RECORD_X])
    worker = workers.start("high", env=FAST_PRUNE)
    worker.wait_title("Waiting for ")
    time.sleep(1.5)
    assert notes(r) == []
    assert r.sismember("resque:workers", alive)
    assert r.llen(f"resque:inflight:{alive}") == 1
    assert failures(r) == []


def test_an_in_flight_job_a_ruby_pruner_already_failed_is_not_requeued(
    r: redis.Redis, workers: Workers
) -> None:
    # A Ruby pruner unregistered our dead worker: it recorded the job in worker:<id> as
    # failed and deleted every Ruby key, leaving only our in-flight list.
    orphan = "otherhost:4343:high"
    fake_worker(r, orphan, registered=False, beat_age=None, inflight=[RECORD_X])
    workers.start("high", env={"RESQUE_PRUNE_INTERVAL": "1", "RESQUE_HEARTBEAT_EXPIRY": "1"})
    wait_for(lambda: keys_of(r, orphan) == [], timeout=10, what="the orphan list to go")
    time.sleep(0.5)
    assert notes(r) == []
    assert queued(r, "high") == []


def test_jobs_behind_the_one_a_ruby_pruner_failed_are_requeued(
    r: redis.Redis, workers: Workers
) -> None:
    orphan = "otherhost:4343:high"
    second = '{"class":"Record","args":["behind"]}'
    fake_worker(r, orphan, registered=False, beat_age=None, inflight=[RECORD_X, second])
    workers.start("high", env={"RESQUE_PRUNE_INTERVAL": "1", "RESQUE_HEARTBEAT_EXPIRY": "1"})
    wait_for(lambda: notes(r) == ["behind"], timeout=10, what="the job behind to run")
    assert keys_of(r, orphan) == []


def test_our_dead_worker_already_unregistered_on_this_host_is_not_requeued_either(
    r: redis.Redis, workers: Workers
) -> None:
    orphan = f"{HOST}:{dead_pid()}:high"
    fake_worker(r, orphan, registered=False, beat_age=None, inflight=[RECORD_X])
    workers.start("high", env=FAST_PRUNE)
    wait_for(lambda: keys_of(r, orphan) == [], timeout=10, what="the orphan list to go")
    time.sleep(0.5)
    assert notes(r) == []


# --- Ruby and Perl workers: failed, as Ruby does --------------------------------------------


def test_a_dead_ruby_worker_with_an_expired_heartbeat_gets_rubys_prune_failure(
    r: redis.Redis, workers: Workers
) -> None:
    dead = "otherhost:1:high,low"
    fake_worker(r, dead, job='{"class":"Hello","args":["a"]}', queue="low", beat_age=600)
    workers.start("high", env=FAST_PRUNE)
    wait_for(lambda: failures(r), timeout=10, what="the failure record")
    [record] = failures(r)
    assert list(record) == [
        "failed_at",
        "payload",
        "exception",
        "error",
        "backtrace",
        "worker",
        "queue",
    ]
    assert record["exception"] == "Resque::PruneDeadWorkerDirtyExit"
    assert record["error"] == (
        "Worker otherhost:1:high,low did not gracefully exit while processing Hello"
    )
    assert record["payload"] == {"class": "Hello", "args": ["a"]}
    assert record["backtrace"] == []
    assert record["worker"] == dead
    assert record["queue"] == "low"
    assert keys_of(r, dead) == []
    time.sleep(0.5)
    assert notes(r) == [] and queued(r, "low") == []


def test_a_dead_ruby_worker_on_this_host_gets_a_dirty_exit_failure(
    r: redis.Redis, workers: Workers
) -> None:
    dead = f"{HOST}:{dead_pid()}:high"
    fake_worker(r, dead, beat_age=0)
    workers.start("high", env=FAST_PRUNE)
    wait_for(lambda: failures(r), timeout=10, what="the failure record")
    [record] = failures(r)
    assert (record["exception"], record["error"]) == (
        "Resque::DirtyExit",
        "Job still being processed",
    )
    assert record["payload"] == json.loads(RECORD_X)
    assert record["worker"] == dead and record["queue"] == "high"
    assert keys_of(r, dead) == []
    assert notes(r) == []


def test_an_idle_dead_ruby_worker_is_unregistered_without_a_failure(
    r: redis.Redis, workers: Workers
) -> None:
    dead = "otherhost:1:high"
    fake_worker(r, dead, job=None, beat_age=600)
    workers.start("high", env=FAST_PRUNE)
    wait_for(lambda: keys_of(r, dead) == [], timeout=10, what="the dead worker to go")
    assert failures(r) == []


def test_a_worker_that_never_wrote_a_heartbeat_on_another_host_is_left_alone(
    r: redis.Redis, workers: Workers
) -> None:
    silent = "otherhost:1:high"
    fake_worker(r, silent, beat_age=None)
    worker = workers.start("high", env=FAST_PRUNE)
    worker.wait_title("Waiting for ")
    time.sleep(1.5)
    assert r.sismember("resque:workers", silent)
    assert failures(r) == []


def test_a_live_worker_on_this_host_is_never_pruned(r: redis.Redis, workers: Workers) -> None:
    push(r, "high", "Sleep", 2.5, "a")
    busy = workers.start("high", env=FAST_PRUNE)
    wait_for(lambda: "start:a" in notes(r), what="the job to start")
    workers.start("high", env=FAST_PRUNE)
    wait_for(lambda: "end:a" in notes(r), timeout=10, what="the job to finish")
    assert notes(r) == ["start:a", "end:a"]
    assert r.sismember("resque:workers", busy.id)
    assert failures(r) == []


# --- our own registration -------------------------------------------------------------------


def test_a_worker_unregistered_by_someone_else_registers_again_at_its_next_heartbeat(
    r: redis.Redis, workers: Workers
) -> None:
    worker = workers.start("high", env={"RESQUE_HEARTBEAT_INTERVAL": "0.2"})
    worker.wait_title("Waiting for ")
    r.srem("resque:workers", worker.id)
    r.delete(f"resque:worker:{worker.id}:started")
    wait_for(lambda: r.sismember("resque:workers", worker.id), what="registration again")
    assert r.exists(f"resque:worker:{worker.id}:started")
    assert r.sismember("resque:inflight", worker.id)


def test_the_heartbeat_is_refreshed_every_heartbeat_interval(
    r: redis.Redis, workers: Workers
) -> None:
    worker = workers.start("high", env={"RESQUE_HEARTBEAT_INTERVAL": "0.3"})
    worker.wait_title("Waiting for ")
    first = r.hget("resque:workers:heartbeat", worker.id)
    wait_for(
        lambda: r.hget("resque:workers:heartbeat", worker.id) != first,
        timeout=5,
        what="a newer heartbeat",
    )
    worker.signal(signal.SIGQUIT)
    assert worker.wait() == 0
    assert not r.hexists("resque:workers:heartbeat", worker.id)


def test_a_job_whose_workers_keep_dying_is_failed_after_the_requeue_limit(
    r: redis.Redis,
) -> None:
    from resque.recovery import Pruner
    from resque.store import WorkerStore

    pruner_store = WorkerStore(r, layout.Keys(), f"{HOST}:1:prune")
    pruner = Pruner(pruner_store, HOST, heartbeat_expiry=300, lock_ttl=1, requeue_limit=2)
    outcomes = []
    for attempt in range(1, 4):
        dead = f"otherhost:{4000 + attempt}:high"
        fake_worker(r, dead, beat_age=600, inflight=[RECORD_X])
        r.delete("resque:pruning_dead_workers_in_progress")
        assert pruner.prune() == [dead]
        outcomes.append((r.lpop("resque:queue:high"), len(failures(r))))
        assert keys_of(r, dead) == []
    assert outcomes == [(RECORD_X.encode(), 0), (RECORD_X.encode(), 0), (None, 1)]
    (failure,) = failures(r)
    assert failure["exception"] == "Resque::DirtyExit"
    assert "already been requeued 2 times" in failure["error"]
    assert failure["payload"] == json.loads(RECORD_X)
