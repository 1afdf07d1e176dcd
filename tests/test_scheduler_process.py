"""The ``resque scheduler`` process, as real subprocesses against the real redis-server:
master and standby, a killed master, signals, dynamic schedules, bad input."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from support.replies import as_text
from support.schedulerkit import SchedulerProcess, phase, wait_for
from support.workerkit import blocked_opening_a_fifo, read_fifo

from resque import Resque, layout
from resque.scheduler.lock import lock_hostname

LOCK = "resque:resque:resque_scheduler_master_lock"
RECORD = "resque:scheduler:master"
Spawn = Callable[..., SchedulerProcess]


@pytest.fixture
def spawn(redis_url: str, tmp_path: Path) -> Iterator[Spawn]:
    started: list[SchedulerProcess] = []

    def start(*args: str) -> SchedulerProcess:
        process = SchedulerProcess(
            redis_url, tmp_path / f"scheduler{len(started)}.log", "-i", "0.1", *args
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def master(r: redis.Redis) -> str | None:
    value = r.get(LOCK)
    return as_text(value) if value else None


def record_lock(r: redis.Redis) -> str | None:
    """The ``lock`` our master wrote in its record (``scheduler:master``), if any."""
    raw = r.get(RECORD)
    return layout.decode(raw)["lock"] if raw else None


def delay_ruby_items(r: redis.Redis, golden_dir: Path, timestamp: int) -> list[str]:
    """The capture's Ruby-written items (`delayed:1795825807`), due at ``timestamp``."""
    items: list[str] = phase(golden_dir, "delayed")["resque:delayed:1795825807"]["value"]
    for item in items:
        r.rpush(f"resque:delayed:{timestamp}", item)
        r.sadd(f"resque:timestamps:{item}", f"delayed:{timestamp}")
    r.zadd("resque:delayed_queue_schedule", {str(timestamp): timestamp})
    return items


def test_moves_ruby_delayed_items_and_releases_the_lock_on_term(
    r: redis.Redis, spawn: Spawn, golden_dir: Path
) -> None:
    delay_ruby_items(r, golden_dir, int(time.time()) - 5)
    scheduler = spawn()
    wait_for(lambda: r.llen("resque:queue:high") == 2)
    assert r.lrange("resque:queue:high", 0, -1) == [
        b'{"class":"Hello","args":["a",1]}', b'{"class":"Hello","args":["b",{"k":[2.5,null,true]}]}'
    ]
    assert r.keys("resque:delayed*") == [] and r.keys("resque:timestamps:*") == []
    assert master(r) == f"{lock_hostname()}:{scheduler.pid}"
    assert 170 < r.ttl(LOCK) <= 180
    scheduler.signal(signal.SIGTERM)
    assert scheduler.wait(5) == 0
    assert master(r) is None
    assert "Master scheduler" in scheduler.log() and "released the master lock" in scheduler.log()


def test_term_during_a_big_move_finishes_the_batch_in_hand_and_loses_nothing(
    r: redis.Redis, spawn: Spawn
) -> None:
    seed = Resque(r)
    jobs, when = 50_000, int(time.time()) - 1
    with r.pipeline(transaction=False) as pipe:
        for n in range(jobs):
            item = layout.delayed_item("Job", [n], "work")
            pipe.rpush(seed.keys.delayed(when), item)
            pipe.sadd(seed.keys.timestamps(item), layout.delayed_member(when))
        pipe.zadd(seed.keys.delayed_schedule, {str(when): when})
        pipe.execute()
    scheduler = spawn("--batch-size", "100")
    wait_for(lambda: r.llen("resque:queue:work") > 0, step=0.002)
    scheduler.signal(signal.SIGTERM)
    assert scheduler.wait(5) == 0 and master(r) is None
    moved = r.llen("resque:queue:work")
    left = r.llen(seed.keys.delayed(when))
    assert 0 < moved < jobs, "stopped in the middle of the move"
    assert moved % 100 == 0, "whole batches only"
    assert moved + left == jobs, "nothing lost, nothing twice"
    assert len(r.keys("resque:timestamps:*")) == left


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGQUIT])
def test_int_and_quit_also_stop_it_cleanly(r: redis.Redis, spawn: Spawn, signum: int) -> None:
    scheduler = spawn()
    wait_for(lambda: master(r) == f"{lock_hostname()}:{scheduler.pid}")
    scheduler.signal(signum)
    assert scheduler.wait(5) == 0 and master(r) is None


