"""Our retries moved by the real resque-scheduler 5.0: a delayed retry is due, Ruby's
scheduler rebuilds it from class and args (dropping our ``id``), and our worker's next attempt
still knows which attempt it is, from resque-retry's key.

Skipped with the reason where the peer is absent (tests/support/peers.py).
"""

from __future__ import annotations

import json

import pytest
import redis
import retryapp
from support.peers import PeerProcesses, ruby_scheduler
from support.replies import bytes_list, texts
from support.workerkit import Workers, failures, wait_for

from resque import Resque

pytestmark = [pytest.mark.ruby, pytest.mark.scheduler_peer]


def test_ruby_s_scheduler_moves_our_retry_and_the_attempt_count_survives(
    r: redis.Redis, redis_url: str, scheduler_peers: PeerProcesses, workers: Workers
) -> None:
    handle = Resque(r).enqueue(retryapp.later, "ruby")
    assert handle is not None
    workers.run("retry", app="retryapp")
    assert r.zcard("resque:delayed_queue_schedule") == 1
    ruby_scheduler(scheduler_peers, redis_url, "theirs", "-i", "0.1")
    wait_for(lambda: r.llen("resque:queue:retry") == 1, timeout=20, what="Ruby's move")
    [moved] = bytes_list(r.lrange("resque:queue:retry", 0, -1))
    assert json.loads(moved) == {"class": "Later", "args": ["ruby"]}  # our id is gone
    workers.run("retry", app="retryapp")
    assert texts(r.lrange(retryapp.LOG, 0, -1)) == ["later:ruby:1", "later:ruby:2"]
    assert failures(r) == []
    assert (r.keys("resque:resque-retry:*"), r.zcard("resque:retries:due")) == ([], 0)
