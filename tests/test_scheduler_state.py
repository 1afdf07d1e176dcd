"""Is a scheduler running, does it follow stored schedules, are due jobs late: what
``resque schedule set``, ``resque delayed list`` and ``resque stats`` say about it, from the
master lock and our ``scheduler:master`` record, with real scheduler processes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner, Result
from support.peers import PeerProcesses, require_ruby_scheduler, ruby_scheduler
from support.schedulerkit import SchedulerProcess, wait_for

from resque import Resque, layout
from resque.cli import main
from resque.scheduler.delayed import Delayed
from resque.scheduler.state import read_state

LOCK = "resque:resque:resque_scheduler_master_lock"
RECORD = "resque:scheduler:master"
Spawn = Callable[..., SchedulerProcess]
NO_MASTER_OVERDUE = (
    "warning: 3 delayed jobs are overdue (the oldest due 2 min ago) and no scheduler is "
    "running (no master lock): start `resque scheduler` (or Ruby's resque-scheduler) to move "
    "them\n")


@pytest.fixture
def spawn(redis_url: str, tmp_path: Path) -> Iterator[Spawn]:
    """Starts ``resque scheduler -i 0.1 ARGS`` and waits until it is master."""
    started: list[SchedulerProcess] = []

    def start(*args: str) -> SchedulerProcess:
        process = SchedulerProcess(redis_url, tmp_path / f"scheduler{len(started)}.log",
                                   "-i", "0.1", *args)
        started.append(process)
        client = redis.Redis.from_url(redis_url)
        wait_for(lambda: client.get(RECORD) and client.get(LOCK))
        client.close()
        return process

    yield start
    for process in started:
        process.stop()


def cli(redis_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--redis", redis_url], catch_exceptions=False)


def delay_overdue(r: redis.Redis) -> None:
    """Three jobs due 150 s and 30 s ago, stored as if no scheduler had run since."""
    back_then = Delayed(Resque(r), clock=lambda: 0.0)
    now = int(time.time())
    back_then.enqueue_at_with_queue("mail", now - 150, "Mailer", 1)
    back_then.enqueue_at_with_queue("mail", now - 150, "Mailer", 2)
    back_then.enqueue_at_with_queue("mail", now - 30, "Mailer", 3)


def master_value(r: redis.Redis) -> str:
    value = r.get(LOCK)
    assert value is not None
    return layout.text(value)


# --- who is master, and is it dynamic ----------------------------------------------------------


def test_our_master_started_with_dynamic_records_that_it_is(r: redis.Redis, spawn: Spawn
                                                             ) -> None:
    spawn("--dynamic")
    assert read_state(Resque(r)).dynamic is True


def test_our_master_started_without_dynamic_records_that_it_is_not(
    r: redis.Redis, spawn: Spawn
) -> None:
    spawn()
    assert read_state(Resque(r)).dynamic is False


def test_a_master_whose_record_lapsed_writes_it_again_at_its_next_pass(
    r: redis.Redis, spawn: Spawn
) -> None:
    spawn("--dynamic")
    r.delete(RECORD)  # as when one pass (a huge move) outlasts the TTL
    wait_for(lambda: r.exists(RECORD))
    assert read_state(Resque(r)).dynamic is True


def test_a_master_with_no_record_of_its_own_is_of_unknown_kind(r: redis.Redis) -> None:
    r.set(RECORD, '{"lock":"old-host:11","dynamic":true}')  # a dead master of ours
    r.set(LOCK, "ruby-host:4242")  # then Ruby's resque-scheduler took over
    assert read_state(Resque(r)).dynamic is None


# --- resque schedule set ------------------------------------------------------------------------


def test_schedule_set_warns_when_no_scheduler_runs(r: redis.Redis, redis_url: str) -> None:
    result = cli(redis_url, "schedule", "set", "tick", "--every", "30s", "--queue", "ops")
    assert result.stderr == (
        "warning: no scheduler is running (no master lock): the change takes effect when "
        "`resque scheduler` (or Ruby's resque-scheduler) starts\n")


def test_schedule_set_warns_when_our_master_is_not_dynamic(
    r: redis.Redis, redis_url: str, spawn: Spawn
) -> None:
    spawn()
    result = cli(redis_url, "schedule", "set", "tick", "--every", "30s", "--queue", "ops")
    assert result.stderr == (
        f"warning: the master scheduler {master_value(r)} runs without --dynamic: it reads "
        "stored schedules only when it starts or gets USR2; run it with --dynamic "
        "(DYNAMIC_SCHEDULE=true) to follow changes\n")


def test_schedule_remove_says_when_a_dynamic_master_picks_it_up(
    r: redis.Redis, redis_url: str, spawn: Spawn
) -> None:
    Resque(r).schedules.set("tick", {"every": "30s", "class": "Tick", "queue": "ops"})
    spawn("--dynamic")
    result = cli(redis_url, "schedule", "remove", "tick")
    assert result.stderr == (
        f"note: the master scheduler {master_value(r)} (--dynamic) picks it up within 0.1 s\n")


@pytest.mark.ruby
@pytest.mark.scheduler_peer
def test_schedule_set_beside_ruby_dynamic_scheduler_says_it_cannot_tell(
    r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    """resque-scheduler running with DYNAMIC_SCHEDULE leaves no trace of it in Redis."""
    require_ruby_scheduler()
    processes = PeerProcesses(tmp_path)
    try:
        ruby_scheduler(processes, redis_url, "ruby-scheduler", "-i", "0.2", "-D")
        wait_for(lambda: r.get(LOCK), timeout=30)
        result = cli(redis_url, "schedule", "set", "tick", "--every", "30s", "--queue", "ops")
        assert result.stderr == (
            f"warning: the master scheduler {master_value(r)} is not one of ours (Ruby's "
            "resque-scheduler?): whether it follows stored schedules is unknown; it does only "
            "with DYNAMIC_SCHEDULE=true, otherwise at its restart\n")
    finally:
        processes.cleanup()


# --- overdue delayed jobs -----------------------------------------------------------------------


def test_delayed_list_warns_when_due_jobs_wait_and_no_scheduler_runs(
    r: redis.Redis, redis_url: str
) -> None:
    delay_overdue(r)
    assert cli(redis_url, "delayed", "list").stderr == NO_MASTER_OVERDUE


def test_delayed_list_says_nothing_of_due_jobs_while_a_master_runs(
    r: redis.Redis, redis_url: str
) -> None:
    delay_overdue(r)
    r.set(LOCK, "ruby-host:4242")  # a master (Ruby's) that moves them on its next poll
    assert cli(redis_url, "delayed", "list").stderr == ""


def test_stats_warns_when_due_jobs_wait_and_no_scheduler_runs(
    r: redis.Redis, redis_url: str
) -> None:
    delay_overdue(r)
    assert cli(redis_url, "stats").stderr == NO_MASTER_OVERDUE
