"""Junk in Redis: one key of another type than Ruby's layout says (another tool wrote it, or a
mistake) must not take the dashboard or ``resque stats`` down. Every page renders what is
readable and names the bad key, as the worker reports such keys and goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis
from click.testing import CliRunner
from markupsafe import escape
from support.webkit import add_failure, add_worker, client

from resque import Resque
from resque.admin import Admin
from resque.cli import main

WORKER = "vm:1210:good"
PAGES = ("/", "/queues", "/queues/good", "/working", "/workers", "/workers/vm%3A1210%3Agood",
         "/failed", "/stats", "/stats/raw", "/stats/redis", "/stats/keys", "/delayed",
         "/schedule", "/retries")
DATA = ("/stats.txt", "/live.json?q=good&q=x", "/charts/throughput.svg", "/charts/depth.svg")

Junk = Callable[[redis.Redis], object]
CASES: dict[str, tuple[Junk, str]] = {
    "a queue that is a hash": (
        lambda r: (r.sadd("resque:queues", "x"), r.hset("resque:queue:x", "a", "b")),
        "resque:queue:x holds a hash, not a list"),
    "queues a string": (
        lambda r: (r.delete("resque:queues"), r.set("resque:queues", "s")),
        "resque:queues holds a string, not a set"),
    "workers a string": (
        lambda r: (r.delete("resque:workers"), r.set("resque:workers", "s")),
        "resque:workers holds a string, not a set"),
    "failed a hash": (
        lambda r: (r.delete("resque:failed"), r.hset("resque:failed", "a", "b")),
        "resque:failed holds a hash, not a list"),
    "failed_queues a string": (
        lambda r: r.set("resque:failed_queues", "s"),
        "resque:failed_queues holds a string, not a set"),
    "a failure list that is a string": (
        lambda r: (r.sadd("resque:failed_queues", "low_failed"), r.set("resque:low_failed", "s")),
        "resque:low_failed holds a string, not a list"),
    "pause-all-workers a list": (
        lambda r: r.rpush("resque:pause-all-workers", "true"),
        "resque:pause-all-workers holds a list, not a string"),
    "stat:processed not a number": (
        lambda r: r.set("resque:stat:processed", "lots"),
        "resque:stat:processed holds 'lots', not a whole number"),
    "stat:processed a list": (
        lambda r: (r.delete("resque:stat:processed"), r.rpush("resque:stat:processed", "1")),
        "resque:stat:processed holds a list, not a string"),
    "stat:failed not a number": (
        lambda r: r.set("resque:stat:failed", "1.5"),
        "resque:stat:failed holds '1.5', not a whole number"),
    "the heartbeat hash a string": (
        lambda r: (r.delete("resque:workers:heartbeat"), r.set("resque:workers:heartbeat", "s")),
        "resque:workers:heartbeat holds a string, not a hash"),
}


@pytest.fixture
def farm(r: redis.Redis, resque: Resque) -> Resque:
    """Readable data around the junk: a queue of two jobs, a working worker, a failure."""
    resque.enqueue_many("Hello", [[1], [2]], queue="good")
    r.set("resque:stat:processed", 7)
    add_worker(r, resque.keys, WORKER, job=("good", "Hello", [1]), heartbeat=time.time())
    add_failure(r, resque.keys, class_name="Broken", queue="good")
    return resque


@pytest.mark.parametrize("case", CASES)
def test_every_page_renders_what_it_can_and_names_the_bad_key(
    farm: Resque, r: redis.Redis, case: str
) -> None:
    make, problem = CASES[case]
    make(r)
    web = client(farm)
    for path in PAGES:
        response = web.get(path)
        # With no readable registry, no worker can be found: "no such worker" (and why).
        status = 404 if case == "workers a string" and path.startswith("/workers/") else 200
        assert response.status_code == status, path
        assert str(escape(problem)) in response.text, path
    for path in DATA:
        assert web.get(path).status_code == 200, path
    if "queues" not in problem:  # the good queue is still listed with its size
        assert '<td class="num" data-queue-size data-queue="good">2</td>' in web.get(
            "/queues").text
    assert Admin(farm).stats()["problems"] == [problem]


def test_a_queue_of_another_type_is_listed_without_a_size_and_can_be_removed(
    farm: Resque, r: redis.Redis
) -> None:
    CASES["a queue that is a hash"][0](r)
    web = client(farm)
    assert '<td class="num" data-queue-size data-queue="x">\u2014</td>' in web.get(
        "/queues").text
    page = web.get("/queues/x").text
    assert "<code>resque:queue:x</code> holds another type than a list" in page
    assert web.get("/live.json?q=good&q=x").json()["queues"] == {"good": 2}


def test_counts_skip_only_the_junk(farm: Resque, r: redis.Redis) -> None:
    CASES["a queue that is a hash"][0](r)
    CASES["stat:processed not a number"][0](r)
    info = Admin(farm).stats()
    assert (info["pending"], info["queues"], info["processed"], info["working"],
            info["failed"]) == (2, 2, 0, 1, 1)
    assert info["problems"] == ["resque:queue:x holds a hash, not a list",
                                "resque:stat:processed holds 'lots', not a whole number"]
    assert Admin(farm).queues() == {"good": 2}


def test_stats_without_junk_has_no_problems_key(farm: Resque) -> None:
    assert "problems" not in Admin(farm).stats()


@pytest.mark.parametrize("case", ["a queue that is a hash", "stat:processed not a number",
                                  "workers a string"])
def test_resque_stats_prints_one_line_about_the_junk(
    farm: Resque, r: redis.Redis, redis_url: str, case: str
) -> None:
    make, problem = CASES[case]
    make(r)
    result = CliRunner().invoke(main, ["stats", "--redis", redis_url],
                                env={"RESQUE_REDIS_WAIT": "0"})
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if problem in line]
    assert lines == [f"problems:         {problem}"]


def test_junk_no_page_expects_is_a_500_saying_what_redis_said_not_an_outage(
    farm: Resque, r: redis.Redis
) -> None:
    r.set("resque:delayed_queue_schedule", "not a sorted set")  # resque-scheduler's key
    response = client(farm).get("/delayed")
    assert response.status_code == 500
    assert "Redis refused a command" in response.text and "WRONGTYPE" in response.text
    assert "reach Redis" not in response.text
    assert response.headers["x-frame-options"] == "DENY"
