"""Concurrency and rate limits (resque/policies/limits.py): a refused job goes to the delayed
schedule, not back to the head of its queue; places are leases a dead worker gives back."""

from __future__ import annotations

import json
import time
from typing import Any

import policyapp
import pytest
import redis
from support.replies import texts
from support.workerkit import Workers, wait_for

from resque import Limit, Resque, layout
from resque.policies import limits

MODES = {"fork": (), "in-process": ("--no-fork",), "threads": ("-c", "2")}
FAST_PRUNE = {"RESQUE_PRUNE_INTERVAL": "1", "RESQUE_HEARTBEAT_EXPIRY": "5"}
RUNNING = "resque:limits:policyapp.capped:running"


@pytest.fixture
def client(r: redis.Redis, taskapp_redis: str) -> Resque:
    return Resque(r)


def tags(r: redis.Redis) -> list[str]:
    return [json.loads(raw)["tag"] for raw in r.lrange("taskapp:log", 0, -1)]


def hold(r: redis.Redis, tag: str) -> None:
    r.set(f"taskapp:hold:{tag}", 1)


def release(r: redis.Redis, tag: str) -> None:
    r.rpush(f"taskapp:gate:{tag}", 1)


def due_times(r: redis.Redis) -> list[str]:
    return texts(r.zrange("resque:delayed_queue_schedule", 0, -1))


def delayed_items(r: redis.Redis) -> list[dict[str, Any]]:
    found = []
    for ts in due_times(r):
        found += [json.loads(raw) for raw in r.lrange(f"resque:delayed:{ts}", 0, -1)]
    return found


def moved(client: Resque) -> bool:
    """What a scheduler does: queue the delayed jobs that are due. False, to keep waiting."""
    client.delayed.move_due(time.time() + 0.5)
    return False


def test_a_limit_needs_a_cap_or_a_rate() -> None:
    with pytest.raises(ValueError, match="concurrency=N"):
        Limit()
    with pytest.raises(ValueError, match="whole number"):
        Limit(concurrency=0)


# --- the scripts' refusal paths -----------------------------------------------------------


def acquire(r: redis.Redis, member: str, limit: Limit) -> int:
    script = r.register_script(limits.ACQUIRE_SCRIPT)
    return int(script(keys=["running", "starts"], args=[member, *limit.arguments()]))


def test_acquire_at_the_cap_refuses_and_writes_nothing(r: redis.Redis) -> None:
    limit = Limit(concurrency=1)
    assert acquire(r, "a", limit) == 0
    assert acquire(r, "b", limit) == limits.AT_CAP
    assert (r.zrange("running", 0, -1), r.exists("starts")) == ([b"a"], 0)


def test_acquire_at_the_rate_says_how_long_until_the_window_has_room(r: redis.Redis) -> None:
    limit = Limit(rate=2, per=10.0)
    assert [acquire(r, m, limit) for m in ("a", "b")] == [0, 0]
    wait = acquire(r, "c", limit)
    assert 9000 < wait <= 10000
    assert (r.zcard("starts"), r.exists("running")) == (2, 0)


def test_acquire_counts_no_place_whose_lease_ended(r: redis.Redis) -> None:
    r.zadd("running", {"dead": 1})  # a lease that ended in 1970: its worker died
    assert acquire(r, "a", Limit(concurrency=1)) == 0
    assert r.zrange("running", 0, -1) == [b"a"]


def test_acquire_refused_by_the_rate_takes_no_place_under_the_cap(r: redis.Redis) -> None:
    limit = Limit(concurrency=5, rate=1, per=10.0)
    assert acquire(r, "a", limit) == 0
    assert acquire(r, "b", limit) > 0
    assert r.zrange("running", 0, -1) == [b"a"]


def test_hold_does_not_bring_back_a_place_that_lapsed(r: redis.Redis) -> None:
    script = r.register_script(limits.HOLD_SCRIPT)
    assert script(keys=["running"], args=["gone", 1000]) == 0
    assert r.exists("running") == 0


