"""Against the real Ruby resque 3.0 and resque-web, driven in both directions: jobs with args
of every JSON type enqueued by one side and performed by the other, our failures in
resque-web's pages and retried from there, Ruby's failures retried by us.

The Ruby side is tests/ruby/peers.rb (and resque-web's own executable); skipped with the
reason where the peer is absent (tests/support/peers.py).
"""

from __future__ import annotations

import html
import json
import random
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from support.peers import (
    EVERY_JSON_TYPE,
    PeerProcesses,
    ResqueWeb,
    python_worker,
    ran,
    require_ruby_resque,
    resque_cli,
    ruby,
    typed,
)
from support.workerkit import Workers, wait_for

from resque import Resque, layout

pytestmark = pytest.mark.ruby


@pytest.fixture(autouse=True)
def _ruby() -> None:
    require_ruby_resque()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[PeerProcesses]:
    started = PeerProcesses(tmp_path)
    yield started
    started.cleanup()


# --- jobs, both ways --------------------------------------------------------------------------


def test_a_job_ruby_enqueued_runs_in_python_with_every_json_type(
    r: redis.Redis, redis_url: str, workers: Workers
) -> None:
    ruby(redis_url, "enqueue", "peers", "Echo", json.dumps(EVERY_JSON_TYPE))
    python_worker(workers, "peers")
    assert typed(ran(r, "python")) == typed([EVERY_JSON_TYPE])


def test_a_job_python_enqueued_runs_in_ruby_with_every_json_type(
    r: redis.Redis, redis_url: str
) -> None:
    Resque(r).enqueue_to("peers", "Echo", *EVERY_JSON_TYPE)
    ruby(redis_url, "work", "peers")
    assert typed(ran(r, "ruby")) == typed([EVERY_JSON_TYPE])


def test_python_and_ruby_queue_the_same_bytes_for_every_json_type(
    r: redis.Redis, redis_url: str
) -> None:
    """Byte-exact payloads: Ruby's ``Job.destroy`` and resque-scheduler's ``timestamps:``
    keys find a job by its re-encoded bytes."""
    ruby(redis_url, "enqueue", "from_ruby", "Echo", json.dumps(EVERY_JSON_TYPE))
    Resque(r, job_ids=False).enqueue_to("from_python", "Echo", *EVERY_JSON_TYPE)
    assert r.lrange("resque:queue:from_python", 0, -1) == r.lrange("resque:queue:from_ruby", 0, -1)


def test_floats_of_every_magnitude_encode_as_ruby_encodes_them(
    r: redis.Redis, redis_url: str
) -> None:
    """Ruby writes ``1.0e-07`` where Python's repr is ``1e-07``, and switches to exponent
    notation from 1e15 (Python from 1e16): 3,000 floats, random bits and random decades."""
    rng = random.Random(20261130)
    floats = [struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
              for _ in range(1500)]
    floats += [rng.uniform(-10, 10) * 10.0 ** rng.randint(-30, 30) for _ in range(1500)]
    floats = [f for f in floats if f == f and abs(f) != float("inf")]
    ruby(redis_url, "enqueue", "from_ruby", "Echo", json.dumps(floats))
    assert layout.encode_job("Echo", floats).encode() == r.lindex("resque:queue:from_ruby", 0)


def test_ruby_destroys_a_python_job_whose_floats_ruby_writes_differently(
    r: redis.Redis, redis_url: str
) -> None:
    Resque(r, job_ids=False).enqueue_to("peers", "Echo", 1e-7, 2e20, 1e15)
    assert ruby(redis_url, "destroy", "peers", "Echo", "[1e-7, 2e20, 1e15]").strip() == "1"


# --- failures ---------------------------------------------------------------------------------


