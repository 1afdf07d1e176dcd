"""Signals to a worker process (resque/signals.py, resque/worker.py), each sent to a real worker
on a Sleep job.

Where we differ from Ruby on purpose: a job stopped by a shutdown (``TERM``/``INT``) is
requeued at the head of its queue instead of recorded as a DirtyExit failure.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from support.workerkit import (
    TITLE_PREFIX,
    WorkerProcess,
    Workers,
    failures,
    notes,
    push,
    queued,
    wait_for,
)

from resque import Resque, layout
from resque.settings import WorkerSettings
from resque.store import digest

SLEEP_A = b'{"class":"Sleep","args":[30,"a"]}'
RECORD_B = b'{"class":"Record","args":["b"]}'


def start_on_sleep(r: redis.Redis, workers: Workers, *args: str, **env: str) -> WorkerProcess:
    """A worker on ``high`` busy with ``Sleep(30, "a")``, with ``Record("b")`` queued behind."""
    push(r, "high", "Sleep", 30, "a")
    push(r, "high", "Record", "b")
    worker = workers.start("high", *args, env=env)
    wait_for(lambda: "start:a" in notes(r), what="the job to start")
    return worker


def process_exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return ""


def assert_unregistered(r: redis.Redis, worker: WorkerProcess) -> None:
    assert not r.exists(
        "resque:workers",
        f"resque:worker:{worker.id}",
        f"resque:worker:{worker.id}:started",
        "resque:workers:heartbeat",
        "resque:inflight",
        f"resque:inflight:{worker.id}",
        f"resque:stat:processed:{worker.id}",
        f"resque:stat:failed:{worker.id}",
    )


# --- TERM and INT: stop, requeue the interrupted job ----------------------------------------


def test_term_kills_the_child_after_the_term_timeout_and_requeues_its_job_at_the_head(
    r: redis.Redis, workers: Workers
) -> None:
    worker = start_on_sleep(r, workers, RESQUE_TERM_TIMEOUT="1")
    child = worker.child_pid()
    sent = time.monotonic()
    worker.signal(signal.SIGTERM)
    time.sleep(0.5)
    assert process_exists(child), "the child was killed before the timeout"
    assert worker.wait(timeout=5) == 0
    assert time.monotonic() - sent >= 0.9
    assert not process_exists(child)
    assert queued(r, "high") == [SLEEP_A, RECORD_B]
    assert notes(r) == ["start:a"]
    assert failures(r) == []
    assert r.get("resque:stat:processed") is None
    assert_unregistered(r, worker)


def test_a_job_that_ends_within_the_term_timeout_finishes_and_is_not_requeued(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "high", "Sleep", 0.5, "a")
    push(r, "high", "Record", "b")
    worker = workers.start("high", env={"RESQUE_TERM_TIMEOUT": "10"})
    wait_for(lambda: "start:a" in notes(r), what="the job to start")
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=5) == 0
    assert notes(r) == ["start:a", "end:a"]
    assert queued(r, "high") == [RECORD_B]
    assert r.get("resque:stat:processed") == b"1"


def test_a_second_term_kills_the_child_at_once(r: redis.Redis, workers: Workers) -> None:
    worker = start_on_sleep(r, workers, RESQUE_TERM_TIMEOUT="30")
    child = worker.child_pid()
    worker.signal(signal.SIGTERM)
    time.sleep(0.3)
    assert worker.alive() and process_exists(child)
    sent = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=5) == 0
    assert time.monotonic() - sent < 3
    assert queued(r, "high") == [SLEEP_A, RECORD_B]
    assert failures(r) == []
    assert_unregistered(r, worker)


def test_term_with_term_child_sends_term_to_the_job_and_requeues_it(
    r: redis.Redis, workers: Workers
) -> None:
    worker = start_on_sleep(r, workers, TERM_CHILD="1", RESQUE_TERM_TIMEOUT="20")
    sent = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=5) == 0
    assert time.monotonic() - sent < 5  # the job stopped on TERM, long before the timeout
    assert notes(r) == ["start:a", "term:a"]
    assert queued(r, "high") == [SLEEP_A, RECORD_B]
    assert failures(r) == []
    assert_unregistered(r, worker)


def test_int_stops_the_worker_like_term(r: redis.Redis, workers: Workers) -> None:
    worker = start_on_sleep(r, workers, RESQUE_TERM_TIMEOUT="0.2")
    worker.signal(signal.SIGINT)
    assert worker.wait(timeout=5) == 0
    assert queued(r, "high") == [SLEEP_A, RECORD_B]
    assert failures(r) == []
    assert_unregistered(r, worker)


def test_graceful_term_makes_term_finish_the_job_like_quit(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "high", "Sleep", 0.5, "a")
    push(r, "high", "Record", "b")
    worker = workers.start("high", env={"GRACEFUL_TERM": "1", "RESQUE_TERM_TIMEOUT": "0.1"})
    wait_for(lambda: "start:a" in notes(r), what="the job to start")
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=5) == 0
    assert notes(r) == ["start:a", "end:a"]
    assert queued(r, "high") == [RECORD_B]


def test_term_stops_an_idle_worker_at_once(r: redis.Redis, workers: Workers) -> None:
    worker = workers.start("high", interval=5)
    worker.wait_title("Waiting for ")
    sent = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=5) == 0
    assert time.monotonic() - sent < 2
    assert_unregistered(r, worker)


def test_term_in_no_fork_mode_interrupts_the_job_after_the_timeout_and_requeues_it(
    r: redis.Redis, workers: Workers
) -> None:
    worker = start_on_sleep(r, workers, "--no-fork", RESQUE_TERM_TIMEOUT="0.5")
    sent = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=5) == 0
    assert time.monotonic() - sent >= 0.4
    assert notes(r) == ["start:a", "term:a"]
    assert queued(r, "high") == [SLEEP_A, RECORD_B]
    assert failures(r) == []
    assert_unregistered(r, worker)


def test_term_with_term_child_in_no_fork_mode_interrupts_the_job_at_once(
    r: redis.Redis, workers: Workers
) -> None:
    worker = start_on_sleep(r, workers, "--no-fork", TERM_CHILD="1", RESQUE_TERM_TIMEOUT="20")
    sent = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=5) == 0
    assert time.monotonic() - sent < 5
    assert notes(r) == ["start:a", "term:a"]
    assert queued(r, "high") == [SLEEP_A, RECORD_B]
    assert failures(r) == []


def test_term_in_no_fork_mode_lets_a_short_job_finish(r: redis.Redis, workers: Workers) -> None:
    push(r, "high", "Sleep", 0.5, "a")
    worker = workers.start("high", "--no-fork", env={"RESQUE_TERM_TIMEOUT": "10"})
    wait_for(lambda: "start:a" in notes(r), what="the job to start")
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=5) == 0
    assert notes(r) == ["start:a", "end:a"]
    assert r.get("resque:stat:processed") == b"1"


# --- QUIT: finish, then exit ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["--fork", "--no-fork"])
def test_quit_lets_the_current_job_finish_then_exits(
    r: redis.Redis, workers: Workers, mode: str
) -> None:
    push(r, "high", "Sleep", 0.5, "a")
    push(r, "high", "Record", "b")
    worker = workers.start("high", mode)
    wait_for(lambda: "start:a" in notes(r), what="the job to start")
    worker.signal(signal.SIGQUIT)
    assert worker.wait(timeout=5) == 0
    assert notes(r) == ["start:a", "end:a"]
    assert queued(r, "high") == [RECORD_B]
    assert failures(r) == []
    assert r.get("resque:stat:processed") == b"1"
    assert_unregistered(r, worker)


# --- USR1: kill the child, keep working -----------------------------------------------------


def test_usr1_kills_the_child_as_a_dirty_exit_and_the_worker_keeps_working(
    r: redis.Redis, workers: Workers
) -> None:
    worker = start_on_sleep(r, workers)
    child = worker.child_pid()
    worker.signal(signal.SIGUSR1)
    worker.wait_title("Waiting for ")  # the next job ran and was acknowledged
    assert notes(r) == ["start:a", "b"]
    [record] = failures(r)
    assert record["exception"] == "Resque::DirtyExit"
    assert record["error"] == (
        f"Child process received unhandled signal pid {child} SIGKILL (signal 9)"
    )
    assert record["payload"] == json.loads(SLEEP_A)
    assert record["worker"] == worker.id and record["queue"] == "high"
    assert record["backtrace"] == []
    assert r.get("resque:stat:failed") is None
    assert r.get("resque:stat:processed") == b"2"
    worker.signal(signal.SIGQUIT)
    assert worker.wait() == 0


def test_usr1_with_term_child_lets_the_job_see_term(r: redis.Redis, workers: Workers) -> None:
    worker = start_on_sleep(r, workers, TERM_CHILD="1", RESQUE_TERM_TIMEOUT="20")
    worker.signal(signal.SIGUSR1)
    wait_for(lambda: "b" in notes(r), what="the next job")
    assert notes(r) == ["start:a", "term:a", "b"]
    [record] = failures(r)
    assert (record["exception"], record["error"]) == ("Resque::TermException", "SIGTERM")
    assert worker.alive()


def test_usr1_in_no_fork_mode_does_nothing(r: redis.Redis, workers: Workers) -> None:
    push(r, "high", "Sleep", 0.5, "a")
    worker = workers.start("high", "--no-fork")
    wait_for(lambda: "start:a" in notes(r), what="the job to start")
    worker.signal(signal.SIGUSR1)
    wait_for(lambda: "end:a" in notes(r), what="the job to finish")
    assert failures(r) == []
    assert worker.alive()


# --- pausing --------------------------------------------------------------------------------


def test_usr2_pauses_taking_jobs_and_cont_resumes(
    r: redis.Redis, resque: Resque, workers: Workers
) -> None:
    worker = workers.start("high", interval=0.1)
    worker.wait_title("Waiting for ")
    worker.signal(signal.SIGUSR2)
    assert worker.wait_title("Paused") == f"{TITLE_PREFIX}Paused"
    resque.enqueue_to("high", "Record", "p")  # its wake-up must not bypass the pause
    time.sleep(0.5)
    assert notes(r) == []
    assert len(queued(r, "high")) == 1
    assert r.smembers("resque:workers") == {worker.id.encode()}
    worker.signal(signal.SIGCONT)
    wait_for(lambda: notes(r) == ["p"], what="the job after CONT")


def test_usr2_during_a_job_lets_it_finish_and_takes_no_other(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "high", "Sleep", 0.4, "a")
    push(r, "high", "Record", "b")
    worker = workers.start("high", interval=0.1)
    wait_for(lambda: "start:a" in notes(r), what="the job to start")
    worker.signal(signal.SIGUSR2)
    wait_for(lambda: "end:a" in notes(r), what="the job to finish")
    time.sleep(0.4)
    assert notes(r) == ["start:a", "end:a"]
    assert queued(r, "high") == [RECORD_B]
    assert r.get("resque:stat:processed") == b"1"  # acknowledged while paused
    assert not r.exists(f"resque:worker:{worker.id}", f"resque:inflight:{worker.id}")
    worker.signal(signal.SIGCONT)
    wait_for(lambda: "b" in notes(r), what="the job after CONT")


def test_pause_all_workers_key_pauses_the_worker_until_it_is_deleted(
    r: redis.Redis, workers: Workers
) -> None:
    r.set("resque:pause-all-workers", " TRUE ")  # Ruby: .to_s.strip.downcase == 'true'
    push(r, "high", "Record", "p")
    worker = workers.start("high", interval=0.1)
    worker.wait_title("Paused")
    time.sleep(0.4)
    assert notes(r) == []
    r.delete("resque:pause-all-workers")
    wait_for(lambda: notes(r) == ["p"], what="the job after the key is deleted")


def test_pause_all_workers_with_another_value_does_not_pause(
    r: redis.Redis, workers: Workers
) -> None:
    r.set("resque:pause-all-workers", "false")
    push(r, "high", "Record", "p")
    workers.run("high")
    assert notes(r) == ["p"]


def test_a_signalled_worker_never_leaves_its_child_running(
    r: redis.Redis, workers: Workers
) -> None:
    worker = start_on_sleep(r, workers)
    child = worker.child_pid()
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    wait_for(lambda: not process_exists(child), timeout=5, what="the orphaned child to die")


# --- a job that never ends within the grace period --------------------------------------------


def started(r: redis.Redis, tag: str, times: int) -> Callable[[], bool]:
    return lambda: notes(r).count(f"start:{tag}") == times


@pytest.mark.parametrize("mode", ["--fork", "--no-fork"])
def test_a_job_stopped_by_more_shutdowns_than_the_limit_fails_saying_why(
    r: redis.Redis, workers: Workers, mode: str
) -> None:
    push(r, "high", "Sleep", 30, "a")
    push(r, "high", "Record", "b")
    env = {"RESQUE_TERM_TIMEOUT": "0.2", "RESQUE_STOP_REQUEUE_LIMIT": "2"}
    for stop in range(1, 4):
        worker = workers.start("high", mode, env=env)
        wait_for(started(r, "a", stop), what=f"start {stop} of the job")
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
        if stop < 3:
            assert queued(r, "high") == [SLEEP_A, RECORD_B]
            assert r.hget("resque:stopped", digest(SLEEP_A)) == str(stop).encode()
    assert queued(r, "high") == [RECORD_B]
    (failure,) = failures(r)
    assert (failure["exception"], failure["error"], failure["payload"]) == (
        "Resque::TermException", layout.stopped_too_often_message(3, 2), json.loads(SLEEP_A))
    assert (r.get("resque:stat:processed"), r.get("resque:stat:failed")) == (b"1", b"1")
    assert r.hget("resque:stopped", digest(SLEEP_A)) is None


def test_the_stop_count_is_kept_for_a_week_after_the_last_stop(
    r: redis.Redis, workers: Workers
) -> None:
    worker = start_on_sleep(r, workers, RESQUE_TERM_TIMEOUT="0.2")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert 7 * 24 * 3600 - 60 < r.ttl("resque:stopped") <= 7 * 24 * 3600


def test_the_default_stop_limit_is_three() -> None:
    assert WorkerSettings().stop_requeue_limit == 3