def test_defer_of_an_entry_no_longer_in_flight_writes_nothing(r: redis.Redis) -> None:
    script = r.register_script(limits.DEFER_SCRIPT)
    r.rpush("inflight", '["q","{}","1:1"]')
    r.set("record", "x")
    moved = script(keys=["inflight", "record", "delayed:9", "timestamps:i", "schedule"],
                   args=["1:2", "item", "delayed:9", 9])
    assert (moved, r.llen("inflight"), r.exists("record", "delayed:9", "schedule")) == (0, 1, 1)


def test_defer_moves_the_entry_to_the_schedule_in_resque_schedulers_layout(
        r: redis.Redis) -> None:
    script = r.register_script(limits.DEFER_SCRIPT)
    r.rpush("inflight", '["q","{}","1:1"]', '["q","{}","1:2"]')
    r.set("record", "x")
    script(keys=["inflight", "record", "delayed:9", "timestamps:item", "schedule"],
           args=["1:1", "item", "delayed:9", 9])
    assert r.lrange("inflight", 0, -1) == [b'["q","{}","1:2"]']
    assert (r.lrange("delayed:9", 0, -1), r.smembers("timestamps:item"),
            r.zrange("schedule", 0, -1, withscores=True)) == ([b"item"], {b"delayed:9"},
                                                               [(b"9", 9.0)])
    script(keys=["inflight", "record", "delayed:9", "timestamps:item", "schedule"],
           args=["1:2", "item", "delayed:9", 9])
    assert r.exists("inflight", "record") == 0  # the record goes with the last entry


# --- in the worker ------------------------------------------------------------------------


def start_pair(workers: Workers, mode: str) -> None:
    """Two job places on the farm: two workers, or one worker with two threads."""
    count = 1 if mode == "threads" else 2
    for _ in range(count):
        workers.start("policies", "--app", "policyapp", *MODES[mode])


@pytest.mark.parametrize("mode", MODES)
def test_a_job_over_its_cap_is_deferred_and_the_queue_behind_it_runs(
        client: Resque, r: redis.Redis, workers: Workers, mode: str) -> None:
    hold(r, "first")
    policyapp.capped.options(client=client).enqueue("first", 1)
    start_pair(workers, mode)
    wait_for(lambda: tags(r) == ["first"], what="the first job to run")
    policyapp.capped.options(client=client).enqueue("second", 2)
    policyapp.plain.options(client=client).enqueue("plain", 3)
    wait_for(lambda: "plain" in tags(r), what="the plain job behind the refused one")
    wait_for(lambda: len(delayed_items(r)) == 1, what="the refused job to be deferred")
    assert delayed_items(r)[0]["args"] == ["second", 2]
    assert (r.zcard(RUNNING), r.llen("resque:queue:policies")) == (1, 0)
    release(r, "first")
    wait_for(lambda: r.zcard(RUNNING) == 0, what="the place to be given back")
    wait_for(lambda: moved(client) or tags(r)[-1:] == ["second"], timeout=10,
             what="the deferred job to run once due")
    assert sorted(tags(r)) == ["first", "plain", "second"]
    assert r.llen("resque:failed") == 0


def test_an_asyncio_job_over_its_cap_is_deferred(
        client: Resque, r: redis.Redis, workers: Workers) -> None:
    hold(r, "first")
    policyapp.async_capped.options(client=client).enqueue("first", 1)
    workers.start("policies", "--app", "policyapp", "-c", "2")
    wait_for(lambda: tags(r) == ["first"], what="the first job to run")
    policyapp.async_capped.options(client=client).enqueue("second", 2)
    wait_for(lambda: len(delayed_items(r)) == 1, what="the refused job to be deferred")
    release(r, "first")
    wait_for(lambda: moved(client) or tags(r) == ["first", "second"], timeout=10,
             what="the deferred job to run once due")


