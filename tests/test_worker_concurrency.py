"""``resque work -c N``: N jobs at once in one process, on threads; ``async def`` jobs on a
shared event loop. The worker still appears to Ruby as one worker with one pid."""

from __future__ import annotations

import json
import signal
import time

import pytest
import redis
from support.workerkit import WorkerProcess, Workers, failures, notes, push, queued, wait_for

from resque import Resque, layout
from resque.durations import read_durations


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
    assert f"worker {worker.id} started: " in worker.output()
    assert ", 3 jobs at once on threads\n" in worker.output()


def test_an_async_job_runs_in_an_ordinary_worker_too(r: redis.Redis, workers: Workers) -> None:
    client = Resque(r)
    client.enqueue_to("low", "AsyncNap", 0.01, "in-process")
    workers.run("low", "--no-fork")
    client.enqueue_to("low", "AsyncNap", 0.01, "forked")
    workers.run("low")  # fork mode: the child runs it on a loop of its own
    assert notes(r) == ["async:in-process", "async:forked"]


# --- threads take work as they free up; each job is acknowledged when it ends -----------------


def test_free_threads_take_new_jobs_while_a_slow_one_runs(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "low", "Sleep", 5, "slow")
    for i in range(20):
        push(r, "low", "Record", f"r{i}")
    workers.start("low", "-c", "4")
    wait_for(lambda: len(notes(r)) == 21, what="the quick jobs")  # start:slow + 20
    assert "end:slow" not in notes(r)
    wait_for(lambda: r.get("resque:stat:processed") == b"20", timeout=3,
             what="each quick job acknowledged when it ended")
    assert "end:slow" not in notes(r)


def test_a_concurrent_worker_sends_at_most_one_step_per_job(
    r: redis.Redis, workers: Workers
) -> None:
    for i in range(100):
        push(r, "low", "Record", f"r{i}")
    r.config_resetstat()
    workers.run("low", "-c", "4", interval=5)  # no poll while jobs run
    scripts = int(r.info("commandstats")["cmdstat_evalsha"]["calls"])
    assert r.get("resque:stat:processed") == b"100"
    # At most one step per job, plus the first (it acknowledges nothing) and the two
    # unregistering scripts, at start and at exit.
    assert scripts <= 100 + 1 + 2


def test_the_working_on_record_shows_the_oldest_running_job(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "low", "Sleep", 1, "first")
    push(r, "low", "Sleep", 30, "second")
    worker = workers.start("low", "-c", "2")
    wait_for(lambda: "start:second" in notes(r), what="both jobs to start")
    record = json.loads(r.get(f"resque:worker:{worker.id}") or b"{}")
    assert record["payload"] == {"class": "Sleep", "args": [1, "first"]}
    wait_for(lambda: "end:first" in notes(r), what="the first job to end")
    wait_for(lambda: json.loads(r.get(f"resque:worker:{worker.id}") or b"{}")["payload"]
             == {"class": "Sleep", "args": [30, "second"]}, what="the record to move on")
    assert [json.loads(e)[1] for e in r.lrange(f"resque:inflight:{worker.id}", 0, -1)] == [
        '{"class":"Sleep","args":[30,"second"]}']


# --- stopping: TERM waits term_timeout, a second TERM ends at once; jobs left in flight --------


def start_hung(r: redis.Redis, workers: Workers, *args: str, **env: str) -> WorkerProcess:
    """A ``-c 2`` worker with a job that will not end in time and one that ended."""
    push(r, "low", "Sleep", 30, "hung")
    push(r, "low", "Record", "quick")
    worker = workers.start("low", "-c", "2", *args, env=env)
    wait_for(lambda: "start:hung" in notes(r) and r.get("resque:stat:processed") == b"1",
             what="the hung job to start and the quick one to be acknowledged")
    return worker


