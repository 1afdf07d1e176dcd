"""Policies beside the real resque-scheduler 5.0: jobs our limit deferred are queued again by
Ruby's scheduler, which rebuilds them from class and args only (our ``id`` and ``unique`` keys
dropped), and our worker still applies their declared limit and unique lock."""

from __future__ import annotations

import json
import time

import policyapp
import pytest
import redis
from support.peers import PeerProcesses, ruby_scheduler
from support.replies import texts
from support.workerkit import Workers, wait_for

from resque import Resque

pytestmark = [pytest.mark.ruby, pytest.mark.scheduler_peer]

RUNNING = "resque:limits:policyapp.chaos:running"


def test_jobs_our_limit_deferred_are_moved_by_resque_scheduler_and_run_once_within_it(
        r: redis.Redis, redis_url: str, scheduler_peers: PeerProcesses, workers: Workers,
        taskapp_redis: str) -> None:
    client = Resque(r)
    ends = time.time() * 1000 + 1500
    r.zadd(RUNNING, {f"elsewhere-{n}": ends for n in range(policyapp.CHAOS_CAP)})  # all taken
    for n in range(4):
        policyapp.limited_chaos.options(client=client).enqueue(f"j{n}", 0.2)
    env = {"CHAOS_RESULTS": redis_url}
    workers.run("chaos", "--app", "policyapp", "--no-fork", env=env)
    assert (client.count_all_scheduled_jobs(), r.scard("chaos:done")) == (4, 0)
    ruby_scheduler(scheduler_peers, redis_url, "ruby", "-i", "0.2")
    wait_for(lambda: client.count_all_scheduled_jobs() == 0, timeout=20,
             what="resque-scheduler to queue the deferred jobs")
    rebuilt = [json.loads(raw) for raw in texts(r.lrange("resque:queue:chaos", 0, -1))]
    assert sorted(rebuilt, key=lambda job: str(job["args"])) == [
        {"class": "policyapp.chaos", "args": [f"j{n}", 0.2]} for n in range(4)]
    workers.start("chaos", "--app", "policyapp", "-c", "4", env=env)
    wait_for(lambda: r.scard("chaos:done") == 4, timeout=30, what="the four jobs")
    assert {k: int(v) for k, v in r.hgetall("chaos:runs").items()} == {
        f"j{n}".encode(): 1 for n in range(4)}
    wait_for(lambda: r.exists(RUNNING) == 0, what="every place given back")
    assert r.keys("resque:loners:*") == []  # the locks were taken and freed by declaration
    assert r.llen("resque:failed") == 0
