"""Ruby's and Perl's start-up pruning spare our live workers, in every execution mode.

A Ruby worker starting on this host unregisters every same-host worker with its queues whose
pid shows no ``resque-<digit>`` process title in ``ps``; a Perl worker does the same for any
same-host worker whose title lacks ``resque``. Each test plants a dead worker beside ours, so
it also shows that the peer did prune: the dead one goes, ours stays and keeps working. Ruby
also prunes, on any host, workers whose heartbeat is older than 5 minutes: it must read ours.
"""

from __future__ import annotations

import json
import subprocess

import pytest
import redis
from support.peers import perl, ran, require_perl_resque, require_ruby_resque, ruby
from support.workerkit import HOST, Workers, wait_for

from resque import Resque, layout

pytestmark = [pytest.mark.ruby, pytest.mark.perl]

PRUNE_LOCK = "resque:pruning_dead_workers_in_progress"
MODES = {"fork": (), "no-fork": ("--no-fork",), "threads": ("-c", "4")}


@pytest.fixture
def workers(workers: Workers) -> Workers:
    """conftest's workers, where both peers are installed (skips otherwise)."""
    require_ruby_resque()
    require_perl_resque()
    return workers


def plant_dead_worker(r: redis.Redis, queues: str) -> str:
    """Register a worker of this host whose process has exited, as a crash leaves it."""
    process = subprocess.Popen(["true"])
    process.wait()
    worker_id = f"{HOST}:{process.pid}:{queues}"
    r.sadd("resque:workers", worker_id)
    r.set(f"resque:worker:{worker_id}:started", layout.started_at())
    return worker_id


@pytest.mark.parametrize("mode", MODES.values(), ids=MODES.keys())
def test_ruby_and_perl_pruning_spare_our_live_worker(
    mode: tuple[str, ...], r: redis.Redis, redis_url: str, workers: Workers
) -> None:
    # Our own pruner only at start-up, so that only the peers can remove the planted worker.
    ours = workers.start("high,low", "--app", "peers_app", *mode,
                         env={"RESQUE_REDIS": redis_url, "RESQUE_PRUNE_INTERVAL": "3600"})
    wait_for(lambda: r.sismember("resque:workers", ours.id) and r.exists(PRUNE_LOCK),
             what=f"our worker registered and its start-up prune done:\n{ours.output()}")
    for peer in (ruby, perl):
        plant_dead_worker(r, "high,low")
        r.delete(PRUNE_LOCK)  # Ruby skips its prune while another pruner's lock is held
        peer(redis_url, "work", "high,low")
        assert r.smembers("resque:workers") == {ours.id.encode()}, peer.__name__
    Resque(r).enqueue_to("high", "Echo", "after both prunes")
    wait_for(lambda: ran(r, "python"), what=f"the job to run:\n{ours.output()}")
    assert ran(r, "python") == [["after both prunes"]]


def test_ruby_reads_our_heartbeats_and_prunes_a_silent_worker_on_another_host(
    r: redis.Redis, redis_url: str
) -> None:
    """Ruby's heartbeat pruning (any host, any queues) parses the times we write: a worker
    silent for 10 minutes is pruned, its job failed; one that beat just now is left alone."""
    require_ruby_resque()
    seconds, _ = r.time()
    client = Resque(r)
    for worker_id, age in (("elsewhere:4242:mail", 600), ("elsewhere:4343:mail", 0)):
        r.sadd("resque:workers", worker_id)
        r.hset("resque:workers:heartbeat", worker_id, layout.heartbeat_at(seconds - age))
        r.set(f"resque:worker:{worker_id}",
              layout.working_on("mail", layout.encode_job("Echo", [age])))
    ruby(redis_url, "work", "other")
    failures = [json.loads(raw) for raw in r.lrange("resque:failed", 0, -1)]
    assert (client.workers(), [(f["exception"], f["worker"]) for f in failures]) == (
        ["elsewhere:4343:mail"], [(layout.PRUNE_DIRTY_EXIT, "elsewhere:4242:mail")])
