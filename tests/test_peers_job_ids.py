"""Job ids and keyword arguments against the real peers: Ruby and Perl workers perform our
jobs unchanged, resque-web shows and retries them (the retry drops the id), and Ruby's
exact-bytes removals (``Resque.dequeue``, resque-scheduler's ``remove_delayed``) miss a job
that carries its id, which our own removals find.

Ruby and Perl jobs receive the keywords as a trailing hash that holds the marker:
``{"__kwargs__" => true, "locale" => "sv"}``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from support.peers import (
    PeerProcesses,
    ResqueWeb,
    perl,
    python_worker,
    ran,
    require_perl_resque,
    require_ruby_resque,
    require_ruby_scheduler,
    ruby,
)
from support.workerkit import Workers

from resque import Resque, layout

KEYWORDS = {"__kwargs__": True, "locale": "sv", "n": 2}


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[PeerProcesses]:
    started = PeerProcesses(tmp_path)
    yield started
    started.cleanup()


@pytest.mark.ruby
def test_a_ruby_worker_performs_a_job_with_an_id_and_keywords(
    r: redis.Redis, redis_url: str
) -> None:
    require_ruby_resque()
    handle = Resque(r).enqueue_to("peers", "Echo", "a", 1, locale="sv", n=2)
    assert handle is not None and handle.id is not None
    ruby(redis_url, "work", "peers")
    assert ran(r, "ruby") == [["a", 1, KEYWORDS]]
    assert r.llen("resque:failed") == 0


@pytest.mark.perl
@pytest.mark.parametrize("fork", [True, False], ids=["fork", "nofork"])
def test_a_perl_worker_performs_a_job_with_an_id_and_keywords(
    r: redis.Redis, redis_url: str, fork: bool
) -> None:
    require_perl_resque()
    Resque(r).enqueue_to("peers", "Echo", "a", 1, locale="sv", n=2)
    perl(redis_url, "work", "peers", *([] if fork else ["nofork"]))
    assert ran(r, "perl") == [["a", 1, KEYWORDS]]
    assert r.llen("resque:failed") == 0


@pytest.mark.ruby
def test_resque_web_shows_our_job_and_its_retry_drops_the_id(
    r: redis.Redis, redis_url: str, workers: Workers, processes: PeerProcesses
) -> None:
    require_ruby_resque()
    handle = Resque(r).enqueue_to("peers", "Flaky", "again")
    assert handle is not None
    web = ResqueWeb(processes, redis_url)
    assert "Flaky" in web.get("/queues/peers")
    python_worker(workers, "peers")  # fails: first try
    record = layout.decode(r.lindex("resque:failed", 0) or b"")
    assert record["payload"] == {"class": "Flaky", "args": ["again"], "id": handle.id}
    web.get("/failed/requeue/0")
    assert r.lrange("resque:queue:peers", 0, -1) == [b'{"class":"Flaky","args":["again"]}']
    python_worker(workers, "peers")
    assert ran(r, "python") == [["again"]]


@pytest.mark.ruby
def test_ruby_destroy_misses_a_job_with_an_id_and_removes_one_without(
    r: redis.Redis, redis_url: str
) -> None:
    require_ruby_resque()
    with_id = Resque(r).enqueue_to("peers", "Echo", "x", 1)
    Resque(r, job_ids=False).enqueue_to("peers", "Echo", "x", 1)
    assert ruby(redis_url, "destroy", "peers", "Echo", '["x", 1]').strip() == "1"
    assert with_id is not None
    assert r.lrange("resque:queue:peers", 0, -1) == [with_id.payload.encode()]


@pytest.mark.scheduler_peer
def test_resque_scheduler_misses_our_delayed_job_with_an_id_and_we_remove_it(
    r: redis.Redis, redis_url: str
) -> None:
    require_ruby_scheduler()
    client = Resque(r)
    client.enqueue_at_with_queue("peers", time.time() + 600, "Echo", "later", 7)
    removed = ruby(redis_url, "remove_delayed", "peers", "Echo", '["later", 7]', scheduler=True)
    assert removed.strip() == "0"
    assert client.count_all_scheduled_jobs() == 1
    assert client.remove_delayed_in_queue("Echo", "peers", "later", 7) == 1
    assert client.count_all_scheduled_jobs() == 0