def test_stands_by_while_a_ruby_master_holds_the_lock_and_takes_over_when_it_goes(
    r: redis.Redis, spawn: Spawn
) -> None:
    r.set(LOCK, "localhost:2966", ex=60)  # a Ruby master, as in the capture
    due = int(time.time()) + 1
    Resque(r).enqueue_at_with_queue("q", due, "Job", 1)
    standby = spawn()
    wait_for(lambda: "Child scheduler" in standby.log())
    wait_for(lambda: time.time() > due + 0.5)
    assert r.llen("resque:queue:q") == 0, "a standby moves nothing"
    assert r.llen(f"resque:delayed:{due}") == 1
    assert master(r) == "localhost:2966"
    r.delete(LOCK)  # the Ruby master released it (TERM)
    wait_for(lambda: r.llen("resque:queue:q") == 1, timeout=5)
    assert master(r) == f"{lock_hostname()}:{standby.pid}"


def test_a_standby_stopping_leaves_the_masters_lock(r: redis.Redis, spawn: Spawn) -> None:
    r.set(LOCK, "localhost:2966", ex=60)
    standby = spawn()
    wait_for(lambda: "Child scheduler" in standby.log())
    standby.signal(signal.SIGTERM)
    assert standby.wait(5) == 0
    assert master(r) == "localhost:2966"