def test_a_limit_per_key_limits_each_customer_alone(
        client: Resque, r: redis.Redis, workers: Workers) -> None:
    hold(r, "a")
    policyapp.per_customer.options(client=client).enqueue("a", 1)
    workers.start("policies", "--app", "policyapp", "-c", "3")
    wait_for(lambda: tags(r) == ["a"], what="customer 1's job")
    policyapp.per_customer.options(client=client).enqueue("b", 1)
    policyapp.per_customer.options(client=client).enqueue("c", 2)
    wait_for(lambda: "c" in tags(r), what="customer 2's job, not limited by customer 1's")
    wait_for(lambda: len(delayed_items(r)) == 1, what="customer 1's second job deferred")
    assert r.zcard("resque:limits:policyapp.per_customer:1:running") == 1
    release(r, "a")


def test_starts_beyond_the_rate_wait_for_the_window(
        client: Resque, r: redis.Redis, workers: Workers) -> None:
    for n in range(3):
        policyapp.rated.options(client=client).enqueue(f"job{n}", n)
    begun = time.time()
    worker = workers.run("policies", "--app", "policyapp", "--no-fork")
    assert tags(r) == ["job0", "job1"]
    [deferred] = delayed_items(r)
    assert deferred["args"] == ["job2", 2]
    [due] = [int(ts) for ts in due_times(r)]
    assert begun + 2 < due <= time.time() + 4
    assert client.stat("processed") == 2  # a deferred job is not counted
    assert "deferred" in worker.output()


def test_a_class_declares_its_limit_as_a_task_does(
        client: Resque, r: redis.Redis, workers: Workers) -> None:
    r.zadd("resque:limits:policyapp.CappedClass:running", {"elsewhere": time.time() * 1000
                                                           + 60_000})
    client.enqueue(policyapp.CappedClass, "a", 1)
    workers.run("policies", "--app", "policyapp", "--no-fork")
    assert (tags(r), len(delayed_items(r))) == ([], 1)


def test_a_sigkilled_worker_gives_its_place_back_within_the_lease(
        client: Resque, r: redis.Redis, workers: Workers) -> None:
    hold(r, "first")
    policyapp.capped.options(client=client).enqueue("first", 1)
    worker = workers.start("policies", "--app", "policyapp", env=FAST_PRUNE)
    wait_for(lambda: tags(r) == ["first"], what="the first job to run")
    time.sleep(1.0)  # past the first lease: renewed, so still held
    assert r.zcard(RUNNING) == 1
    worker.kill()
    r.delete("taskapp:hold:first")
    policyapp.capped.options(client=client).enqueue("second", 2)
    workers.start("policies", "--app", "policyapp", env=FAST_PRUNE)
    wait_for(lambda: moved(client) or sorted(tags(r)) == ["first", "first", "second"],
             timeout=20,
             what="the second job and the recovered first one")
    wait_for(lambda: r.zcard(RUNNING) == 0, what="no place left held")
    assert (r.llen("resque:queue:policies"), r.llen("resque:failed")) == (0, 0)


def test_the_payload_of_a_deferred_job_is_kept_byte_for_byte(
        client: Resque, r: redis.Redis, workers: Workers) -> None:
    r.zadd(RUNNING, {"elsewhere": time.time() * 1000 + 60_000})
    handle = policyapp.capped.options(client=client).enqueue("a", 1)
    assert handle is not None
    workers.run("policies", "--app", "policyapp", "--no-fork")
    [ts] = due_times(r)
    item = texts(r.lrange(f"resque:delayed:{ts}", 0, -1))[0]
    assert item == layout.delayed_item_of(handle.payload, "policies")


def test_a_key_function_that_raises_fails_the_job_with_its_error(
        client: Resque, r: redis.Redis, workers: Workers) -> None:
    policyapp.bad_key.options(client=client).enqueue("a", 1)
    workers.run("policies", "--app", "policyapp", "--no-fork")
    [failure] = [json.loads(raw) for raw in texts(r.lrange("resque:failed", 0, -1))]
    assert (failure["exception"], tags(r), client.stat("processed")) == ("IndexError", [], 1)
