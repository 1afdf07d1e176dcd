"""Status, progress and results of tracked jobs (``status=True``), in resque-status's layout.

Jobs come from tests/support/apps/taskapp.py; ``taskapp.steps`` waits at a gate after its
first step, so a test can look at a job while it runs. Workers are real processes unless a
test says otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import redis
import taskapp
from click.testing import CliRunner
from support.workerkit import TESTS, Workers, wait_for

import resque
from resque import JobStatus, Resque, durations, layout, status
from resque.cli import main as cli_main
from resque.handles import Job, JobCancelled, JobFailed, NotTracked
from resque.testing import TestResque


@pytest.fixture
def client(r: redis.Redis) -> Resque:
    return Resque(r)


def record(r: redis.Redis, job_id: str) -> dict[str, Any]:
    raw = r.get(f"resque:status:{job_id}")
    assert raw is not None, f"no status record for {job_id}"
    found: dict[str, Any] = json.loads(raw)
    return found


def start(workers: Workers, *args: str, **env: str) -> Any:
    return workers.start("tasks", "--app", "taskapp", *args,
                         env={"TASKAPP_REDIS": workers.redis_url, **env})


def tracked(client: Resque, count: int = 2, tag: str = "steps") -> Job[int]:
    handle = taskapp.steps.options(client=client).enqueue(count, tag)
    assert handle is not None
    return handle


def open_gate(r: redis.Redis, tag: str = "steps") -> None:
    r.rpush(f"taskapp:gate:{tag}", "go")


# --- the record -----------------------------------------------------------------------------------


def test_enqueueing_a_tracked_job_writes_a_queued_record_in_resque_statuss_layout(
    client: Resque, r: redis.Redis
) -> None:
    before = time.time()
    handle = tracked(client)
    saved = record(r, str(handle.id))
    assert {key: saved[key] for key in ("uuid", "status", "name", "queue", "payload")} == {
        "uuid": handle.id, "status": "queued", "name": "taskapp.steps", "queue": "tasks",
        "payload": handle.payload}
    assert before - 1 <= saved["time"] <= time.time()
    assert r.zrange("resque:_statuses", 0, -1) == [str(handle.id).encode()]
    assert status.PENDING_TTL - 5 < r.ttl(f"resque:status:{handle.id}") <= status.PENDING_TTL
    # the payload names how long to keep the record once the job ends
    assert json.loads(r.lindex("resque:queue:tasks", 0) or b"")["track"] == 600
    assert handle.status() is JobStatus.QUEUED


def test_a_job_runs_through_started_progress_and_finished_with_its_result(
    client: Resque, r: redis.Redis, workers: Workers
) -> None:
    handle = tracked(client, count=3)
    worker = start(workers)
    wait_for(lambda: handle.status() is JobStatus.STARTED, what="the job to start")
    running = handle.info()
    assert running is not None
    assert (running.worker, running.num, running.total, running.message) == (
        worker.id, 1, 3, "step 1 of 3")
    assert running.progress == pytest.approx(1 / 3)
    assert record(r, str(handle.id))["status"] == "working"
    open_gate(r)
    assert handle.result(timeout=15) == 30
    done = handle.info()
    assert done is not None and done.status is JobStatus.FINISHED
    assert (done.num, done.total, done.result) == (3, 3, 30)
    assert done.enqueued_at and done.started_at and done.ended_at
    assert done.enqueued_at <= done.started_at <= done.ended_at
    assert record(r, str(handle.id))["status"] == "completed"
    assert 590 < r.ttl(f"resque:status:{handle.id}") <= 600


@pytest.mark.parametrize("mode", [["--no-fork"], ["-c", "2"]])
def test_in_process_and_threaded_workers_track_too(
    client: Resque, r: redis.Redis, workers: Workers, mode: list[str]
) -> None:
    handle = tracked(client, count=2)
    start(workers, *mode)
    wait_for(lambda: handle.status() is JobStatus.STARTED, what="the job to start")
    open_gate(r)
    assert handle.result(timeout=15) == 20


def test_result_waits_on_pub_sub_without_polling(
    r: redis.Redis, redis_url: str, workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    waiting = Resque(redis_url)
    handle = tracked(waiting, count=1)  # after the gate, one status change: finished
    start(workers)
    wait_for(lambda: handle.status() is JobStatus.STARTED, what="the job to start")
    sent: list[str] = []
    real = waiting.redis.execute_command

    def counted(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]))
        return real(*args, **options)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(waiting.redis, "execute_command", counted)
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(handle.result(timeout=20)))
    waiter.start()
    wait_for(lambda: sent, what="the waiter's first read")
    time.sleep(1.0)  # a poller would have read the record many times by now
    sent_while_waiting = list(sent)
    open_gate(r)
    waiter.join(20)
    assert got == [10]
    assert sent_while_waiting == ["GET"]  # one read, then it blocks on its subscription
    assert sent == ["GET", "GET"]  # and one more when told it finished


def test_result_times_out_while_the_job_runs(client: Resque, r: redis.Redis,
                                             workers: Workers) -> None:
    handle = tracked(client)
    start(workers)
    wait_for(lambda: handle.status() is JobStatus.STARTED, what="the job to start")
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="did not end within 0.5 s"):
        handle.result(timeout=0.5)
    assert 0.45 < time.monotonic() - started < 3
    open_gate(r)


def test_a_failed_job_says_why_and_result_raises(client: Resque, r: redis.Redis,
                                                 workers: Workers) -> None:
    handle = taskapp.boom.options(client=client, status=True).enqueue("bad input")
    assert handle is not None
    workers.run("tasks", "--app", "taskapp", env={"TASKAPP_REDIS": workers.redis_url})
    with pytest.raises(JobFailed, match="ValueError: bad input"):
        handle.result(timeout=5)
    info = handle.info()
    assert info is not None and info.status is JobStatus.FAILED
    assert info.error == "ValueError: bad input"
    assert r.llen("resque:failed") == 1


def test_a_job_the_worker_cannot_find_is_failed_in_its_record(client: Resque, r: redis.Redis,
                                                              workers: Workers) -> None:
    handle = client.enqueue_call("taskapp.nothing_here", [1], {}, queue="tasks", status=True)
    assert handle is not None
    workers.run("tasks", "--app", "taskapp", env={"TASKAPP_REDIS": workers.redis_url})
    info = handle.info()
    assert info is not None and info.status is JobStatus.FAILED
    assert info.error is not None and info.error.startswith("Resque::JobNotFound:")


def test_a_value_json_cannot_carry_is_not_kept_but_the_job_finishes(
    resque_client: TestResque, taskapp_redis: str
) -> None:
    handle = taskapp.unjson.options(status=True).enqueue()
    assert resque_client.drain().processed == 1
    assert handle is not None
    info = handle.info()
    assert info is not None and info.status is JobStatus.FINISHED
    assert info.result is None
    assert info.message is not None and "not kept: it is not JSON" in info.message


def test_untracked_jobs_leave_no_record_and_refuse_status_questions(
    client: Resque, r: redis.Redis, taskapp_redis: str
) -> None:
    handle = client.enqueue(taskapp.echo, "plain")
    resque.Worker(["tasks"], resque=client, fork=False, burst=True).work()
    assert r.keys("resque:status:*") == [] and not r.exists("resque:_statuses")
    assert handle is not None
    with pytest.raises(NotTracked, match="status=True"):
        handle.status()


def test_progress_of_an_untracked_job_is_not_recorded(client: Resque, r: redis.Redis,
                                                      taskapp_redis: str) -> None:
    handle = taskapp.steps.options(client=client, status=False).enqueue(1, "quiet")
    open_gate(r, "quiet")
    resque.Worker(["tasks"], resque=client, fork=False, burst=True).work()
    assert handle is not None and handle.tracked is False
    assert r.keys("resque:status:*") == []
    assert [(e["tag"], e["tracked"]) for e in taskapp.log(r)] == [("quiet", False)]


# --- cancel, fetch -----------------------------------------------------------------------------


def test_cancel_removes_exactly_that_queued_job_and_marks_it_cancelled(
    client: Resque, r: redis.Redis
) -> None:
    first, second = tracked(client), tracked(client)  # the same arguments: only ids differ
    plain = client.enqueue(taskapp.steps, 2, "steps")
    assert first.cancel() is True
    assert r.lrange("resque:queue:tasks", 0, -1) == [
        second.payload.encode(), plain.payload.encode() if plain else b""]
    assert first.status() is JobStatus.CANCELLED
    assert record(r, str(first.id))["status"] == "killed"
    with pytest.raises(JobCancelled):
        first.result(timeout=1)
    assert first.cancel() is False
    assert second.status() is JobStatus.QUEUED


def test_cancel_of_a_started_job_does_nothing(client: Resque, r: redis.Redis,
                                              workers: Workers) -> None:
    handle = tracked(client)
    start(workers)
    wait_for(lambda: handle.status() is JobStatus.STARTED, what="the job to start")
    assert handle.cancel() is False
    assert handle.status() is JobStatus.STARTED
    open_gate(r)
    assert handle.result(timeout=15) == 20


def test_cancel_of_an_untracked_job_removes_it_by_its_bytes(client: Resque,
                                                            r: redis.Redis) -> None:
    keep = client.enqueue(taskapp.echo, "same")
    drop = client.enqueue(taskapp.echo, "same")
    assert drop is not None and keep is not None
    assert drop.cancel() is True
    assert r.lrange("resque:queue:tasks", 0, -1) == [keep.payload.encode()]


def test_cancel_of_a_delayed_tracked_job_removes_it_from_the_schedule(
    client: Resque, r: redis.Redis
) -> None:
    handle = taskapp.steps.options(client=client).enqueue_in(3600, 2)
    assert handle is not None and handle.due is not None
    assert record(r, str(handle.id))["due"] == handle.due
    assert client.delayed.count_all_scheduled_jobs() == 1
    assert handle.cancel() is True
    assert client.delayed.count_all_scheduled_jobs() == 0
    assert handle.status() is JobStatus.CANCELLED


def test_fetch_rebuilds_the_handle_in_another_process(client: Resque, r: redis.Redis,
                                                      redis_url: str) -> None:
    handle = tracked(client)
    code = ("import resque, sys; from resque.handles import Job; "
            f"job = Job.fetch({handle.id!r}, resque.Resque({redis_url!r})); "
            "print(job.class_name, job.queue, job.status().name, job.cancel())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=TESTS)
    assert done.stdout.split() == ["taskapp.steps", "tasks", "QUEUED", "True"], done.stderr
    assert r.llen("resque:queue:tasks") == 0
    assert handle.status() is JobStatus.CANCELLED


def test_fetch_of_an_unknown_id_is_none(client: Resque) -> None:
    assert Job.fetch("no-such-job", client) is None


# --- expiry ------------------------------------------------------------------------------------


def test_a_finished_record_expires_after_its_result_ttl(resque_client: TestResque,
                                                        taskapp_redis: str) -> None:
    handle = taskapp.echo.options(status=True, result_ttl=1).enqueue("short")
    resque_client.drain()
    assert handle is not None and handle.status() is JobStatus.FINISHED
    key = resque_client.keys.status(str(handle.id))
    wait_for(lambda: not resque_client.redis.exists(key), timeout=5, what="expiry")
    assert Job.fetch(str(handle.id), resque_client) is None
    with pytest.raises(LookupError, match="no status record"):
        handle.result(timeout=1)


def test_the_index_is_trimmed_by_age_and_by_size(client: Resque, r: redis.Redis,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    r.zadd("resque:_statuses", {"ancient": time.time() - status.MAX_TTL - 10})
    monkeypatch.setattr(status, "INDEX_LIMIT", 3)
    handles = [tracked(client) for _ in range(5)]
    assert r.zrange("resque:_statuses", 0, -1) == [str(h.id).encode() for h in handles[2:]]
    assert status.MAX_TTL - 5 < r.ttl("resque:_statuses") <= status.MAX_TTL


def test_a_result_ttl_beyond_thirty_days_is_refused(client: Resque) -> None:
    with pytest.raises(ValueError, match="result_ttl must be whole seconds"):
        taskapp.echo.options(client=client, status=True, result_ttl=40 * 86400).enqueue("x")


# --- a worker that stops or dies mid-job ------------------------------------------------------


def test_a_job_stopped_by_a_shutdown_is_queued_again(client: Resque, r: redis.Redis,
                                                     workers: Workers) -> None:
    handle = tracked(client)
    worker = start(workers, TERM_CHILD="1")
    wait_for(lambda: handle.status() is JobStatus.STARTED, what="the job to start")
    worker.signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    info = handle.info()
    assert info is not None and info.status is JobStatus.QUEUED
    assert info.message == f"requeued: {worker.id} stopped before it finished"
    assert r.lrange("resque:queue:tasks", 0, -1) == [handle.payload.encode()]


FAST_PRUNE = {"RESQUE_PRUNE_INTERVAL": "1", "RESQUE_HEARTBEAT_EXPIRY": "5"}


def test_a_killed_worker_s_job_is_queued_again_once_recovered(
    client: Resque, r: redis.Redis, workers: Workers
) -> None:
    handle = tracked(client)
    worker = start(workers, **FAST_PRUNE)
    wait_for(lambda: handle.status() is JobStatus.STARTED, what="the job to start")
    worker.kill()  # SIGKILL to the worker; its child dies with it
    assert handle.status() is JobStatus.STARTED  # nobody knows yet
    workers.start("other", "--app", "taskapp", env={"TASKAPP_REDIS": workers.redis_url,
                                                    **FAST_PRUNE})
    wait_for(lambda: handle.status() is JobStatus.QUEUED, what="the recovery")
    info = handle.info()
    assert info is not None
    assert info.message == f"requeued: worker {worker.id} stopped before it finished"
    assert r.lrange("resque:queue:tasks", 0, -1) == [handle.payload.encode()]


def test_a_job_that_keeps_killing_its_workers_is_failed_in_its_record(
    client: Resque, r: redis.Redis, workers: Workers
) -> None:
    handle = tracked(client)
    env = {"RESQUE_REQUEUE_LIMIT": "0", **FAST_PRUNE}
    worker = start(workers, **env)
    wait_for(lambda: handle.status() is JobStatus.STARTED, what="the job to start")
    worker.kill()
    workers.start("other", "--app", "taskapp", env={"TASKAPP_REDIS": workers.redis_url, **env})
    wait_for(lambda: handle.status() is JobStatus.FAILED, what="the recovery")
    info = handle.info()
    assert info is not None
    assert info.error == f"{layout.DIRTY_EXIT}: worker {worker.id} died while performing it"
    assert r.llen("resque:queue:tasks") == 0 and r.llen("resque:failed") == 1


def test_a_child_killed_mid_job_fails_the_record(client: Resque, r: redis.Redis,
                                                 workers: Workers) -> None:
    handle = tracked(client)
    worker = start(workers)
    wait_for(lambda: handle.status() is JobStatus.STARTED, what="the job to start")
    os.kill(worker.child_pid(), signal.SIGKILL)
    wait_for(lambda: handle.status() is JobStatus.FAILED, what="the failed status")
    info = handle.info()
    assert info is not None and info.error is not None
    assert info.error.startswith("Resque::DirtyExit: Child process received unhandled signal")


# --- the stop limit, threads that take work as they free up, job timing ----------------------


@pytest.mark.parametrize("mode", [[], ["--no-fork"]])
def test_a_tracked_job_the_stop_limit_fails_is_failed_in_its_record(
    client: Resque, r: redis.Redis, workers: Workers, mode: list[str]
) -> None:
    handle = tracked(client)
    env = {"TERM_CHILD": "1", "RESQUE_STOP_REQUEUE_LIMIT": "1"}
    for stop in (1, 2):
        worker = start(workers, *mode, **env)
        wait_for(lambda: handle.status() is JobStatus.STARTED, what=f"start {stop}")
        worker.signal(signal.SIGTERM)
        assert worker.wait(15) == 0
        if stop == 1:  # requeued: queued again
            assert handle.status() is JobStatus.QUEUED
            assert r.lrange("resque:queue:tasks", 0, -1) == [handle.payload.encode()]
    # the second stop is one too many: a failure, in the failed list and in the record
    info = handle.info()
    assert info is not None and info.status is JobStatus.FAILED
    assert info.error == (f"Resque::TermException: "
                          f"{layout.stopped_too_often_message(2, 1)}")
    with pytest.raises(JobFailed, match="TermException"):
        handle.result(timeout=1)
    assert r.llen("resque:queue:tasks") == 0 and r.llen("resque:failed") == 1
    (failure,) = [json.loads(raw) for raw in r.lrange("resque:failed", 0, -1)]
    assert failure["payload"][layout.JOB_ID] == handle.id
    assert f"job taskapp.steps (id {handle.id}) from tasks: failed in" in worker.output()


def test_a_threaded_worker_tracks_and_times_jobs_that_end_in_any_order(
    client: Resque, r: redis.Redis, workers: Workers
) -> None:
    slow = tracked(client, tag="slow")  # reserved first, ends last
    quick = taskapp.echo.options(client=client, status=True).enqueue("quick")
    bad = taskapp.boom.options(client=client, status=True).enqueue("bad input")
    assert quick is not None and bad is not None
    worker = start(workers, "-c", "3", "--job-metrics")
    wait_for(lambda: quick.status() is JobStatus.FINISHED and bad.status() is JobStatus.FAILED,
             what="the quick jobs to end while the slow one runs")
    assert slow.status() is JobStatus.STARTED
    # each acknowledged as it ended (the record is written first, then the step runs)
    wait_for(lambda: r.llen(f"resque:inflight:{worker.id}") == 1, what="the acknowledgements")
    assert slow.status() is JobStatus.STARTED
    bad_info = bad.info()
    assert bad_info is not None and bad_info.error == "ValueError: bad input"
    open_gate(r, "slow")
    assert slow.result(timeout=15) == 20
    assert quick.result(timeout=1)["tag"] == "quick"
    worker.signal(signal.SIGQUIT)
    assert worker.wait(15) == 0  # a last flush of the job timings on the way out
    timed = {series.class_name: series for series in durations.read_durations(r, client.keys)}
    assert {name: (series.count, series.failed) for name, series in timed.items()} == {
        "taskapp.steps": (1, 0), "taskapp.echo": (1, 0), "taskapp.boom": (1, 1)}
    assert timed["taskapp.steps"].sum_seconds > timed["taskapp.echo"].sum_seconds


def test_a_tracked_job_a_threaded_worker_left_in_flight_is_queued_again_once_recovered(
    client: Resque, r: redis.Redis, workers: Workers, redis_url: str
) -> None:
    handle = tracked(client, tag="left")
    worker = start(workers, "-c", "2", RESQUE_TERM_TIMEOUT="0.2")
    wait_for(lambda: handle.status() is JobStatus.STARTED, what="the job to start")
    worker.signal(signal.SIGTERM)
    assert worker.wait(15) == 1  # the grace period ran out: the job is left in flight
    assert handle.status() is JobStatus.STARTED  # nobody knows yet
    result = CliRunner().invoke(cli_main, ["recover", worker.id, "--redis", redis_url])
    assert result.exit_code == 0, result.output
    info = handle.info()
    assert info is not None and info.status is JobStatus.QUEUED
    assert info.message == f"requeued: worker {worker.id} stopped before it finished"
    assert r.lrange("resque:queue:tasks", 0, -1) == [handle.payload.encode()]


# --- what an untracked job costs -------------------------------------------------------------


def commands_to_run(redis_url: str, jobs: int, status: bool,
                    monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The commands a burst in-process worker sends to perform ``jobs`` echo jobs, one per
    step (``max_batch=1``): every command its connection executes, pipelines included."""
    client = Resque(redis_url)
    for n in range(jobs):
        taskapp.echo.options(client=client, status=status).enqueue(f"job {n}")
    sent: list[str] = []
    real_execute = client.redis.execute_command

    def counted(*args: Any, **kw: Any) -> Any:
        sent.append(str(args[0]).upper())
        return real_execute(*args, **kw)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(client.redis, "execute_command", counted)
    resque.Worker(["tasks"], resque=client, fork=False, burst=True, max_batch=1).work()
    monkeypatch.undo()
    return sent


def one_and_six(r: redis.Redis, redis_url: str, status: bool,
                monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[str]]:
    counts = []
    for jobs in (1, 1, 6):  # the first run loads the scripts into the server
        r.flushall()
        monkeypatch.setenv("TASKAPP_REDIS", redis_url)
        counts.append(commands_to_run(redis_url, jobs, status, monkeypatch))
    return counts[1], counts[2]


def test_an_untracked_job_costs_one_round_trip_in_the_worker(
    r: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, six = one_and_six(r, redis_url, False, monkeypatch)
    # five more jobs, five more steps: one EVALSHA of the step script each, nothing else
    assert len(six) - len(one) == 5
    assert six.count("EVALSHA") - one.count("EVALSHA") == 5
    assert r.keys("resque:status:*") == []


def test_a_tracked_job_costs_two_more_round_trips_started_and_finished(
    r: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, six = one_and_six(r, redis_url, True, monkeypatch)
    assert len(six) - len(one) == 5 * 3  # the step, the started record, the finished record
