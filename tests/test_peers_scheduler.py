"""Our scheduler and the real resque-scheduler 5.0 on one Redis: one master at a time, with
hand-overs both ways; every delayed job moved exactly once across a master's crash; dynamic
schedules set on one side run by the other; delayed jobs removed by the other side.

resque-scheduler runs from its own executable with tests/ruby/peers.rb as initializer;
skipped with the reason where the peer is absent (tests/support/peers.py).
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from support.peers import (
    PeerProcesses,
    ResqueWeb,
    python_worker,
    ran,
    require_ruby_scheduler,
    ruby,
    ruby_scheduler,
)
from support.replies import as_bytes
from support.schedulerkit import SchedulerProcess
from support.workerkit import Workers, wait_for

from resque import Resque, layout

pytestmark = [pytest.mark.ruby, pytest.mark.scheduler_peer]

LOCK = "resque:resque:resque_scheduler_master_lock"


@pytest.fixture
def ours(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., SchedulerProcess]]:
    """Starts ``python -m resque scheduler -v ARGS`` processes; stops them at the end."""
    started: list[SchedulerProcess] = []

    def start(*args: str) -> SchedulerProcess:
        log = tmp_path / f"ours-{len(started)}.log"
        started.append(SchedulerProcess(redis_url, log, "-v", *args))
        return started[-1]

    yield start
    for process in started:
        process.stop()


def master_pid(r: redis.Redis) -> int | None:
    """The pid in the master lock's ``host:pid`` value (Ruby's or ours), or None."""
    value = r.get(LOCK)
    return int(layout.text(value).rsplit(":", 1)[1]) if value else None


def role(log: str) -> str:
    """What a scheduler last said it was: ``Master`` or ``Child`` (both log it on a change)."""
    found = re.findall(r"\b(Master|Child) scheduler\b", log)
    return found[-1] if found else "none yet"


def test_one_master_at_a_time_with_hand_overs_both_ways(
    r: redis.Redis, redis_url: str, scheduler_peers: PeerProcesses,
    ours: Callable[..., SchedulerProcess],
) -> None:
    first = ours("-i", "0.1")
    wait_for(lambda: master_pid(r) == first.pid, what="our scheduler to become master")
    theirs = ruby_scheduler(scheduler_peers, redis_url, "theirs", "-i", "0.1")
    wait_for(lambda: role(scheduler_peers.log("theirs")) == "Child",
             what=scheduler_peers.log("theirs"))
    assert (master_pid(r), role(first.log())) == (first.pid, "Master")

    first.signal(signal.SIGTERM)  # releases the lock: Ruby's standby takes it at its next poll
    assert first.wait(10) == 0
    wait_for(lambda: role(scheduler_peers.log("theirs")) == "Master",
             what=scheduler_peers.log("theirs"))
    assert master_pid(r) == theirs.pid

    second = ours("-i", "0.1")
    wait_for(lambda: role(second.log()) == "Child", what=second.log())
    assert (master_pid(r), role(scheduler_peers.log("theirs"))) == (theirs.pid, "Master")

    theirs.send_signal(signal.SIGTERM)  # Ruby releases its lock too
    assert theirs.wait(10) == 0
    wait_for(lambda: role(second.log()) == "Master", what=second.log())
    assert master_pid(r) == second.pid


@pytest.mark.parametrize("crashing", ["ours", "ruby"])
def test_500_delayed_jobs_each_performed_once_across_a_master_crash(
    crashing: str, r: redis.Redis, redis_url: str, scheduler_peers: PeerProcesses,
    ours: Callable[..., SchedulerProcess], workers: Workers,
) -> None:
    """Half the jobs delayed by Ruby, half by us, due in four one-second buckets; the first
    master is SIGKILLed once the first bucket is queued, so its 1 s lock lapses and the other
    scheduler moves the rest."""
    start = int(time.time()) + 3
    due = {i: start + i % 4 for i in range(500)}
    ruby(redis_url, "enqueue_at", "peers", "Echo",
         json.dumps([[due[i], [i]] for i in range(0, 500, 2)]), scheduler=True)
    client = Resque(r)
    for i in range(1, 500, 2):
        client.enqueue_at_with_queue("peers", due[i], "Echo", i)
    assert client.count_all_scheduled_jobs() == 500

    def start_ours() -> int:
        return ours("-i", "0.1", "--lock-timeout", "1").pid

    def start_ruby() -> int:
        return ruby_scheduler(scheduler_peers, redis_url, f"ruby-{crashing}", "-i", "0.1",
                              lock_timeout=1).pid

    first, second = (start_ours, start_ruby) if crashing == "ours" else (start_ruby, start_ours)
    doomed = first()
    wait_for(lambda: master_pid(r) == doomed, what="the first scheduler to become master")
    survivor = second()
    wait_for(lambda: r.llen("resque:queue:peers") >= 125, timeout=20, what="the first bucket")
    os.kill(doomed, signal.SIGKILL)  # mid-run: no lock release, no clean-up
    wait_for(lambda: client.count_all_scheduled_jobs() == 0, timeout=20, what="every bucket")
    python_worker(workers, "peers", "--no-fork")
    assert sorted(ran(r, "python")) == [[i] for i in range(500)]
    assert master_pid(r) == survivor
    assert r.keys("resque:timestamps:*") + r.keys("resque:delayed:[0-9]*") == []


def test_a_schedule_we_set_is_enqueued_by_resque_scheduler(
    r: redis.Redis, redis_url: str, scheduler_peers: PeerProcesses
) -> None:
    theirs = ruby_scheduler(scheduler_peers, redis_url, "theirs", "-i", "0.1", "-D")
    wait_for(lambda: master_pid(r) == theirs.pid, what=scheduler_peers.log("theirs"))
    Resque(r).schedules.set("tick", {"every": "1s", "class": "Echo", "queue": "peers",
                                     "args": ["from our schedule", 1e-7]})
    wait_for(lambda: r.llen("resque:queue:peers"), timeout=10, what=scheduler_peers.log("theirs"))
    assert r.lindex("resque:queue:peers", 0) == (
        b'{"class":"Echo","args":["from our schedule",1.0e-07]}')


def test_a_schedule_ruby_set_is_enqueued_by_our_scheduler(
    r: redis.Redis, redis_url: str, ours: Callable[..., SchedulerProcess]
) -> None:
    scheduler = ours("-i", "0.1", "--dynamic")
    wait_for(lambda: master_pid(r) == scheduler.pid, what=scheduler.log())
    ruby(redis_url, "set_schedule", "tock", json.dumps({
        "every": "1s", "class": "Echo", "queue": "peers", "args": ["from ruby's schedule"],
        "persist": True}), scheduler=True)
    wait_for(lambda: r.llen("resque:queue:peers"), timeout=10, what=scheduler.log())
    tick = as_bytes(r.lindex("resque:queue:peers", 0))  # Ruby's bytes, then the tick's job id
    assert tick.startswith(b'{"class":"Echo","args":["from ruby\'s schedule"],"id":"')


def test_ruby_removes_a_job_we_delayed(r: redis.Redis, redis_url: str) -> None:
    require_ruby_scheduler()
    Resque(r, job_ids=False).enqueue_at_with_queue("peers", time.time() + 600, "Echo", "later",
                                                   1e-7, 2e15)
    removed = ruby(redis_url, "remove_delayed", "peers", "Echo", '["later", 1e-7, 2e15]',
                   scheduler=True)
    assert removed.strip() == "1"


def test_we_remove_a_job_ruby_delayed(r: redis.Redis, redis_url: str) -> None:
    require_ruby_scheduler()
    ruby(redis_url, "enqueue_at", "peers", "Echo",
         json.dumps([[int(time.time()) + 600, ["later", 1e-7, 2e15]]]), scheduler=True)
    assert Resque(r).remove_delayed_in_queue("Echo", "peers", "later", 1e-7, 2e15) == 1


def test_resque_scheduler_web_shows_and_acts_on_our_delayed_jobs_and_schedules(
    r: redis.Redis, redis_url: str, scheduler_peers: PeerProcesses
) -> None:
    """resque-web with resque-scheduler's tabs: our delayed jobs and stored schedules listed,
    queued now, cancelled (found by Ruby's re-encoding of their args) and requeued. With job
    ids off: Ruby finds an item by bytes it rebuilds without our id (test_peers_job_ids.py)."""
    client = Resque(r, job_ids=False)
    soon, later = int(time.time()) + 600, int(time.time()) + 1200
    client.enqueue_at_with_queue("peers", soon, "Echo", "queued now", 1e-7)
    client.enqueue_at_with_queue("peers", later, "Echo", "cancelled", 2e15)
    client.schedules.set("hourly", {"every": "1h", "class": "Echo", "queue": "peers",
                                    "args": ["from the schedule tab"]})
    web = ResqueWeb(scheduler_peers, redis_url, scheduler=True)
    delayed = web.get("/delayed")
    assert re.findall(r'name="timestamp" value="(\d+)"', delayed) == [str(soon), str(later)]
    assert "cancelled" in web.get(f"/delayed/{later}")
    assert "hourly" in web.get("/schedule")

    web.post("/delayed/queue_now", timestamp=str(soon))
    found = web.post("/delayed/search", search="echo")  # its Cancel Job button's form
    cancel = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">',
                             found.split('action="/delayed/cancel_now"', 1)[1].split("</form>")[0]))
    web.post("/delayed/cancel_now", **{k: html.unescape(v) for k, v in cancel.items()})
    web.post("/schedule/requeue", job_name="hourly")
    assert r.lrange("resque:queue:peers", 0, -1) == [
        b'{"class":"Echo","args":["queued now",1.0e-07]}',
        b'{"class":"Echo","args":["from the schedule tab"]}',
    ]
    assert client.count_all_scheduled_jobs() == 0
