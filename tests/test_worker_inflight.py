"""Jobs our workers hold in flight, where Ruby's tools show one job per worker
(resque/admin/inflight.py): ``resque workers`` and the dashboard list every one, in-flight
lists of workers no longer registered included, and ``resque recover`` gives them back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result
from support.peers import require_ruby_resque, ruby
from support.webkit import client
from support.workerkit import WorkerProcess, Workers, notes, push, queued, wait_for

from resque import Resque, layout
from resque.cli import main

Run = Callable[..., Result]


@pytest.fixture
def run(redis_url: str) -> Run:
    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, [*args, "--redis", redis_url])

    return invoke


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def sleep_job(tag: str) -> bytes:
    return layout.encode_job("Sleep", [30, tag]).encode()


def start_busy(r: redis.Redis, workers: Workers) -> WorkerProcess:
    """A ``-c 3`` worker running three long jobs, j0 reserved first."""
    for i in range(3):
        push(r, "low", "Sleep", 30, f"j{i}")
    worker = workers.start("low", "-c", "3")
    wait_for(lambda: len(notes(r)) == 3, what="the three jobs to start")
    return worker


def test_resque_workers_lists_every_job_a_concurrent_worker_holds(
    r: redis.Redis, workers: Workers, run: Run
) -> None:
    worker = start_busy(r, workers)
    (info,) = as_json(run("workers", "--json"))
    assert info["job"]["payload"] == json.loads(sleep_job("j0"))  # Ruby's record: the oldest
    assert info["inflight"] == [{"queue": "low", "payload": json.loads(sleep_job(f"j{i}"))}
                                for i in range(3)]
    row = next(line for line in run("workers").stdout.splitlines() if line.startswith(worker.id))
    assert row.split()[:7] == [worker.id, "working", "low", "Sleep", "on", "low", "since"]
    assert row.split()[8] == "3"  # IN FLIGHT


def test_the_dashboard_worker_page_lists_the_jobs_in_flight(
    r: redis.Redis, workers: Workers
) -> None:
    worker = start_busy(r, workers)
    page = client(Resque(r)).get(f"/workers/{worker.id}").text
    assert page.count('<table class="grid inflight">') == 1
    table = page.split('<table class="grid inflight">')[1].split("</table>")[0]
    rows = table.split("<tbody>")[1].split("<tr>")[1:]
    assert [f"[30, &#34;j{i}&#34;]" in row for i, row in enumerate(rows)] == [True] * 3


def test_a_dead_workers_jobs_are_recovered_by_hand_in_their_order(
    r: redis.Redis, workers: Workers, run: Run
) -> None:
    worker = start_busy(r, workers)
    worker.kill()
    result = run("recover", worker.id)
    assert (result.exit_code, result.stdout) == (
        0, f"{worker.id}: recovered, 3 job(s) requeued or failed\n")
    assert queued(r, "low") == [sleep_job(f"j{i}") for i in range(3)]
    assert not r.exists(f"resque:inflight:{worker.id}", f"resque:worker:{worker.id}")
    assert not r.sismember("resque:workers", worker.id)


def test_recover_refuses_a_live_worker_unless_forced(
    r: redis.Redis, workers: Workers, run: Run
) -> None:
    worker = start_busy(r, workers)
    refused = run("recover", worker.id)
    assert (refused.exit_code, refused.stdout) == (1, (
        f"{worker.id}: not recovered: its pid {worker.pid} is a live resque process on this "
        "host: its jobs would run twice; stop it, or --force\n"))
    assert r.llen(f"resque:inflight:{worker.id}") == 3
    assert as_json(run("recover", worker.id, "--force", "--json")) == [
        {"worker": worker.id, "count": 3, "refused": None}]


def test_recover_refuses_a_worker_of_another_host_with_a_fresh_heartbeat(
    r: redis.Redis, run: Run
) -> None:
    seconds, _ = r.time()
    r.sadd("resque:workers", "elsewhere:42:low")
    r.set("resque:worker:elsewhere:42:low", layout.working_on("low", sleep_job("a").decode()))
    r.hset("resque:workers:heartbeat", "elsewhere:42:low", layout.heartbeat_at(seconds - 10))
    r.rpush("resque:inflight:elsewhere:42:low", layout.encode(["low", sleep_job("a").decode(),
                                                               "1:1"]))
    r.sadd("resque:inflight", "elsewhere:42:low")
    assert run("recover", "elsewhere:42:low").exit_code == 1
    assert as_json(run("recover", "elsewhere:42:low", "--expiry", "5", "--json")) == [
        {"worker": "elsewhere:42:low", "count": 1, "refused": None}]
    assert queued(r, "low") == [sleep_job("a")]


@pytest.mark.ruby
def test_ruby_pruning_a_dead_concurrent_worker_leaves_jobs_we_show_and_recover(
    r: redis.Redis, workers: Workers, run: Run, redis_url: str
) -> None:
    """Ruby unregisters our dead worker and fails the one job its record shows; the other
    two stay in our in-flight list, which no Ruby tool shows: ours list and requeue them."""
    require_ruby_resque()
    worker = start_busy(r, workers)
    worker.kill()
    r.delete("resque:pruning_dead_workers_in_progress")
    ruby(redis_url, "work", "low")
    assert not r.sismember("resque:workers", worker.id)
    (failure,) = [json.loads(raw) for raw in r.lrange("resque:failed", 0, -1)]
    assert failure["payload"] == json.loads(sleep_job("j0"))
    text = run("workers").stdout
    assert text.splitlines()[-1] == (
        f"  {worker.id}: 3 job(s) (the first, its record's job, was failed by the pruner that "
        "unregistered it); to requeue: Sleep on low, Sleep on low")
    (orphan,) = as_json(run("workers", "--json"))
    assert (orphan["state"], orphan["first_failed"], len(orphan["inflight"])) == (
        "unregistered", True, 3)
    assert as_json(run("recover", worker.id, "--json")) == [
        {"worker": worker.id, "count": 2, "refused": None}]
    assert queued(r, "low") == [sleep_job("j1"), sleep_job("j2")]
    assert r.llen("resque:failed") == 1


def test_an_in_flight_list_without_its_worker_is_shown_on_the_cli_and_the_dashboard(
    r: redis.Redis, run: Run
) -> None:
    """What a Ruby pruner leaves of our dead worker: no registration, no record, the list."""
    for i in range(2):
        r.rpush("resque:inflight:gone:7:low",
                layout.encode(["low", sleep_job(f"j{i}").decode(), f"1:{i + 1}"]))
    r.sadd("resque:inflight", "gone:7:low")
    assert run("workers").stdout.splitlines()[-1] == (
        "  gone:7:low: 2 job(s) (the first, its record's job, was failed by the pruner that "
        "unregistered it); to requeue: Sleep on low")
    page = client(Resque(r)).get("/workers").text
    banner = page.split('<div class="banner warn" id="orphans">')[1].split("</div>")[0]
    assert "<code>gone:7:low</code>: 2 job(s)" in banner