def failed_entries(page: str) -> list[dict[str, str]]:
    """The entries of resque-web's /failed page: class, exception, queue, worker, retried."""
    entries = []
    for item in page.split("<ul class='failed'>", 1)[1].split("</ul>", 1)[0].split("<li>")[1:]:
        def grab(pattern: str, item: str = item) -> str:
            found = re.search(pattern, item, re.S)
            return html.unescape(found.group(1).strip()) if found else ""
        entries.append({
            "class": grab(r"<dt>Class</dt>.*?<code>(.*?)</code>"),
            "exception": grab(r"<dt>Exception</dt>\s*<dd><code>(.*?)</code>"),
            "queue": grab(r"class='queue-tag'>(.*?)</b"),
            "worker": grab(r'<a href="/workers/([^"]*)"'),
            "retried": "yes" if "class='retried'" in item else "no",
        })
    return entries


def stats(page: str) -> dict[str, str]:
    """resque-web's /stats/resque table (``Resque.info``) as text."""
    return dict(re.findall(r"<th>\s*(\w+)\s*</th>\s*<td>\s*(.*?)\s*</td>", page, re.S))


def test_resque_web_lists_our_failures(
    r: redis.Redis, redis_url: str, workers: Workers, processes: PeerProcesses
) -> None:
    client = Resque(r)
    client.enqueue_to("peers", "Flaky", "first", 1)
    client.enqueue_to("peers", "Flaky", "second", {"ü": [2.5]})
    worker_id = python_worker(workers, "peers").id
    web = ResqueWeb(processes, redis_url)
    assert failed_entries(web.get("/failed")) == [
        {"class": "Flaky", "exception": "RuntimeError", "queue": "peers", "worker": worker_id,
         "retried": "no"},
    ] * 2
    assert stats(web.get("/stats/resque"))["failed"] == "2"


def test_resque_web_retries_our_failure_and_our_worker_performs_it(
    r: redis.Redis, redis_url: str, workers: Workers, processes: PeerProcesses
) -> None:
    Resque(r).enqueue_to("peers", "Flaky", "again", [1, None])
    python_worker(workers, "peers")
    web = ResqueWeb(processes, redis_url)
    web.get("/failed/requeue/0")  # the entry's Retry link; redirects to /failed
    assert r.lrange("resque:queue:peers", 0, -1) == [b'{"class":"Flaky","args":["again",[1,null]]}']
    python_worker(workers, "peers")
    assert ran(r, "python") == [["again", [1, None]]]
    assert [e["retried"] for e in failed_entries(web.get("/failed"))] == ["yes"]


def test_a_ruby_failure_retried_by_us_is_performed_by_ruby(r: redis.Redis, redis_url: str) -> None:
    ruby(redis_url, "enqueue", "peers", "Flaky", '["from ruby", 7.5]')
    ruby(redis_url, "work", "peers")  # fails: first try
    (entry,) = json.loads(resque_cli(redis_url, "failed", "list", "--json"))["entries"]
    resque_cli(redis_url, "failed", "retry", entry["id"])
    ruby(redis_url, "work", "peers")
    assert ran(r, "ruby") == [["from ruby", 7.5]]
    (failure,) = json.loads(ruby(redis_url, "failures"))
    assert layout.parse_time(failure["retried_at"]) is not None



def test_resque_web_renders_our_busy_workers_in_every_mode(
    r: redis.Redis, redis_url: str, workers: Workers, processes: PeerProcesses
) -> None:
    client = Resque(r)
    modes = {"fork": (), "nofork": ("--no-fork",), "threads": ("-c", "4")}
    busy = []
    for queue, options in modes.items():
        client.enqueue_to(queue, "Doze", 30)
        busy.append(workers.start(queue, "--app", "peers_app", *options,
                                  env={"RESQUE_REDIS": redis_url}))
    wait_for(lambda: len(client.working()) == 3, what="three busy workers")
    web = ResqueWeb(processes, redis_url)
    pages = ["/overview", "/working", "/workers", "/queues", "/queues/fork", "/failed",
             "/stats/resque", "/stats/redis", "/stats/keys"]
    for worker in busy:
        pages += [f"/workers/{worker.id}", f"/working/{worker.id}"]
    for page in pages:
        web.get(page)  # a page resque-web cannot render is a 500, and fails here
    working = web.get("/working")
    assert sorted(re.findall(r'<td class=\'where\'><a href="/workers/([^"]+)"', working)) == (
        sorted(worker.id for worker in busy))
    assert working.count("<code>Doze</code>") == 3
