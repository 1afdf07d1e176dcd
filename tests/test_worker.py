"""The worker (resque/worker.py, resque/store.py) as Ruby and Perl peers see it in Redis.

Workers here are real processes (``python -m resque work --app workerapp``) on the real
redis-server of the session, except where a test shows the in-process API. The jobs live in
``tests/support/apps/workerapp.py`` and log what they did to the Redis list ``workerapp:log``.
Signals are in ``test_worker_signals.py``, dead-worker recovery in ``test_worker_recovery.py``.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
import redis
import workerapp  # noqa: F401 - registers the jobs for the in-process tests
from support.replies import as_bytes, as_text, bytes_list, texts
from support.workerkit import (
    HOST,
    TITLE_PREFIX,
    Workers,
    blocked_opening_a_fifo,
    failures,
    notes,
    push,
    queued,
    read_fifo,
    title_of,
    wait_for,
)

from resque import Resque, Worker
from resque.errors import NoQueueError

MODES = [pytest.param("--fork", id="fork"), pytest.param("--no-fork", id="no-fork")]
RUN_AT = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
STARTED = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}"
HEARTBEAT = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"
FAILED_AT = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d [A-Z]{3,5}"
FAILURE_KEYS = ["failed_at", "payload", "exception", "error", "backtrace", "worker", "queue"]


def resque_keys(r: redis.Redis) -> set[str]:
    return set(texts(r.keys("resque:*")))


def epoch_of(stamp: str, fmt: str) -> int:
    return calendar.timegm(time.strptime(stamp, fmt))


# --- lifecycle keys -------------------------------------------------------------------------


def test_a_running_job_shows_in_the_keys_ruby_writes(r: redis.Redis, workers: Workers) -> None:
    push(r, "low", "Sleep", 1.5, "a")
    worker = workers.start("high,low")
    wait_for(lambda: "start:a" in notes(r), what="the job to start")
    now = time.time()

    assert r.smembers("resque:workers") == {worker.id.encode()}
    raw = as_bytes(r.get(f"resque:worker:{worker.id}"))
    record = json.loads(raw)
    assert list(record) == ["queue", "run_at", "payload"]
    assert re.fullmatch(RUN_AT, record["run_at"])
    assert abs(epoch_of(record["run_at"], "%Y-%m-%dT%H:%M:%SZ") - now) < 5
    payload = '{"class":"Sleep","args":[1.5,"a"]}'
    assert raw.decode() == f'{{"queue":"low","run_at":"{record["run_at"]}","payload":{payload}}}'
    started = as_text(r.get(f"resque:worker:{worker.id}:started"))
    assert re.fullmatch(STARTED, started), started
    beat = as_text(r.hget("resque:workers:heartbeat", worker.id))
    assert re.fullmatch(HEARTBEAT, beat), beat


def test_a_running_job_is_held_in_the_workers_in_flight_list(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "low", "Sleep", 1.5, "a")
    worker = workers.start("high,low")
    wait_for(lambda: "start:a" in notes(r), what="the job to start")
    assert r.smembers("resque:inflight") == {worker.id.encode()}
    entries = [json.loads(e) for e in r.lrange(f"resque:inflight:{worker.id}", 0, -1)]
    # [queue, payload exactly as queued, the token of the step that reserved it]
    assert [entry[:2] for entry in entries] == [["low", '{"class":"Sleep","args":[1.5,"a"]}']]
    assert len(entries[0]) == 3 and entries[0][2]
    assert queued(r, "low") == []


def test_process_titles_say_forked_in_the_parent_and_processing_in_the_child(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "low", "Sleep", 1.5, "a")
    worker = workers.start("high,low")
    child = worker.child_pid()
    now = time.time()
    parent_title = worker.title()
    match = re.fullmatch(rf"{re.escape(TITLE_PREFIX)}Forked {child} at (\d+)", parent_title)
    assert match, parent_title
    assert abs(int(match.group(1)) - now) < 5
    wait_for(lambda: "start:a" in notes(r), what="the job to start")
    child_title = title_of(child)
    match = re.fullmatch(
        rf"{re.escape(TITLE_PREFIX)}Processing low since (\d+) \[Sleep\]", child_title
    )
    assert match, child_title
    assert abs(int(match.group(1)) - now) < 5


def test_an_idle_worker_is_titled_waiting_for_its_queues(workers: Workers) -> None:
    worker = workers.start("high,low")
    assert worker.wait_title("Waiting for ") == f"{TITLE_PREFIX}Waiting for high,low"


def test_the_procline_prefix_comes_before_the_title(workers: Workers) -> None:
    worker = workers.start("high", env={"RESQUE_PROCLINE_PREFIX": "app1 "})
    wait_for(
        lambda: worker.title().startswith(f"app1 {TITLE_PREFIX}Waiting for high"),
        what=f"the prefixed title (now {worker.title()!r})",
    )


def test_in_process_mode_titles_the_worker_processing(r: redis.Redis, workers: Workers) -> None:
    push(r, "low", "Sleep", 1.5, "a")
    worker = workers.start("high,low", "--no-fork")
    title = worker.wait_title("Processing ")
    assert re.fullmatch(rf"{re.escape(TITLE_PREFIX)}Processing low since \d+ \[Sleep\]", title)


def test_failed_jobs_count_as_processed_and_dirty_exits_not_as_failed(
    r: redis.Redis, workers: Workers
) -> None:
    for job in ("Fail", "Exit", "Segfault"):
        push(r, "low", job)
    push(r, "low", "Record", "ok")
    push(r, "low", "Sleep", 30, "hold")
    worker = workers.start("high,low", env={"RESQUE_TERM_TIMEOUT": "0.1"})
    wait_for(lambda: "start:hold" in notes(r), what="the last job to start")

    expected = {b"stat:processed": b"4", b"stat:failed": b"2"}  # Segfault is a DirtyExit
    for stat, value in expected.items():
        assert r.get(b"resque:" + stat) == value
        assert r.get(b"resque:" + stat + b":" + worker.id.encode()) == value
    assert [f["exception"] for f in failures(r)] == [
        "RuntimeError",
        "SystemExit",
        "Resque::DirtyExit",
    ]

    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert r.get("resque:stat:processed") == b"4"  # the stopped job was requeued, not counted
    assert r.get("resque:stat:failed") == b"2"
    assert not r.exists(f"resque:stat:processed:{worker.id}", f"resque:stat:failed:{worker.id}")


def test_an_exited_worker_leaves_only_the_keys_ruby_leaves(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "high", "Record", "ok")
    push(r, "low", "Fail")
    workers.run("high,low")
    assert notes(r) == ["ok"]
    assert resque_keys(r) == {
        "resque:queues",
        "resque:stat:processed",
        "resque:stat:failed",
        "resque:failed",
        "resque:pruning_dead_workers_in_progress",
    }


def test_a_worker_stopped_by_quit_unregisters_every_key_of_its_own(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "low", "Sleep", 0.5, "a")
    worker = workers.start("high,low")
    wait_for(lambda: "start:a" in notes(r), what="the job to start")
    worker.signal(signal.SIGQUIT)
    assert worker.wait() == 0
    assert notes(r) == ["start:a", "end:a"]
    left = resque_keys(r)
    assert not [key for key in left if worker.id in key]
    assert left == {
        "resque:queues",
        "resque:stat:processed",
        "resque:pruning_dead_workers_in_progress",
    }
    assert not r.exists("resque:inflight", "resque:workers", "resque:workers:heartbeat")


# --- failure records ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_failing_job_is_recorded_in_rubys_format(
    r: redis.Redis, workers: Workers, mode: str
) -> None:
    push(r, "low", "Fail", 1, "x")
    before = time.time()
    worker = workers.run("high,low", mode)
    raw = bytes_list(r.lrange("resque:failed", 0, -1))
    assert len(raw) == 1
    record = json.loads(raw[0])
    assert list(record) == FAILURE_KEYS
    assert re.fullmatch(FAILED_AT, record["failed_at"]), record["failed_at"]
    assert record["failed_at"].endswith(" " + time.strftime("%Z"))
    assert abs(epoch_of(record["failed_at"][:19], "%Y/%m/%d %H:%M:%S") - before) < 5
    assert record["payload"] == {"class": "Fail", "args": [1, "x"]}
    assert record["exception"] == "RuntimeError"
    assert record["error"] == "boom"
    assert isinstance(record["backtrace"], list) and record["backtrace"]
    assert re.fullmatch(r".*workerapp\.py:\d+:in `fail'", record["backtrace"][0])
    assert not any("/resque/" in line for line in record["backtrace"])
    assert record["worker"] == worker.id
    assert record["queue"] == "low"
    assert raw[0].startswith(b'{"failed_at":"')


def test_a_failure_record_is_compact_json_like_rubys(r: redis.Redis, workers: Workers) -> None:
    push(r, "low", "Fail", "caf\u00e9/x")
    workers.run("low")
    raw = as_bytes(r.lindex("resque:failed", 0))
    assert b'"payload":{"class":"Fail","args":["caf\xc3\xa9/x"]},"exception":"RuntimeError"' in raw
    assert b": " not in raw and b", " not in raw


def test_the_redis_multi_queue_backend_keeps_a_failed_list_per_queue(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "low", "Fail")
    workers.run("high,low", env={"FAILURE_BACKEND": "redis_multi_queue"})
    assert not r.exists("resque:failed")
    assert r.smembers("resque:failed_queues") == {b"low_failed"}
    [raw] = r.lrange("resque:low_failed", 0, -1)
    record = json.loads(raw)
    assert list(record) == FAILURE_KEYS
    assert (record["exception"], record["queue"]) == ("RuntimeError", "low")


# --- queue order ----------------------------------------------------------------------------


def test_jobs_on_a_higher_queue_all_run_before_any_lower_one(
    r: redis.Redis, workers: Workers
) -> None:
    for i in range(3):
        push(r, "low", "Record", f"low{i}")
    for i in range(3):
        push(r, "high", "Record", f"high{i}")
    workers.run("high,low")
    assert notes(r) == ["high0", "high1", "high2", "low0", "low1", "low2"]


def test_a_high_job_pushed_during_a_low_job_runs_next(
    r: redis.Redis, resque: Resque, workers: Workers
) -> None:
    push(r, "low", "Sleep", 0.3, "low1")
    push(r, "low", "Sleep", 0.3, "low2")
    worker = workers.start("high,low", "--burst")
    wait_for(lambda: "start:low1" in notes(r), what="the first low job")
    resque.enqueue_to("high", "Record", "high")
    assert worker.wait() == 0
    assert notes(r) == ["start:low1", "end:low1", "high", "start:low2", "end:low2"]


def test_star_takes_every_queue_in_alphabetical_order(r: redis.Redis, workers: Workers) -> None:
    for queue in ("charlie", "alpha", "bravo"):
        push(r, queue, "Record", queue)
    worker = workers.run("*")
    assert notes(r) == ["alpha", "bravo", "charlie"]
    assert worker.id == f"{HOST}:{worker.pid}:*"


def test_a_glob_takes_only_the_queues_it_matches(r: redis.Redis, workers: Workers) -> None:
    for queue in ("mail_b", "other", "mail_a"):
        push(r, queue, "Record", queue)
    workers.run("mail_*")
    assert notes(r) == ["mail_a", "mail_b"]
    assert len(queued(r, "other")) == 1


def test_an_exclusion_leaves_its_queue_alone_and_the_worker_id_omits_it(
    r: redis.Redis, workers: Workers
) -> None:
    for queue in ("slow", "fast", "other"):
        push(r, queue, "Record", queue)
    worker = workers.run("*,!slow")
    assert notes(r) == ["fast", "other"]
    assert len(queued(r, "slow")) == 1
    assert f"{HOST}:{worker.pid}:*" in worker.output()


def test_a_glob_after_a_plain_queue_keeps_the_plain_queue_first(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "mail_a", "Record", "mail_a")
    push(r, "urgent", "Record", "urgent")
    workers.run("urgent,mail_*")
    assert notes(r) == ["urgent", "mail_a"]


# --- execution modes ------------------------------------------------------------------------


def test_fork_mode_performs_each_job_in_a_new_child(r: redis.Redis, workers: Workers) -> None:
    push(r, "high", "Pid", "a")
    push(r, "high", "Pid", "b")
    worker = workers.run("high")
    pids = [int(note.split(":")[2]) for note in notes(r)]
    assert len(pids) == 2 and worker.pid not in pids and pids[0] != pids[1]


@pytest.mark.parametrize(
    "args, env", [(["--no-fork"], None), ([], {"FORK_PER_JOB": "false"})], ids=["option", "env"]
)
def test_no_fork_mode_performs_jobs_in_the_worker_process(
    r: redis.Redis, workers: Workers, args: list[str], env: dict[str, str] | None
) -> None:
    push(r, "high", "Pid", "a")
    push(r, "high", "Pid", "b")
    worker = workers.run("high", *args, env=env)
    assert [int(note.split(":")[2]) for note in notes(r)] == [worker.pid, worker.pid]


@pytest.mark.parametrize("mode", MODES)
def test_a_job_calling_sys_exit_fails_and_the_worker_goes_on(
    r: redis.Redis, workers: Workers, mode: str
) -> None:
    push(r, "high", "Exit")
    push(r, "high", "Record", "after")
    workers.run("high", mode)
    assert notes(r) == ["after"]
    [record] = failures(r)
    assert (record["exception"], record["error"]) == ("SystemExit", "3")
    assert r.get("resque:stat:failed") == b"1"
    assert r.get("resque:stat:processed") == b"2"


def test_a_segfaulting_child_is_a_dirty_exit_and_the_worker_goes_on(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "high", "Segfault")
    push(r, "high", "Record", "after")
    workers.run("high")
    assert notes(r) == ["after"]
    [record] = failures(r)
    assert list(record) == FAILURE_KEYS
    assert record["exception"] == "Resque::DirtyExit"
    assert re.fullmatch(
        r"Child process received unhandled signal pid \d+ SIGSEGV \(signal 11\)", record["error"]
    ), record["error"]
    assert record["backtrace"] == []
    assert record["payload"] == {"class": "Segfault", "args": []}
    assert r.get("resque:stat:failed") is None
    assert r.get("resque:stat:processed") == b"2"


def test_a_child_that_exits_without_a_word_is_a_dirty_exit_not_a_lost_job(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "high", "Abort")
    push(r, "high", "Record", "after")
    workers.run("high")
    assert notes(r) == ["after"]
    [record] = failures(r)
    assert record["exception"] == "Resque::DirtyExit"
    assert record["error"] == "Child process exited with status 3"
    assert r.get("resque:stat:failed") is None


# --- bad input ------------------------------------------------------------------------------

BAD_ITEMS = [
    # raw item, exception, error fragment, payload recorded
    (
        b"not json{",
        "Resque::BadPayload",
        "not valid JSON",
        {"class": "Resque::BadPayload", "args": ["not json{"]},
    ),
    (
        b"\xff\xfe",
        "Resque::BadPayload",
        "not valid JSON",
        {"class": "Resque::BadPayload", "args": ["\\xff\\xfe"]},
    ),
    (
        b"[1,2]",
        "Resque::BadPayload",
        "a JSON list, not an object",
        {"class": "Resque::BadPayload", "args": ["[1,2]"]},
    ),
    (b'{"args":[]}', "Resque::BadPayload", 'no "class" string', {"args": []}),
    (
        b'{"class":"Hello","args":"bob"}',
        "Resque::BadPayload",
        '"args" is a JSON str, not an array',
        {"class": "Hello", "args": "bob"},
    ),
    (
        b'{"class":"Nope","args":[]}',
        "Resque::JobNotFound",
        "no job is registered as 'Nope'",
        {"class": "Nope", "args": []},
    ),
    (
        b'{"class":"os.system","args":["touch pwned"]}',
        "Resque::JobForbidden",
        "is not registered and its module is not under an allowed prefix",
        {"class": "os.system", "args": ["touch pwned"]},
    ),
    (
        b'{"class":"Hello","args":[1,2]}',
        "TypeError",
        "do not fit Hello.perform",
        {"class": "Hello", "args": [1, 2]},
    ),
]


@pytest.mark.parametrize("mode", MODES)
def test_bad_items_become_failures_and_never_stop_the_worker(
    r: redis.Redis, workers: Workers, mode: str
) -> None:
    r.sadd("resque:queues", "high")
    for raw, *_ in BAD_ITEMS:
        r.rpush("resque:queue:high", raw)
        r.rpush("resque:queue:high", b'{"class":"Record","args":["next"]}')
    worker = workers.run("high", mode)

    assert notes(r) == ["next"] * len(BAD_ITEMS)
    records = failures(r)
    assert len(records) == len(BAD_ITEMS)
    for record, (raw, exception, error, payload) in zip(records, BAD_ITEMS, strict=True):
        assert list(record) == FAILURE_KEYS
        assert record["exception"] == exception, raw
        assert error in record["error"], (raw, record["error"])
        assert record["payload"] == payload, raw
        assert record["worker"] == worker.id and record["queue"] == "high"
    assert not (workers.directory / "pwned").exists()
    assert r.get("resque:stat:processed") == str(2 * len(BAD_ITEMS)).encode()


# --- wake-up --------------------------------------------------------------------------------


def test_an_idle_worker_picks_up_an_enqueued_job_well_under_a_second(
    r: redis.Redis, resque: Resque, workers: Workers
) -> None:
    worker = workers.start("high,low", interval=5)
    worker.wait_title("Waiting for ")
    started = time.monotonic()
    resque.enqueue_to("low", "Record", "woke")
    wait_for(lambda: notes(r) == ["woke"], timeout=5, what="the job to run")
    assert time.monotonic() - started < 0.5


def test_an_idle_wildcard_worker_picks_up_a_job_on_a_new_queue_well_under_a_second(
    r: redis.Redis, resque: Resque, workers: Workers
) -> None:
    worker = workers.start("*", interval=5)
    worker.wait_title("Waiting for ")  # it has just read the (empty) queues set
    started = time.monotonic()
    resque.enqueue_to("brand_new", "Record", "woke")
    wait_for(lambda: notes(r) == ["woke"], timeout=8, what="the job to run")
    assert time.monotonic() - started < 0.5


def test_a_job_pushed_without_a_wake_up_is_found_by_the_interval_poll(
    r: redis.Redis, workers: Workers
) -> None:
    worker = workers.start("high,low", interval=0.3)
    worker.wait_title("Waiting for ")
    push(r, "low", "Record", "polled")  # as Ruby pushes: no PUBLISH
    wait_for(lambda: notes(r) == ["polled"], timeout=3, what="the poll to find the job")


# --- hooks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_job_hooks_run_in_rubys_order(r: redis.Redis, workers: Workers, mode: str) -> None:
    push(r, "high", "Hooked", "x")
    workers.run("high", mode)
    assert notes(r) == [
        "before_perform:x",
        "before_perform_second",
        "around_enter",
        "perform:x",
        "around_exit",
        "after_perform",
    ]
    assert failures(r) == []


@pytest.mark.parametrize("mode", MODES)
def test_on_failure_runs_instead_of_after_perform_when_the_job_raises(
    r: redis.Redis, workers: Workers, mode: str
) -> None:
    push(r, "high", "Hooked", "fail")
    workers.run("high", mode)
    assert notes(r) == [
        "before_perform:fail",
        "before_perform_second",
        "around_enter",
        "perform:fail",
        "on_failure:RuntimeError:hooked boom",
    ]
    [record] = failures(r)
    assert (record["exception"], record["error"]) == ("RuntimeError", "hooked boom")


@pytest.mark.parametrize("mode", MODES)
def test_dont_perform_skips_the_job_quietly_and_counts_it_processed(
    r: redis.Redis, workers: Workers, mode: str
) -> None:
    push(r, "high", "Skipped")
    workers.run("high", mode)
    assert notes(r) == ["before_perform"]
    assert failures(r) == []
    assert r.get("resque:stat:processed") == b"1"
    assert r.get("resque:stat:failed") is None


def test_on_failure_hooks_see_a_dirty_exit(r: redis.Redis, workers: Workers) -> None:
    push(r, "high", "Hooked", "sleep")
    worker = workers.start("high")
    wait_for(lambda: "perform:sleep" in notes(r), what="the job to start")
    worker.signal(signal.SIGUSR1)
    wait_for(lambda: failures(r), what="the failure record")
    worker.signal(signal.SIGQUIT)
    assert worker.wait() == 0
    assert failures(r)[0]["exception"] == "Resque::DirtyExit"
    assert notes(r)[-1].startswith("on_failure:DirtyExit:Child process received unhandled signal")


def test_worker_hooks_run_where_ruby_runs_them_and_a_failing_hook_is_only_logged(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "high", "Pid", "job")
    worker = workers.run("high", env={"WORKERAPP_HOOKS": "1"})
    log = notes(r)
    child = int(log[2].split(":")[1])
    assert log == [
        f"before_first_fork:{worker.pid}",
        f"before_fork:{worker.pid}:Pid",
        f"after_fork:{child}:Pid",
        f"pid:job:{child}",
        f"queue_empty:{worker.pid}",
        f"worker_exit:{worker.pid}",
    ]
    assert child != worker.pid
    output = worker.output()
    assert "before_fork hook" in output and "RuntimeError: broken hook" in output
    assert failures(r) == []


def test_no_fork_mode_runs_no_fork_hooks(r: redis.Redis, workers: Workers) -> None:
    push(r, "high", "Pid", "job")
    worker = workers.run("high", "--no-fork", env={"WORKERAPP_HOOKS": "1"})
    assert notes(r) == [
        f"before_first_fork:{worker.pid}",
        f"pid:job:{worker.pid}",
        f"queue_empty:{worker.pid}",
        f"worker_exit:{worker.pid}",
    ]


# --- API shapes -----------------------------------------------------------------------------


def test_a_worker_from_the_client_with_an_added_queue_works_a_burst_in_process(
    r: redis.Redis, redis_url: str, in_process: None
) -> None:
    client = Resque(redis=redis_url)
    client.enqueue_to("q", "Record", "one")
    client.enqueue_to("q", "Record", "two")
    worker = client.worker(fork=False, burst=True)
    worker.add_queue("q")
    worker.work()
    assert notes(r) == ["one", "two"]
    assert worker.jobs_processed == 2
    assert worker.id.endswith(":q")
    assert not r.exists("resque:workers", f"resque:worker:{worker.id}:started")


def test_worker_takes_queues_in_priority_order_in_process(
    r: redis.Redis, redis_url: str, in_process: None
) -> None:
    push(r, "low", "Record", "low")
    push(r, "high", "Record", "high")
    Worker(["high", "low"], redis=redis_url, fork=False, burst=True).work()
    assert notes(r) == ["high", "low"]


def test_a_worker_without_queues_refuses_to_start(redis_url: str) -> None:
    with pytest.raises(NoQueueError):
        Worker([], redis=redis_url, burst=True).work()


def test_a_worker_in_another_namespace_sees_only_that_namespace(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "high", "Record", "default")
    r.sadd("app:queues", "high")
    r.rpush("app:queue:high", '{"class":"Record","args":["app"]}')
    workers.run("high", "--namespace", "app")
    assert notes(r) == ["app"]
    assert len(queued(r, "high")) == 1
    assert r.get("app:stat:processed") == b"1"
    assert r.get("resque:stat:processed") is None


def test_max_jobs_stops_the_worker_after_that_many_jobs(r: redis.Redis, workers: Workers) -> None:
    for i in range(5):
        push(r, "high", "Record", str(i))
    worker = workers.start("high", "--max-jobs", "2")
    assert worker.wait() == 0
    assert notes(r) == ["0", "1"]
    assert len(queued(r, "high")) == 3
    assert not r.exists("resque:workers")


def test_pidfile_holds_the_worker_pid_while_it_runs(
    r: redis.Redis, workers: Workers, tmp_path: Path
) -> None:
    pidfile = tmp_path / "worker.pid"
    worker = workers.start("high", "--pidfile", str(pidfile))
    wait_for(pidfile.exists, what="the pidfile")
    assert pidfile.read_text().strip() == str(worker.pid)
    worker.signal(signal.SIGQUIT)
    assert worker.wait() == 0
    assert not pidfile.exists()


def test_the_pidfile_is_written_only_once_the_signal_handlers_are_in_place(
    r: redis.Redis, workers: Workers, tmp_path: Path
) -> None:
    # The pidfile is a FIFO: opening it to write blocks until we read it, so the worker is
    # held at the very moment it writes its pid, and a supervisor's TERM lands right there.
    pidfile = tmp_path / "worker.pid"
    os.mkfifo(pidfile)
    worker = workers.start("high", "--pidfile", str(pidfile))
    wait_for(lambda: blocked_opening_a_fifo(worker.pid), what="the worker to open the pidfile")
    worker.signal(signal.SIGTERM)
    assert read_fifo(pidfile) == str(worker.pid)
    assert worker.wait() == 0


def test_count_starts_that_many_workers_and_passes_signals_on_to_them(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "high", "Sleep", 30, "one")
    push(r, "high", "Sleep", 30, "two")
    parent = workers.start("high", env={"COUNT": "2", "RESQUE_TERM_TIMEOUT": "0.1"})
    wait_for(lambda: sorted(notes(r)) == ["start:one", "start:two"], what="both jobs to start")
    assert r.scard("resque:workers") == 2
    assert not r.sismember("resque:workers", parent.id)  # the parent only supervises
    parent.signal(signal.SIGTERM)
    assert parent.wait() == 0
    assert not r.exists("resque:workers")
    assert len(queued(r, "high")) == 2  # both interrupted jobs are back


def test_the_queue_env_var_names_the_queues(r: redis.Redis, workers: Workers) -> None:
    push(r, "a", "Record", "a")
    push(r, "b", "Record", "b")
    worker = workers.start("b,a", "--burst", env={"QUEUE": "b,a"}, queue_option=False)
    assert worker.wait() == 0
    assert notes(r) == ["b", "a"]


def test_the_queues_env_var_wins_over_queue(r: redis.Redis, workers: Workers) -> None:
    push(r, "a", "Record", "a")
    push(r, "b", "Record", "b")
    env = {"QUEUES": "b", "QUEUE": "a"}
    worker = workers.start("b", "--burst", env=env, queue_option=False)
    assert worker.wait() == 0
    assert notes(r) == ["b"]
    assert len(queued(r, "a")) == 1


def test_an_in_process_worker_gives_back_the_signal_handlers_and_wakeup_fd_it_replaced(
    r: redis.Redis, redis_url: str, in_process: None
) -> None:
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    previous_fd = signal.set_wakeup_fd(write_end)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGUSR1)}
    try:
        Worker(["q"], redis=redis_url, fork=False, burst=True).work()
        assert signal.set_wakeup_fd(previous_fd) == write_end
        assert {signum: signal.getsignal(signum) for signum in handlers} == handlers
    finally:
        signal.set_wakeup_fd(previous_fd)
        os.close(read_end)
        os.close(write_end)


@pytest.mark.parametrize("mode", ["--fork", "--no-fork"])
def test_a_custom_failure_backend_is_called_beside_the_redis_list(
    r: redis.Redis, workers: Workers, mode: str
) -> None:
    push(r, "low", "Fail")
    workers.run("low", mode, env={"FAILURE_BACKEND": "redis,workerapp:TrackerBackend"})
    assert notes(r) == ["tracked:Fail:RuntimeError"]
    assert [f["exception"] for f in failures(r)] == ["RuntimeError"]


def test_a_failure_backend_without_a_redis_list_still_counts_the_failure(
    r: redis.Redis, workers: Workers
) -> None:
    push(r, "low", "Fail")
    workers.run("low", "--no-fork", env={"FAILURE_BACKEND": "workerapp:TrackerBackend"})
    assert notes(r) == ["tracked:Fail:RuntimeError"]
    assert not r.exists("resque:failed")
    assert (r.get("resque:stat:failed"), r.get("resque:stat:processed")) == (b"1", b"1")
