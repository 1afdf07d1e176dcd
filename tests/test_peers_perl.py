"""Against the real Perl Resque, driven in both directions: jobs enqueued by one side and
performed by the other, Perl's failures retried by us, and what Perl does to numbers it
re-encodes.

The Perl side is tests/perl/peers.pl; skipped with the reason where the peer is absent
(tests/support/peers.py).
"""

from __future__ import annotations

import json

import pytest
import redis
from support.peers import (
    PERL_EXACT,
    perl,
    python_worker,
    ran,
    require_perl_resque,
    resque_cli,
    typed,
)
from support.workerkit import Workers, wait_for

from resque import Resque

pytestmark = pytest.mark.perl


@pytest.fixture(autouse=True)
def _perl() -> None:
    require_perl_resque()


def test_a_job_perl_enqueued_runs_in_python(
    r: redis.Redis, redis_url: str, workers: Workers
) -> None:
    perl(redis_url, "enqueue", "peers", "Echo", json.dumps(PERL_EXACT))
    python_worker(workers, "peers")
    assert typed(ran(r, "python")) == typed([PERL_EXACT])


@pytest.mark.parametrize("fork", [True, False], ids=["fork", "nofork"])
def test_a_job_python_enqueued_runs_in_perl(r: redis.Redis, redis_url: str, fork: bool) -> None:
    Resque(r).enqueue_to("peers", "Echo", *PERL_EXACT)
    perl(redis_url, "work", "peers", *([] if fork else ["nofork"]))
    assert typed(ran(r, "perl")) == typed([PERL_EXACT])


def test_a_perl_failure_retried_by_us_is_performed_by_perl(r: redis.Redis, redis_url: str) -> None:
    perl(redis_url, "enqueue", "peers", "Flaky", '["from perl", {"n": 7}]')
    perl(redis_url, "work", "peers")  # fails: first try
    (entry,) = json.loads(resque_cli(redis_url, "failed", "list", "--json"))["entries"]
    resque_cli(redis_url, "failed", "retry", entry["id"])
    perl(redis_url, "work", "peers")
    assert ran(r, "perl") == [["from perl", {"n": 7}]]


def test_perl_rewrites_the_numbers_of_a_python_job_it_records_as_failed(
    r: redis.Redis, redis_url: str
) -> None:
    """Perl's JSON::XS writes 15 significant digits, whole floats as integers and integers
    outside 64 bits as strings: the failure record (and so any retry of it) carries other
    args than the job we queued. A limit of the peer, recorded here as measured."""
    Resque(r).enqueue_to("peers", "Flaky", 0.30000000000000004, 1.0, -0.0, 2**64 + 1,
                         -(2**63), 1e-7, 1e15)
    perl(redis_url, "work", "peers")
    (record,) = [json.loads(raw) for raw in r.lrange("resque:failed", 0, -1)]
    assert typed(record["payload"]["args"]) == typed(
        [0.3, 1, 0, "18446744073709551617", "-9223372036854775808", 1e-7, 1e15])


@pytest.mark.parametrize("mode", [(), ("--no-fork",)], ids=["fork", "nofork"])
def test_job_of_a_killed_python_worker_pruned_by_perl_is_failed_once_and_not_rerun(
    mode: tuple[str, ...], r: redis.Redis, redis_url: str, workers: Workers
) -> None:
    """Perl's start-up prune fails the job in ``worker:<id>`` ("Dirty exit"); our pruner,
    finding the dead worker's in-flight list later, must not requeue that job as well."""
    Resque(r).enqueue_to("slow", "Doze", 30)
    doomed = workers.start("slow", "--app", "peers_app", *mode, env={"RESQUE_REDIS": redis_url})
    wait_for(lambda: r.exists(f"resque:worker:{doomed.id}"), what=doomed.output())
    doomed.kill()  # SIGKILL to its whole session: the worker and any child or fork server
    perl(redis_url, "work", "slow")  # prunes every dead same-host worker
    (failure,) = [json.loads(raw) for raw in r.lrange("resque:failed", 0, -1)]
    assert (failure["error"], failure["worker"]) == ("Dirty exit", doomed.id)
    assert r.llen(f"resque:inflight:{doomed.id}") == 1  # Perl knows nothing of it
    r.delete("resque:pruning_dead_workers_in_progress")  # as if the lock had expired
    survivor = workers.start("other", "--app", "peers_app",
                             env={"RESQUE_REDIS": redis_url, "RESQUE_PRUNE_INTERVAL": "1"})
    wait_for(lambda: not r.exists(f"resque:inflight:{doomed.id}"), what=survivor.output())
    assert (r.llen("resque:queue:slow"), r.llen("resque:failed")) == (0, 1)
