"""What a worker says (resque/logs.py, resque/worker.py): a banner at start, one line per job
with ``-v``, the same format from every process of a worker (its fork server's children
included), ``--log-format json`` for log shippers, and a line for each pause, resume, prune and
shutdown, naming the jobs it requeued.
"""

from __future__ import annotations

import json
import os
import re
import signal
from typing import Any

import pytest
import redis
from support.workerkit import HOST, WorkerProcess, Workers, notes, push, wait_for

from resque import Resque, __version__, layout

TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (resque[\w.]*)\[(\d+)\] "
                       r"([A-Z]+): (.*)$")
JSON_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
FORK_MODES = [pytest.param({}, id="fork-server"),
              pytest.param({"RESQUE_FORK_SERVER": "0"}, id="direct-fork")]


def json_lines(worker: WorkerProcess) -> list[dict[str, Any]]:
    """Every line of the worker's output, each parsed as one JSON object."""
    return [json.loads(line) for line in worker.output().splitlines()]


def push_with_id(r: redis.Redis, queue: str, job: str, job_id: str, *args: Any) -> None:
    """A payload carrying an ``id`` key after class and args, as job ids will write it."""
    r.sadd("resque:queues", queue)
    r.rpush(f"resque:queue:{queue}", layout.encode({"class": job, "args": list(args),
                                                    "id": job_id}))


def test_the_banner_names_version_redis_namespace_queues_mode_and_jobs(
    r: redis.Redis, workers: Workers, redis_url: str
) -> None:
    worker = workers.run("high,low", "--log-format", "json", verbose=False)
    banner, jobs = json_lines(worker)[:2]
    assert JSON_TIME.match(banner.pop("time"))
    assert banner == {
        "level": "INFO", "logger": "resque.worker", "pid": worker.pid,
        "message": f"resque {__version__} worker {worker.id} started: redis "
                   f"{redis_url}, namespace resque, queues high,low, fork per job, from a "
                   "fork server",
        "worker": worker.id, "version": __version__, "redis": redis_url, "namespace": "resque",
        "queues": ["high", "low"], "mode": "fork", "concurrency": 1,
    }
    assert (jobs["jobs"], jobs["allowed"]) == (sorted(jobs["jobs"]), ["workerapp"])
    assert {"Record", "Sleep", "Hooked"} <= set(jobs["jobs"])


def test_the_banner_shows_without_v_and_ok_jobs_only_with_it(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "low", "Record", "a")
    quiet = workers.run("low", "--no-fork", verbose=False)
    push(r, "low", "Record", "b")
    loud = workers.run("low", "--no-fork", "-c", "2")
    quiet_lines = [TEXT_LINE.match(line) for line in quiet.output().splitlines()]
    assert [m.group(4).split(":")[0] for m in quiet_lines if m] == [
        f"resque {__version__} worker {quiet.id.split(':')[0]}",
        "registered jobs",
        f"worker {quiet.id.split(':')[0]}",
    ]
    assert quiet_lines[-1] and quiet_lines[-1].group(4) == (
        f"worker {quiet.id} exited after 1 job(s)")
    assert "job Record from low: ok in " in loud.output()
    assert "started: redis redis://127.0.0.1:" in loud.output()
    assert ", in-process\n" in quiet.output()
    assert ", 2 jobs at once on threads\n" in loud.output()


