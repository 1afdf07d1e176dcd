"""``resque scheduler`` on the core install (no croniter, no PyYAML), as real processes:
delayed jobs move and ``every`` schedules run; only cron expressions and YAML files ask for
the ``scheduler`` extra, each in one line."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from support.replies import as_bytes
from support.schedulerkit import CORE_INSTALL, SchedulerProcess, wait_for

from resque import Resque

EXTRA = "pip install 'resque[scheduler]'"
Spawn = Callable[..., SchedulerProcess]


@pytest.fixture
def core_scheduler(redis_url: str, tmp_path: Path) -> Iterator[Spawn]:
    """Starts ``resque scheduler -i 0.1 ARGS`` as on the core install; stops it after."""
    started: list[SchedulerProcess] = []

    def start(*args: str) -> SchedulerProcess:
        log = tmp_path / f"core-scheduler{len(started)}.log"
        started.append(SchedulerProcess(redis_url, log, "-i", "0.1", *args, core=True))
        return started[-1]

    yield start
    for process in started:
        process.stop()


def core_resque(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, CORE_INSTALL, *args, "--redis", redis_url],
                          capture_output=True, text=True, timeout=60)


def test_the_core_install_moves_due_delayed_jobs(
    r: redis.Redis, core_scheduler: Spawn
) -> None:
    job = Resque(r).enqueue_at_with_queue("mail", int(time.time()) + 1, "Mailer", 7)
    assert job is not None
    core_scheduler()
    wait_for(lambda: r.llen("resque:queue:mail"))
    assert r.lrange("resque:queue:mail", 0, -1) == [job.payload.encode()]  # its id came along


def test_the_core_install_runs_every_schedules(r: redis.Redis, core_scheduler: Spawn) -> None:
    Resque(r).schedules.set("tick", {"every": "1s", "class": "Tick", "queue": "ops"})
    core_scheduler()
    wait_for(lambda: r.llen("resque:queue:ops"))
    tick = as_bytes(r.lindex("resque:queue:ops", 0))  # Ruby's bytes, then the tick's own job id
    assert tick.startswith(b'{"class":"Tick","args":[],"id":"')


def test_the_core_install_names_the_cron_schedules_it_cannot_run_in_one_line(
    r: redis.Redis, core_scheduler: Spawn
) -> None:
    schedules = Resque(r).schedules
    schedules.set("nightly", {"cron": "0 3 * * *", "class": "Cleanup", "queue": "low"})
    schedules.set("weekly", {"cron": "0 6 * * 1", "class": "Report", "queue": "low"})
    schedules.set("tick", {"every": "1s", "class": "Tick", "queue": "ops"})
    scheduler = core_scheduler()
    wait_for(lambda: "schedules loaded" in scheduler.log())
    hints = [line[line.index("not running"):] for line in scheduler.log().splitlines()
             if EXTRA in line]
    assert hints == [f"not running schedules nightly, weekly: cron expressions need croniter: "
                     f"{EXTRA}"]


def test_a_schedule_file_on_the_core_install_asks_for_pyyaml_in_one_line(
    redis_url: str, tmp_path: Path
) -> None:
    schedule = tmp_path / "schedule.yml"
    schedule.write_text("tick:\n  every: 1s\n  class: Tick\n  queue: ops\n")
    done = core_resque(redis_url, "scheduler", "-s", str(schedule))
    assert (done.returncode, done.stderr.splitlines()[-1]) == (
        2, f"Error: schedule file {schedule}: YAML files need PyYAML: {EXTRA}")


def test_setting_a_cron_schedule_on_the_core_install_asks_for_croniter_in_one_line(
    r: redis.Redis, redis_url: str
) -> None:
    done = core_resque(redis_url, "schedule", "set", "nightly", "--cron", "0 3 * * *",
                       "--queue", "low")
    assert (done.returncode, done.stderr.splitlines()[-1]) == (
        2, f"Error: schedule 'nightly': cron expressions need croniter: {EXTRA}")
