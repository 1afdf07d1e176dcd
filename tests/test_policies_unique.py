"""Unique jobs (resque/policies/unique.py): one queued or running copy per call, in resque-loner's
layout, in every execution mode, and nothing left locked when a worker dies."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import policyapp
import pytest
import redis
from support.peers import require_ruby_resque
from support.workerkit import Workers, wait_for

from resque import Resque, Unique, layout
from resque.policies import unique
from resque.policies.guard import Guard
from resque.store import Reserved
from resque.testing.clock import Clock
from resque.testing.fake import FakeResque

MODES = {"fork": (), "in-process": ("--no-fork",), "threads": ("-c", "2")}
FAST_PRUNE = {"RESQUE_PRUNE_INTERVAL": "1", "RESQUE_HEARTBEAT_EXPIRY": "5"}


@pytest.fixture
def client(r: redis.Redis, taskapp_redis: str) -> Resque:
    return Resque(r)


def lock_key(name: str, *args: Any) -> str:
    digest = unique.loner_digest(name, list(args))
    return f"resque:loners:queue:policies:job:{digest}"


def reports(r: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in r.lrange("taskapp:log", 0, -1)]


def reported(r: redis.Redis, tag: str) -> dict[str, Any]:
    return wait_for(lambda: next((x for x in reports(r) if x["tag"] == tag), None),
                    what=f"job {tag} to start")


def hold(r: redis.Redis, tag: str) -> None:
    """The job tagged ``tag`` waits at its gate until ``release``."""
    r.set(f"taskapp:hold:{tag}", 1)


def release(r: redis.Redis, tag: str) -> None:
    r.rpush(f"taskapp:gate:{tag}", 1)


# --- enqueueing ---------------------------------------------------------------------------


def test_a_duplicate_enqueue_queues_nothing_and_returns_the_first_jobs_handle(
        client: Resque, r: redis.Redis) -> None:
    first = policyapp.until_end.options(client=client).enqueue("a", 1)
    second = policyapp.until_end.options(client=client).enqueue("a", 1)
    assert first is not None and second is not None
    assert (second.duplicate, second.id, second.payload) == (True, first.id, first.payload)
    assert r.llen("resque:queue:policies") == 1


def test_other_arguments_are_another_job(client: Resque, r: redis.Redis) -> None:
    policyapp.until_end.options(client=client).enqueue("a", 1)
    other = policyapp.until_end.options(client=client).enqueue("a", 2)
    assert other is not None and not other.duplicate
    assert r.llen("resque:queue:policies") == 2


def test_the_lock_is_resque_loners_key_holding_the_payload_for_ttl(
        client: Resque, r: redis.Redis) -> None:
    handle = policyapp.until_start.options(client=client).enqueue("a", 1)
    assert handle is not None
    key = lock_key("policyapp.until_start", "a", 1)
    assert r.get(key) == handle.payload.encode()
    assert 24 * 3600 * 1000 - 5000 < r.pttl(key) <= 24 * 3600 * 1000
    assert json.loads(handle.payload)["unique"] == ["start", key.rsplit(":", 1)[1], 60.0,
                                                    86400.0]


def test_the_digest_is_the_one_ruby_computes_for_resque_loner() -> None:
    lib = require_ruby_resque()
    args = ["a", 1, 2.5, {"b": 1, "a": [True, None]}]
    script = ('require "resque"; require "digest/md5"; args = JSON.parse(ARGV[1]); '
              'args.map! { |a| a.is_a?(Hash) ? a.sort : a }; '
              'print Digest::MD5.hexdigest(Resque.encode(class: ARGV[0], args: args))')
    done = subprocess.run(["ruby", "-I", lib, "-e", script, "Sync::Job", json.dumps(args)],
                          capture_output=True, text=True, timeout=60, check=True)
    assert unique.loner_digest("Sync::Job", args) == done.stdout


def test_a_key_the_job_computes_names_the_lock(client: Resque, r: redis.Redis) -> None:
    policyapp.per_account.options(client=client).enqueue("a", 7)
    again = policyapp.per_account.options(client=client).enqueue("b", 7)
    assert again is not None and again.duplicate
    assert r.exists("resque:loners:queue:policies:job:account:7") == 1
    assert r.llen("resque:queue:policies") == 1


def test_a_per_call_unique_lock_applies_to_that_call_only(client: Resque,
                                                          r: redis.Redis) -> None:
    once = policyapp.plain.options(client=client, unique=Unique(until="start"))
    once.enqueue("a", 1)
    assert once.enqueue("a", 1) is not None
    policyapp.plain.options(client=client).enqueue("a", 1)
    assert r.llen("resque:queue:policies") == 2


def test_a_tracked_duplicate_writes_no_status_record(client: Resque, r: redis.Redis) -> None:
    first = policyapp.until_end.options(client=client, status=True).enqueue("a", 1)
    second = policyapp.until_end.options(client=client, status=True).enqueue("a", 1)
    assert first is not None and second is not None and second.tracked
    assert second.status() == "queued"
    assert r.zcard("resque:_statuses") == 1


def test_a_lock_of_resque_loners_own_value_drops_the_enqueue(client: Resque,
                                                             r: redis.Redis) -> None:
    r.set(lock_key("policyapp.until_start", "a", 1), "1")
    assert policyapp.until_start.options(client=client).enqueue("a", 1) is None
    assert r.llen("resque:queue:policies") == 0


def test_a_class_declares_its_lock_as_a_task_does(client: Resque, r: redis.Redis) -> None:
    client.enqueue(policyapp.UniqueClass, "a", 1)
    again = client.enqueue(policyapp.UniqueClass, "a", 1)
    assert again is not None and again.duplicate
    assert r.llen("resque:queue:policies") == 1


def test_unique_refuses_a_nonsense_declaration() -> None:
    with pytest.raises(ValueError, match="until"):
        Unique(until="later")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        Unique(ttl=0)


# --- the scripts' refusal paths -----------------------------------------------------------


def test_unique_push_refuses_a_held_lock_and_writes_nothing(r: redis.Redis) -> None:
    script = r.register_script(unique.PUSH_SCRIPT)
    r.set("lock", "holder")
    held = script(keys=["lock", "resque:queues", "resque:queue:q", "resque:wake:q"],
                  args=[1000, "q", '{"class":"X","args":[]}'])
    assert (held, r.get("lock"), r.exists("resque:queues", "resque:queue:q")) == (
        b"holder", b"holder", 0)


def test_unique_push_on_a_lock_key_of_another_type_writes_nothing(r: redis.Redis) -> None:
    script = r.register_script(unique.PUSH_SCRIPT)
    r.rpush("lock", "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        script(keys=["lock", "resque:queues", "resque:queue:q", "resque:wake:q"],
               args=[1000, "q", '{"class":"X","args":[]}'])
    assert r.exists("resque:queues", "resque:queue:q") == 0


@pytest.mark.parametrize("action", ["start", "hold", "release", "requeue"])
def test_unique_lock_leaves_another_jobs_lock_alone(r: redis.Redis, action: str) -> None:
    script = r.register_script(unique.LOCK_SCRIPT)
    r.set("lock", '{"class":"X","args":[],"id":"other"}', px=50_000)
    acted = script(keys=["lock"], args=[action, "mine", '{"id":"mine"}', 1000])
    assert (acted, r.get("lock"), r.pttl("lock") > 40_000) == (
        0, b'{"class":"X","args":[],"id":"other"}', True)


@pytest.mark.parametrize("action", ["start", "release", "requeue"])
def test_unique_lock_does_not_recreate_a_lock_that_is_gone(r: redis.Redis, action: str) -> None:
    script = r.register_script(unique.LOCK_SCRIPT)
    assert script(keys=["lock"], args=[action, "mine", "payload", 1000]) == 0
    assert r.exists("lock") == 0


def test_a_guard_renews_a_lease_until_the_job_leaves(client: Resque, r: redis.Redis) -> None:
    handle = policyapp.until_end.options(client=client).enqueue("a", 1)
    assert handle is not None
    guard = Guard(r, client.keys, "host:1:policies")
    raw = handle.payload.encode()
    admission = guard.admit(Reserved("policies", raw, "1:1"), layout.decode(raw),
                            policyapp.until_end)
    assert admission is not None
    key = lock_key("policyapp.until_end", "a", 1)
    time.sleep(1.5)  # a lease of 1 s, renewed every third of it
    assert r.get(key) == raw
    guard.leave(admission, "ok")
    assert r.exists(key) == 0


# --- in the worker ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_until_end_holds_while_the_job_runs_and_frees_when_it_ends(
        client: Resque, r: redis.Redis, workers: Workers, mode: str) -> None:
    hold(r, "a")
    policyapp.until_end.options(client=client).enqueue("a", 1)
    worker = workers.start("policies", "--app", "policyapp", *MODES[mode])
    reported(r, "a")
    again = policyapp.until_end.options(client=client).enqueue("a", 1)
    assert again is not None and again.duplicate
    release(r, "a")
    key = lock_key("policyapp.until_end", "a", 1)
    wait_for(lambda: r.exists(key) == 0, what="the lock to go when the job ends")
    after = policyapp.until_end.options(client=client).enqueue("a", 1)
    assert after is not None and not after.duplicate
    wait_for(lambda: len(reports(r)) == 2, what="the second job")
    assert worker.alive()


def test_until_end_in_an_asyncio_job_on_a_concurrent_worker(
        client: Resque, r: redis.Redis, workers: Workers) -> None:
    hold(r, "a")
    policyapp.async_until_end.options(client=client).enqueue("a", 1)
    workers.start("policies", "--app", "policyapp", "-c", "2")
    reported(r, "a")
    again = policyapp.async_until_end.options(client=client).enqueue("a", 1)
    assert again is not None and again.duplicate
    release(r, "a")
    key = lock_key("policyapp.async_until_end", "a", 1)
    wait_for(lambda: r.exists(key) == 0, what="the lock to go when the job ends")


@pytest.mark.parametrize("mode", MODES)
def test_until_start_frees_the_lock_as_the_job_starts(
        client: Resque, r: redis.Redis, workers: Workers, mode: str) -> None:
    hold(r, "a")
    policyapp.until_start.options(client=client).enqueue("a", 1)
    workers.start("policies", "--app", "policyapp", *MODES[mode])
    reported(r, "a")
    again = policyapp.until_start.options(client=client).enqueue("a", 1)
    assert again is not None and not again.duplicate
    # Queued, or (a -c 2 worker has a free thread) already started: two copies of the job.
    wait_for(lambda: r.llen("resque:queue:policies") + len(reports(r)) == 2,
             what="the second copy to be queued or started")
    release(r, "a")


def test_a_window_lock_outlives_the_job_until_its_ttl(
        client: Resque, r: redis.Redis, workers: Workers) -> None:
    policyapp.window.options(client=client).enqueue("a", 1)
    workers.run("policies", "--app", "policyapp", "--no-fork")
    again = policyapp.window.options(client=client).enqueue("a", 1)
    assert again is not None and again.duplicate
    key = lock_key("policyapp.window", "a", 1)
    wait_for(lambda: r.exists(key) == 0, timeout=5, what="the window to end")
    later = policyapp.window.options(client=client).enqueue("a", 1)
    assert later is not None and not later.duplicate


def test_a_job_a_shutdown_requeues_keeps_its_lock_for_its_ttl(
        client: Resque, r: redis.Redis, workers: Workers) -> None:
    hold(r, "a")
    policyapp.until_end.options(client=client).enqueue("a", 1)
    worker = workers.start("policies", "--app", "policyapp", "--no-fork",
                           env={"TERM_CHILD": "1"})
    reported(r, "a")
    worker.signal(15)
    assert worker.wait() == 0
    key = lock_key("policyapp.until_end", "a", 1)
    assert r.llen("resque:queue:policies") == 1
    assert r.pttl(key) > 24 * 3600 * 1000 - 60_000


def test_a_sigkilled_worker_leaves_nothing_locked_and_its_job_runs_once_recovered(
        client: Resque, r: redis.Redis, workers: Workers) -> None:
    hold(r, "a")
    policyapp.until_end.options(client=client).enqueue("a", 1)
    worker = workers.start("policies", "--app", "policyapp", env=FAST_PRUNE)
    reported(r, "a")
    worker.kill()
    key = lock_key("policyapp.until_end", "a", 1)
    wait_for(lambda: r.exists(key) == 0, timeout=5, what="the lease (1 s) to expire")
    r.delete("taskapp:hold:a")
    workers.start("policies", "--app", "policyapp", env=FAST_PRUNE)  # requeues the dead's job
    wait_for(lambda: len(reports(r)) == 2, what="the recovered job to run")
    wait_for(lambda: r.exists(key) == 0, what="its lock to go as it ends")
    assert [x["tag"] for x in reports(r)] == ["a", "a"]
    assert (r.llen("resque:queue:policies"), r.llen("resque:failed")) == (0, 0)


# --- the test plugin's fake mode ------------------------------------------------------------


def test_fake_mode_refuses_a_duplicate_as_redis_would(resque_fake: FakeResque,
                                                     taskapp_redis: str) -> None:
    first = policyapp.until_end.enqueue("a", 1)
    again = policyapp.until_end.enqueue("a", 1)
    assert first is not None and again is not None
    assert (again.duplicate, again.id, len(resque_fake.jobs(pending=True))) == (True, first.id, 1)
    resque_fake.drain()
    after = policyapp.until_end.enqueue("a", 1)
    assert after is not None and not after.duplicate


def test_fake_mode_counts_a_window_on_its_clock(resque_fake: FakeResque, resque_clock: Clock,
                                                taskapp_redis: str) -> None:
    policyapp.window.enqueue("a", 1)
    resque_fake.drain()
    again = policyapp.window.enqueue("a", 1)
    assert again is not None and again.duplicate
    resque_clock.advance(2)
    later = policyapp.window.enqueue("a", 1)
    assert later is not None and not later.duplicate


@pytest.mark.parametrize("mode", MODES)
def test_a_unique_job_with_a_retry_runs_its_second_attempt_and_leaves_no_lock(
    client: Resque, r: redis.Redis, workers: Workers, mode: str
) -> None:
    """A failed attempt's lock is given back as its retry is queued; the retry runs (it
    takes the lock again) and, once it ends, nothing is held and nothing failed."""
    client.enqueue(policyapp.unique_flaky, "u1", 7)
    workers.run("policies", "--app", "policyapp", *MODES[mode])
    assert ([(x["tag"], x["attempt"]) for x in reports(r)], r.llen("resque:failed"),
            r.exists(lock_key("policyapp.unique_flaky", "u1", 7))) == ([("u1", 1), ("u1", 2)], 0, 0)