@pytest.mark.parametrize("mode", ["--fork", "--no-fork", "-c"])
def test_each_job_gets_one_line_with_queue_class_id_duration_and_outcome(
    r: redis.Redis, workers: Workers, mode: str
) -> None:
    push_with_id(r, "low", "Record", "job-ok-1", "a")
    push_with_id(r, "low", "Fail", "job-bad-2", "b")
    args = ["-c", "2"] if mode == "-c" else [mode]
    worker = workers.run("low", *args, "--log-format", "json")
    lines = [line for line in json_lines(worker) if line["logger"] == "resque.worker.job"]
    for line in lines:
        assert JSON_TIME.match(line.pop("time"))
        assert 0 < line.pop("duration") < 5
    ok: dict[str, Any] = {"level": "INFO", "logger": "resque.worker.job", "pid": worker.pid,
          "message": line_message(lines, "Record"), "queue": "low", "class": "Record",
          "id": "job-ok-1", "outcome": "ok"}
    failed: dict[str, Any] = {"level": "WARNING", "logger": "resque.worker.job", "pid": worker.pid,
              "message": line_message(lines, "Fail"), "queue": "low", "class": "Fail",
              "id": "job-bad-2", "outcome": "failed", "error": "RuntimeError: boom"}
    assert sorted(lines, key=lambda line: line["class"]) == [failed, ok]
    assert re.fullmatch(r"job Record \(id job-ok-1\) from low: ok in [\d.]+ ms",
                        ok["message"])
    assert re.fullmatch(r"job Fail \(id job-bad-2\) from low: failed in [\d.]+ ms: "
                        r"RuntimeError: boom", failed["message"])


@pytest.mark.parametrize("mode", ["--fork", "--no-fork", "-c"])
def test_a_job_enqueued_from_python_is_named_by_its_id_in_its_line(
    r: redis.Redis, workers: Workers, mode: str
) -> None:
    client = Resque(r)
    ok, bad = client.enqueue_to("low", "Record", "a"), client.enqueue_to("low", "Fail", "b")
    assert ok is not None and bad is not None and ok.id and bad.id  # every enqueue has one
    args = ["-c", "2"] if mode == "-c" else [mode]
    worker = workers.run("low", *args)
    text = worker.output()
    assert re.search(rf"INFO: job Record \(id {re.escape(ok.id)}\) from low: ok in ", text)
    assert re.search(rf"WARNING: job Fail \(id {re.escape(bad.id)}\) from low: failed in "
                     r"[\d.]+ ms: RuntimeError: boom", text)
    third = client.enqueue_to("low", "Record", "c")
    assert third is not None
    (line,) = [line for line in json_lines(workers.run("low", *args, "--log-format", "json"))
               if line["logger"] == "resque.worker.job"]
    assert (line["class"], line["id"], line["outcome"]) == ("Record", third.id, "ok")


def line_message(lines: list[dict[str, Any]], class_name: str) -> str:
    return str(next(line["message"] for line in lines if line["class"] == class_name))


@pytest.mark.parametrize("env", FORK_MODES)
def test_a_forked_childs_lines_have_the_workers_format_and_name_the_job(
    r: redis.Redis, workers: Workers, env: dict[str, str]
) -> None:
    push_with_id(r, "low", "BadHook", "hook-7")
    worker = workers.run("low", "--log-format", "json", env=env)
    (hook,) = [line for line in json_lines(worker) if line["logger"] == "resque.jobs"]
    assert hook["pid"] != worker.pid  # written by the child
    assert (hook["level"], hook["queue"], hook["class"], hook["id"]) == (
        "ERROR", "low", "BadHook", "hook-7")
    assert hook["message"].startswith("on_failure hook ")
    assert hook["traceback"].endswith("ValueError: hook boom")
    (job,) = [line for line in json_lines(worker) if line["logger"] == "resque.worker.job"]
    assert (job["pid"], job["outcome"], job["error"]) == (
        worker.pid, "failed", "RuntimeError: job boom")


@pytest.mark.parametrize("env", FORK_MODES)
def test_a_forked_childs_text_lines_have_the_workers_format(
    r: redis.Redis, workers: Workers, env: dict[str, str]
) -> None:
    push(r, "low", "BadHook")
    worker = workers.run("low", env=env)
    parsed = [TEXT_LINE.match(line) for line in worker.output().splitlines()]
    hook = next(m for m in parsed if m and m.group(1) == "resque.jobs")
    assert int(hook.group(2)) != worker.pid
    assert hook.group(3) == "ERROR"
    assert hook.group(4).endswith(" failed [BadHook from low]")