def assert_left_in_flight(r: redis.Redis, worker: WorkerProcess) -> None:
    hung = layout.encode_job("Sleep", [30, "hung"])
    assert [json.loads(e)[1] for e in r.lrange(f"resque:inflight:{worker.id}", 0, -1)] == [hung]
    assert json.loads(r.get(f"resque:worker:{worker.id}") or b"{}")["payload"] == json.loads(hung)
    assert r.sismember("resque:workers", worker.id)
    assert queued(r, "low") == []


def test_term_gives_running_threads_the_term_timeout_then_ends_leaving_them_in_flight(
    r: redis.Redis, workers: Workers
) -> None:
    worker = start_hung(r, workers, RESQUE_TERM_TIMEOUT="1")
    sent = time.monotonic()
    worker.signal(signal.SIGTERM)
    time.sleep(0.5)
    assert worker.alive()
    assert worker.wait(5) == 1
    assert 1 <= time.monotonic() - sent < 3
    assert_left_in_flight(r, worker)
    assert "left in flight for recovery: job Sleep from low" in worker.output()


def test_a_second_term_ends_a_concurrent_worker_at_once(
    r: redis.Redis, workers: Workers
) -> None:
    worker = start_hung(r, workers, RESQUE_TERM_TIMEOUT="30")
    worker.signal(signal.SIGTERM)
    time.sleep(0.2)
    sent = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(5) == 1
    assert time.monotonic() - sent < 1
    assert_left_in_flight(r, worker)


def test_a_worker_that_leaves_jobs_in_flight_still_adds_the_timings_of_those_that_ended(
    r: redis.Redis, workers: Workers
) -> None:
    worker = start_hung(r, workers, "--job-metrics", RESQUE_TERM_TIMEOUT="0.2")
    worker.signal(signal.SIGTERM)
    assert worker.wait(5) == 1
    assert_left_in_flight(r, worker)
    (series,) = read_durations(r, Resque(r).keys)  # the hung job is timed by whoever reruns it
    assert (series.class_name, series.count, series.failed) == ("Record", 1, 0)


def test_quit_waits_for_running_threads_and_a_term_then_ends_the_wait(
    r: redis.Redis, workers: Workers
) -> None:
    worker = start_hung(r, workers, RESQUE_TERM_TIMEOUT="0.5")
    worker.signal(signal.SIGQUIT)
    time.sleep(1.5)
    assert worker.alive()
    worker.signal(signal.SIGTERM)
    assert worker.wait(5) == 1
    assert_left_in_flight(r, worker)


def test_jobs_left_in_flight_are_requeued_by_the_next_worker_on_the_host(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "low", "Sleep", 2, "hung")
    quick_pruning = {"RESQUE_PRUNE_INTERVAL": "0.2"}  # the prune lock's ttl too
    first = workers.start("low", "-c", "2", env={"RESQUE_TERM_TIMEOUT": "0.2", **quick_pruning})
    wait_for(lambda: "start:hung" in notes(r), what="the job to start")
    first.signal(signal.SIGTERM)
    assert first.wait(5) == 1
    # Ruby's prune lock, last taken by the first worker, expires within a second.
    wait_for(lambda: not r.exists("resque:pruning_dead_workers_in_progress"), what="the lock")
    workers.run("low", "-c", "2", env=quick_pruning)  # prunes the dead worker, runs its job
    assert notes(r) == ["start:hung", "start:hung", "end:hung"]
    assert not r.exists(f"resque:inflight:{first.id}", f"resque:worker:{first.id}")


def test_a_burst_worker_with_interval_0_waits_for_its_threads_without_polling(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "low", "Sleep", 1, "slow")
    r.config_resetstat()
    workers.run("low", "-c", "2", interval=0)
    assert notes(r) == ["start:slow", "end:slow"]
    # Three steps, the unregistering scripts at start and exit, a metrics sample: a handful
    # of scripts in a second, not one per poll of a spinning loop (thousands).
    assert int(r.info("commandstats")["cmdstat_evalsha"]["calls"]) <= 10