def test_two_schedulers_and_a_killed_master_enqueue_every_due_job_exactly_once(
    r: redis.Redis, spawn: Spawn
) -> None:
    seed = Resque(r)
    start = time.time()
    jobs = 4000
    with r.pipeline(transaction=False) as pipe:  # 500 jobs a second for 8 seconds
        for n in range(jobs):
            when = int(start + 1 + n // 500)
            item = layout.delayed_item("Job", [n], "work")
            pipe.rpush(seed.keys.delayed(when), item)
            pipe.sadd(seed.keys.timestamps(item), layout.delayed_member(when))
            pipe.zadd(seed.keys.delayed_schedule, {str(when): when})
        pipe.execute()

    first = spawn("--lock-timeout", "2")
    wait_for(lambda: master(r) == f"{lock_hostname()}:{first.pid}")
    second = spawn("--lock-timeout", "2")
    wait_for(lambda: "Child scheduler" in second.log())
    wait_for(lambda: r.llen("resque:queue:work") >= 500)
    first.proc.kill()  # SIGKILL: no release; the standby must wait for the TTL
    first.wait(5)
    killed_at = time.monotonic()
    wait_for(lambda: master(r) == f"{lock_hostname()}:{second.pid}", timeout=5)
    took_over = time.monotonic() - killed_at
    wait_for(lambda: r.llen("resque:queue:work") >= jobs, timeout=15)
    time.sleep(0.3)

    moved = [layout.decode(raw)["args"][0] for raw in r.lrange("resque:queue:work", 0, -1)]
    assert len(moved) == jobs and sorted(moved) == list(range(jobs)), "each job exactly once"
    assert r.keys("resque:delayed*") == [] and r.keys("resque:timestamps:*") == []
    assert took_over <= 2 + 1, "the standby takes over within the TTL (plus one interval)"
    second.signal(signal.SIGTERM)
    assert second.wait(5) == 0 and master(r) is None


def test_a_killed_masters_record_lapses_with_its_lock(r: redis.Redis, spawn: Spawn) -> None:
    scheduler = spawn("--lock-timeout", "2")
    value = f"{lock_hostname()}:{scheduler.pid}"
    wait_for(lambda: record_lock(r) == value)
    scheduler.proc.kill()  # SIGKILL: no release, the lock only lapses
    scheduler.wait(5)
    wait_for(lambda: master(r) is None, timeout=2 + 1)
    assert r.get(RECORD) is None


def test_a_standby_takes_over_from_a_killed_master_within_the_ttl_and_records_itself(
    r: redis.Redis, spawn: Spawn
) -> None:
    first = spawn("--lock-timeout", "2")
    wait_for(lambda: record_lock(r) == f"{lock_hostname()}:{first.pid}")
    second = spawn("--lock-timeout", "2")
    wait_for(lambda: "Child scheduler" in second.log())
    first.proc.kill()
    first.wait(5)
    # Documented: within the lock's TTL (2 s) plus one interval (0.1 s), less one poll's slack.
    wait_for(lambda: record_lock(r) == f"{lock_hostname()}:{second.pid}", timeout=2 + 0.1 + 0.9)
    assert 0 < r.ttl(RECORD) <= 2


def test_dynamic_schedules_set_while_running_are_picked_up(
    r: redis.Redis, spawn: Spawn
) -> None:
    client = Resque(r)
    scheduler = spawn("--dynamic")
    wait_for(lambda: "Schedules Loaded" in scheduler.log())
    client.schedules.set("tick", {"every": "1s", "class": "Noop", "queue": "noop", "args": ["t"]})
    wait_for(lambda: r.llen("resque:queue:noop") >= 2, timeout=5)
    assert r.hexists("resque:delayed:last_enqueued_at", "tick")
    client.schedules.remove("tick")
    wait_for(lambda: "removing schedule tick" in scheduler.log(), timeout=3)
    count = r.llen("resque:queue:noop")
    time.sleep(1.5)
    assert r.llen("resque:queue:noop") == count


def test_bad_input_is_reported_and_skipped_while_everything_else_runs(
    r: redis.Redis, spawn: Spawn, tmp_path: Path
) -> None:
    schedule = tmp_path / "schedule.yml"
    schedule.write_text(
        "bad_cron:\n  cron: '61 * * * *'\n  class: A\n  queue: q\n"
        "Ghost:\n  every: 1s\n"
        "tick:\n  every: 1s\n  class: Noop\n  queue: noop\n"
    )
    now = int(time.time())
    r.rpush(f"resque:delayed:{now}", b"{broken", layout.delayed_item("Good", [1], "q"))
    r.zadd("resque:delayed_queue_schedule", {str(now): now})
    scheduler = spawn("--schedule", str(schedule))
    wait_for(lambda: r.llen("resque:queue:noop") >= 2, timeout=6)
    assert r.lrange("resque:queue:q", 0, -1) == [b'{"class":"Good","args":[1]}']
    failed = layout.decode(r.lindex("resque:failed", 0))  # type: ignore[arg-type]
    assert failed["payload"] == "{broken" and failed["exception"] == layout.BAD_DELAYED_ITEM
    log = scheduler.log()
    assert "schedule 'bad_cron': cron '61 * * * *' cannot be parsed" in log
    assert "schedule 'Ghost': class 'Ghost' is not a registered job class here" in log
    assert "delayed job due at" in log and "not valid JSON" in log
    assert scheduler.proc.poll() is None, "still running"


def test_a_clean_stop_hands_the_lock_to_the_standby_at_its_next_poll(
    r: redis.Redis, spawn: Spawn
) -> None:
    first = spawn()
    wait_for(lambda: master(r) == f"{lock_hostname()}:{first.pid}")
    second = spawn()
    wait_for(lambda: "Child scheduler" in second.log())
    assert master(r) == f"{lock_hostname()}:{first.pid}"
    first.signal(signal.SIGTERM)  # a clean stop releases the lock: no TTL wait
    wait_for(lambda: master(r) == f"{lock_hostname()}:{second.pid}", timeout=3)


def test_the_pidfile_is_written_only_once_the_signal_handlers_are_in_place(
    spawn: Spawn, tmp_path: Path
) -> None:
    # A FIFO holds the scheduler at the moment it writes its pid: a TERM sent then must stop
    # it cleanly (exit 0), not kill it with the default action.
    pidfile = tmp_path / "scheduler.pid"
    os.mkfifo(pidfile)
    process = spawn("--pidfile", str(pidfile))
    wait_for(lambda: blocked_opening_a_fifo(process.pid))
    process.signal(signal.SIGTERM)
    assert read_fifo(pidfile) == str(process.pid)
    assert process.wait() == 0