def test_pause_resume_and_shutdown_say_what_they_did_and_name_the_requeued_job(
    r: redis.Redis, workers: Workers
) -> None:
    push_with_id(r, "high", "Sleep", "sleepy-1", 30, "a")
    worker = workers.start("high", env={"RESQUE_TERM_TIMEOUT": "0.5"}, verbose=False)
    wait_for(lambda: "start:a" in notes(r), what="the job to start")
    worker.signal(signal.SIGUSR2)
    wait_for(lambda: "pausing" in worker.output(), what="the pause line")
    worker.signal(signal.SIGCONT)
    wait_for(lambda: "resuming" in worker.output(), what="the resume line")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    said = [m.group(3, 4) for m in map(TEXT_LINE.match, worker.output().splitlines()) if m]
    running = " [Sleep (id sleepy-1) from high]"  # said while the job runs: it is named
    assert said[2:] == [
        ("INFO", "SIGUSR2: pausing: no new jobs until CONT; the running job goes on" + running),
        ("INFO", "SIGCONT: resuming: taking jobs again" + running),
        ("INFO", "SIGTERM: stopping: no new jobs; the running job gets 0.5 s to end, then is "
                 "stopped and goes back to the head of its queue" + running),
        ("WARNING", said[5][1]),
        ("INFO", f"worker {worker.id} exited after 1 job(s)"),
    ]
    assert re.fullmatch(r"job Sleep \(id sleepy-1\) from high: stopped by the shutdown after "
                        r"[\d.]+ m?s, requeued at the head of its queue", said[5][1])


def test_pause_all_workers_is_said_when_it_starts_and_ends(
    r: redis.Redis, workers: Workers
) -> None:
    worker = workers.start("low", verbose=False)
    wait_for(lambda: "registered jobs" in worker.output(), what="the banner")
    r.set("resque:pause-all-workers", "true")
    wait_for(lambda: "paused:" in worker.output(), what="the paused line")
    r.delete("resque:pause-all-workers")
    wait_for(lambda: "resumed:" in worker.output(), what="the resumed line")
    said = [m.group(4) for m in map(TEXT_LINE.match, worker.output().splitlines()) if m]
    assert said[2:] == [
        "paused: pause-all-workers is set (resque pause); no new jobs until it is cleared",
        "resumed: pause-all-workers was cleared",
    ]


def test_jobs_requeued_at_shutdown_before_they_started_are_each_named(
    r: redis.Redis, workers: Workers
) -> None:
    for i in range(7):  # quick jobs: batches of 1, 2, then 4 (the most, here)
        push(r, "low", "Record", f"warm{i}")
    push(r, "low", "Sleep", 30, "a")  # heads the next batch of 4
    for i in range(3):
        push_with_id(r, "low", "Record", f"r{i}", f"r{i}")
    worker = workers.start("low", "--no-fork", env={"RESQUE_TERM_TIMEOUT": "0.2",
                                                     "RESQUE_MAX_BATCH": "4"})
    wait_for(lambda: "start:a" in notes(r), what="the job to start")
    assert r.llen(f"resque:inflight:{worker.id}") == 4
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    never_started = [line.split("INFO: ", 1)[1] for line in worker.output().splitlines()
                     if "never started" in line]
    assert never_started == [f"requeued at shutdown, never started: job Record (id r{i}) "
                             "from low" for i in range(3)]


def test_a_pruner_names_each_job_it_requeues(r: redis.Redis, workers: Workers) -> None:
    push_with_id(r, "low", "Sleep", "lost-1", 30, "a")
    quick_pruning = {"RESQUE_PRUNE_INTERVAL": "0.2"}  # also the prune lock's ttl
    dead = workers.start("low", env=quick_pruning)
    wait_for(lambda: "start:a" in notes(r), what="the job to start")
    dead.kill()
    pruner = workers.start("other", env=quick_pruning, verbose=False)
    wait_for(lambda: r.llen("resque:queue:low") == 1, what="the job to be requeued")
    wait_for(lambda: "requeued at the head" in pruner.output(), what="the line")
    said = [m.group(4) for m in map(TEXT_LINE.match, pruner.output().splitlines())
            if m and m.group(1) == "resque.worker" and dead.id in m.group(4)]
    assert said == [
        f"pruned dead worker {dead.id} (gone): 1 job(s) requeued",
        f"requeued at the head of its queue: job Sleep (id lost-1) from low (from {dead.id})",
    ]
    assert HOST in dead.id and os.getpid() != dead.pid
