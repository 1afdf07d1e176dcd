"""The worker's Lua scripts, run directly against Redis: step.lua, recover.lua,
fail_entry.lua (through ``WorkerStore``) and sample.lua (through ``record_sample``).

Each script's header (``src/resque/lua/*.lua``) states what it refuses before writing
anything; these specs check every refusal leaves Redis byte for byte as it was, and that a
step delivered twice (its reply lost, the script run again) acts once.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from resque import layout
from resque.metrics import HISTORY, RECENT, read_samples, record_sample
from resque.store import (
    ACK_FAILED,
    ACK_OK,
    ACK_REQUEUE,
    NOT_NOW,
    RECOVERY_MEMORY,
    Ack,
    Acks,
    Reserved,
    Step,
    WorkerStore,
    digest,
)

KEYS = layout.Keys()
WORKER = "host:1:q"
T0 = 1_795_824_000  # a multiple of both metrics buckets


def snapshot(r: redis.Redis) -> dict[bytes | str, Any]:
    """Every key and its serialized value: equal snapshots mean nothing was written."""
    return {key: r.dump(key) for key in r.keys("*")}


def job(tag: str) -> str:
    return layout.encode_job("Record", [tag])


def queue(r: redis.Redis, name: str, *tags: str) -> None:
    r.rpush(KEYS.queue(name), *(job(tag) for tag in tags))


def acks_for(*jobs: Reserved, mode: str = ACK_OK, record: str = "") -> Acks:
    acks = Acks()
    for reserved in jobs:
        acks.add(Ack(mode, record), reserved)
    return acks


def inflight_tokens(r: redis.Redis, worker: str = WORKER) -> list[str]:
    return [layout.decode(entry)[2] for entry in r.lrange(KEYS.inflight(worker), 0, -1)]


@pytest.fixture
def store(r: redis.Redis) -> WorkerStore:
    return WorkerStore(r, KEYS, WORKER)


# --- step.lua: acknowledge, then reserve --------------------------------------------------------


def test_a_step_reserves_from_the_first_queue_with_jobs_and_writes_rubys_record(
    r: redis.Redis, store: WorkerStore
) -> None:
    queue(r, "low", "l0")
    queue(r, "high", "h0", "h1", "h2")
    step = store.step(None, ["high", "low"], 2, T0, "1")
    assert step == Step([Reserved("high", job(f"h{i}").encode(), f"1:{i + 1}") for i in range(2)])
    assert r.lrange(KEYS.inflight(WORKER), 0, -1) == [
        layout.encode(["high", job("h0"), "1:1"]).encode(),
        layout.encode(["high", job("h1"), "1:2"]).encode(),
    ]
    assert r.get(KEYS.worker(WORKER)) == layout.working_on("high", job("h0"), T0).encode()
    assert r.lrange(KEYS.queue("high"), 0, -1) == [job("h2").encode()]
    assert r.llen(KEYS.queue("low")) == 1


def test_a_step_counts_finished_jobs_records_failures_and_then_drops_the_record(
    r: redis.Redis, store: WorkerStore
) -> None:
    queue(r, "q", "a", "b")
    jobs = store.step(None, ["q"], 2, T0, "1").jobs
    record = layout.failure_record(payload={"class": "Record", "args": ["b"]}, exception="E",
                                   error="boom", backtrace=[], worker=WORKER, queue="q", now=T0)
    acks = Acks()
    acks.add(Ack(ACK_OK), jobs[0])
    acks.add(Ack(ACK_FAILED, record, "q"), jobs[1])
    assert store.step(acks, ["q"], 1, T0, "2") == Step()
    assert (r.get(KEYS.stat("processed")), r.get(KEYS.stat("failed"))) == (b"2", b"1")
    assert r.get(KEYS.worker_stat("processed", WORKER)) == b"2"
    assert r.get(KEYS.worker_stat("failed", WORKER)) == b"1"
    assert r.lrange(KEYS.failed, 0, -1) == [record.encode()]
    assert not r.exists(KEYS.worker(WORKER), KEYS.inflight(WORKER))


def test_stopped_jobs_go_back_to_the_head_of_their_queue_in_order_uncounted(
    r: redis.Redis, store: WorkerStore
) -> None:
    queue(r, "q", "a", "b", "c", "d")
    jobs = store.step(None, ["q"], 3, T0, "1").jobs
    acks = acks_for(jobs[0])
    for reserved in jobs[1:]:
        acks.add(Ack(ACK_REQUEUE), reserved)
    store.step(acks, ["q"], 0, T0, "2")
    assert r.lrange(KEYS.queue("q"), 0, -1) == [job(t).encode() for t in "bcd"]
    assert r.get(KEYS.stat("processed")) == b"1"
    assert not r.exists(KEYS.worker(WORKER), KEYS.inflight(WORKER))


def test_an_unreadable_item_is_reserved_whole_and_the_record_shows_a_bad_payload(
    r: redis.Redis, store: WorkerStore
) -> None:
    r.rpush(KEYS.queue("q"), b"\xff not json")
    (reserved,) = store.step(None, ["q"], 1, T0, "1").jobs
    assert reserved.raw == b"\xff not json"
    assert r.get(KEYS.worker(WORKER)) == layout.working_on(
        "q", layout.UNREADABLE_PAYLOAD, T0).encode()


def test_pause_all_workers_pauses_a_step_after_it_acknowledged(
    r: redis.Redis, store: WorkerStore
) -> None:
    queue(r, "q", "a", "b")
    (a,) = store.step(None, ["q"], 1, T0, "1").jobs
    r.set(KEYS.pause, " True ")
    assert store.step(acks_for(a), ["q"], 1, T0, "2") == Step(paused=True)
    assert r.get(KEYS.stat("processed")) == b"1"
    assert r.llen(KEYS.queue("q")) == 1
    r.set(KEYS.pause, "false")
    assert [j.raw for j in store.step(None, ["q"], 1, T0, "3").jobs] == [job("b").encode()]


def test_a_queue_key_of_another_type_is_skipped_named_and_left_as_it_is(
    r: redis.Redis, store: WorkerStore
) -> None:
    r.hset(KEYS.queue("broken"), "f", "v")
    before = r.dump(KEYS.queue("broken"))
    assert store.step(None, ["broken"], 1, T0, "1") == Step(bad_queues=("broken",))
    queue(r, "fine", "a")
    step = store.step(None, ["broken", "fine"], 1, T0, "2")
    assert step == Step([Reserved("fine", job("a").encode(), "2:1")], bad_queues=("broken",))
    assert r.dump(KEYS.queue("broken")) == before


def test_a_failure_list_of_another_type_refuses_the_step_and_writes_nothing(
    r: redis.Redis, store: WorkerStore
) -> None:
    queue(r, "q", "a", "b")
    (a,) = store.step(None, ["q"], 1, T0, "1").jobs
    r.set(KEYS.failed, "someone else's string")
    before = snapshot(r)
    with pytest.raises(redis.ResponseError, match=f"^{NOT_NOW} {KEYS.failed} holds a string"):
        store.step(acks_for(a, mode=ACK_FAILED, record="{}"), ["q"], 1, T0, "2")
    assert snapshot(r) == before


def test_a_step_delivered_twice_acknowledges_once_and_reserves_once(
    r: redis.Redis, store: WorkerStore
) -> None:
    queue(r, "q", *(f"j{i}" for i in range(4)))
    (first,) = store.step(None, ["q"], 1, time.time(), "1").jobs
    acks = acks_for(first)
    second = store.step(acks, ["q"], 2, time.time(), "2")
    again = store.step(acks, ["q"], 2, time.time(), "2")  # its reply lost; run again
    assert again == second
    assert len(second.jobs) == 2
    assert r.get(KEYS.stat("processed")) == b"1"
    assert r.llen(KEYS.inflight(WORKER)) == 2
    assert r.llen(KEYS.queue("q")) == 1

    assert store.step(acks_for(*second.jobs), ["q"], 1, time.time(), "3").jobs  # reserves j3
    assert store.step(acks, ["q"], 2, time.time(), "2") == Step()  # a late copy of step 2
    assert r.get(KEYS.stat("processed")) == b"3"
    assert r.llen(KEYS.inflight(WORKER)) == 1
    assert r.llen(KEYS.queue("q")) == 0


def test_after_redis_lost_an_acknowledgement_the_worker_goes_on_and_loses_nothing(
    r: redis.Redis, store: WorkerStore
) -> None:
    """A failover or a crash can lose the last writes: here, the step that acknowledged j0
    and reserved j1. The worker goes on with j1; the next step finds the in-flight list
    not as it left it and settles by token: j0 and j1 go back to the queue (they run again:
    at least once), and the worker acknowledges its later jobs as usual."""
    queue(r, "q", *(f"j{i}" for i in range(5)))
    (j0,) = store.step(None, ["q"], 1, time.time(), "1").jobs
    entries_before = r.lrange(KEYS.inflight(WORKER), 0, -1)
    (j1,) = store.step(acks_for(j0), ["q"], 1, time.time(), "2").jobs
    r.delete(KEYS.inflight(WORKER))  # Redis loses step 2: j0 in flight again, j1 queued
    r.rpush(KEYS.inflight(WORKER), *entries_before)
    r.lpush(KEYS.queue("q"), j1.raw)
    r.decr(KEYS.stat("processed"))

    (j2,) = store.step(acks_for(j1), ["q"], 1, time.time(), "3").jobs
    assert inflight_tokens(r) == ["3:1"]
    assert j2.raw == j0.raw  # j0 went back to the head of the queue, and is taken again
    assert r.lrange(KEYS.queue("q"), 0, 0) == [j1.raw]  # then j1, in order
    assert store.step(acks_for(j2), ["q"], 0, time.time(), "4") == Step()  # the usual path
    assert not r.exists(KEYS.inflight(WORKER))
    assert r.get(KEYS.stat("processed")) == b"1"


def test_a_late_copy_of_an_old_step_cannot_make_a_job_disappear(
    r: redis.Redis, store: WorkerStore
) -> None:
    queue(r, "q", "a")
    (a,) = store.step(None, ["q"], 1, time.time(), "5").jobs
    assert store.step(acks_for(a), ["q"], 1, time.time(), "6") == Step()
    queue(r, "q", "b", "c")
    # Step 5 again, delivered late: its acknowledgement is spent, and it reserves b under
    # its own token, a job the worker never hears of.
    assert r.get(KEYS.stat("processed")) == b"1"
    store.step(acks_for(a), ["q"], 1, time.time(), "5")
    assert r.get(KEYS.stat("processed")) == b"1"
    # The worker's next reserving step finds b in flight under an older step: back it goes,
    # to the head of its queue, and it is the job reserved.
    (b,) = store.step(None, ["q"], 1, time.time(), "7").jobs
    assert b.raw == job("b").encode()
    store.step(acks_for(b), ["q"], 0, time.time(), "8")
    assert r.lrange(KEYS.queue("q"), 0, -1) == [job("c").encode()]
    assert not r.exists(KEYS.inflight(WORKER))
    assert r.get(KEYS.stat("processed")) == b"2"


def test_step_outcome_tells_a_step_that_never_ran_from_one_that_did(
    r: redis.Redis, store: WorkerStore
) -> None:
    queue(r, "q", "a", "b")
    (a,) = store.step(None, ["q"], 1, T0, "1").jobs
    assert store.step_outcome("2", a.token) is None  # a still in flight: step 2 never ran
    step = store.step(acks_for(a), ["q"], 1, T0, "2")
    assert store.step_outcome("2", a.token) == step  # it ran: what it reserved
    store.step(acks_for(*step.jobs), ["q"], 0, T0, "3")
    assert store.step_outcome("3", step.jobs[0].token) == Step()  # ran, reserved nothing


def test_a_stopped_job_is_counted_in_the_stopped_hash_as_it_is_requeued(
    r: redis.Redis, store: WorkerStore
) -> None:
    queue(r, "q", "a")
    (a,) = store.step(None, ["q"], 1, T0, "1").jobs
    store.step(acks_for(a, mode=ACK_REQUEUE), ["q"], 0, T0, "2")
    (a,) = store.step(None, ["q"], 1, T0, "3").jobs
    store.step(acks_for(a, mode=ACK_REQUEUE), ["q"], 0, T0, "4")
    assert r.hgetall(KEYS.stopped) == {digest(job("a").encode()).encode(): b"2"}
    assert 0 < r.ttl(KEYS.stopped) <= RECOVERY_MEMORY
    assert r.lrange(KEYS.queue("q"), 0, -1) == [job("a").encode()]


# --- step.lua, concurrent mode: jobs end in any order --------------------------------------------


@pytest.fixture
def threads(r: redis.Redis) -> WorkerStore:
    store = WorkerStore(r, KEYS, WORKER)
    store.concurrent = True
    return store


def ended(*jobs: tuple[Reserved, str, str], shows: str = "") -> Acks:
    acks = Acks(concurrent=True, shows=shows)
    for reserved, mode, record in jobs:
        acks.add(Ack(mode, record, reserved.queue if record else ""), reserved)
    return acks


def test_jobs_ending_out_of_order_are_acknowledged_by_token_and_the_rest_stay(
    r: redis.Redis, threads: WorkerStore
) -> None:
    queue(r, "q", "a", "b", "c")
    a, b, c = threads.step(None, ["q"], 3, T0, "1").jobs
    shows = layout.working_on("q", job("a"), T0 + 5)
    threads.step(ended((b, ACK_FAILED, "{}"), shows=shows), ["q"], 0, T0, "2")
    assert inflight_tokens(r) == ["1:1", "1:3"]
    assert (r.get(KEYS.stat("processed")), r.get(KEYS.stat("failed"))) == (b"1", b"1")
    assert r.lrange(KEYS.failed, 0, -1) == [b"{}"]
    assert r.get(KEYS.worker(WORKER)) == shows.encode()
    threads.step(ended((a, ACK_OK, ""), (c, ACK_OK, "")), ["q"], 0, T0, "3")
    assert not r.exists(KEYS.inflight(WORKER), KEYS.worker(WORKER))
    assert r.get(KEYS.stat("processed")) == b"3"


def test_a_concurrent_acknowledgement_delivered_twice_counts_once(
    r: redis.Redis, threads: WorkerStore
) -> None:
    queue(r, "q", "a", "b")
    a, b = threads.step(None, ["q"], 2, T0, "1").jobs
    acks = ended((a, ACK_FAILED, "{}"))
    threads.step(acks, ["q"], 0, T0, "2")
    threads.step(acks, ["q"], 0, T0, "2")  # its reply lost; sent again
    assert (r.get(KEYS.stat("processed")), r.get(KEYS.stat("failed"))) == (b"1", b"1")
    assert r.llen(KEYS.failed) == 1
    assert inflight_tokens(r) == ["1:2"]


def test_a_concurrent_step_reserves_beside_running_jobs_and_keeps_the_oldest_shown(
    r: redis.Redis, threads: WorkerStore
) -> None:
    queue(r, "q", "a", "b", "c")
    (a,) = threads.step(None, ["q"], 1, T0, "1").jobs
    shown = r.get(KEYS.worker(WORKER))
    step = threads.step(None, ["q"], 2, T0 + 9, "2")
    assert [j.raw for j in step.jobs] == [job("b").encode(), job("c").encode()]
    assert inflight_tokens(r) == ["1:1", "2:1", "2:2"]  # the running job is not requeued
    assert r.get(KEYS.worker(WORKER)) == shown
    assert r.llen(KEYS.queue("q")) == 0


# --- recover.lua: unregister a worker, give its jobs back ---------------------------------------


def in_flight(r: redis.Redis, worker: str, *tags: str) -> list[bytes]:
    """Leave ``tags`` in flight under ``worker`` as its steps do; returns the entries."""
    entries = [layout.encode(["q", job(tag), f"1:{i}"]).encode() for i, tag in
               enumerate(tags, 1)]
    r.rpush(KEYS.inflight(worker), *entries)
    r.sadd(KEYS.inflight_workers, worker)
    return entries


def register(r: redis.Redis, worker: str, record: str | None) -> None:
    r.sadd(KEYS.workers, worker)
    r.set(KEYS.worker_started(worker), layout.started_at(T0))
    r.hset(KEYS.heartbeat, worker, "2020-01-01T00:00:00+00:00")
    if record is not None:
        r.set(KEYS.worker(worker), record)


def test_recover_requeues_in_flight_jobs_at_the_head_in_order_and_deletes_every_key(
    r: redis.Redis, store: WorkerStore
) -> None:
    dead = "host:2:q"
    register(r, dead, layout.working_on("q", job("a"), T0))
    in_flight(r, dead, "a", "b")
    r.set(KEYS.worker_stat("processed", dead), 5)
    queue(r, "q", "c")
    assert store.recover(dead) == (2, layout.working_on("q", job("a"), T0).encode())
    assert r.lrange(KEYS.queue("q"), 0, -1) == [job(t).encode() for t in "abc"]
    assert r.smembers(KEYS.queues) == {b"q"}
    assert set(r.keys("*")) == {KEYS.queue("q").encode(), KEYS.queues.encode()}
    assert store.recover(dead) == (0, None)  # a second pruner finds nothing left to do


def test_recover_with_a_record_that_changed_meanwhile_does_nothing(
    r: redis.Redis, store: WorkerStore
) -> None:
    dead = "host:2:q"
    register(r, dead, layout.working_on("q", job("b"), T0))
    in_flight(r, dead, "b")
    before = snapshot(r)
    seen = layout.working_on("q", job("a"), T0).encode()  # what the pruner read earlier
    assert store.recover(dead, expected_record=seen) == (-1, None)
    assert snapshot(r) == before


def test_recover_skips_the_job_a_ruby_pruner_already_failed(
    r: redis.Redis, store: WorkerStore
) -> None:
    """Our worker unregistered by Ruby: its record is gone, and Ruby failed the first entry."""
    dead = "host:2:q"
    in_flight(r, dead, "a", "b", "c")
    assert store.recover(dead) == (2, None)
    assert r.lrange(KEYS.queue("q"), 0, -1) == [job("b").encode(), job("c").encode()]
    assert not r.exists(KEYS.inflight(dead))


def test_recover_of_a_ruby_worker_records_its_job_as_failed(
    r: redis.Redis, store: WorkerStore
) -> None:
    ruby = "host:3:q"
    record = layout.working_on("q", job("a"), T0)
    register(r, ruby, record)
    failure = layout.failure_record(payload={"class": "Record", "args": ["a"]},
                                    exception=layout.DIRTY_EXIT, error="gone", backtrace=[],
                                    worker=ruby, queue="q", now=T0)
    assert store.recover(ruby, record.encode(), failure, "q") == (1, record.encode())
    assert r.lrange(KEYS.failed, 0, -1) == [failure.encode()]
    assert r.llen(KEYS.queue("q")) == 0
    assert not r.exists(KEYS.worker(ruby), KEYS.workers, KEYS.heartbeat)


@pytest.mark.parametrize("bad_key", [KEYS.queue("q"), KEYS.failed])
def test_recover_refuses_when_a_list_it_writes_is_another_type_and_writes_nothing(
    r: redis.Redis, store: WorkerStore, bad_key: str
) -> None:
    dead = "host:2:q"
    if bad_key == KEYS.failed:  # a Ruby worker: its job goes to the failure list
        register(r, dead, layout.working_on("q", job("a"), T0))
    else:  # ours: its job goes back to its queue
        register(r, dead, None)
        in_flight(r, dead, "a", "b")
    r.set(bad_key, "not a list")
    before = snapshot(r)
    with pytest.raises(redis.ResponseError, match=f"^{NOT_NOW} {bad_key} holds a string"):
        store.recover(dead, failure="{}")
    assert snapshot(r) == before


def test_recover_goes_through_a_shared_registry_of_another_type(
    r: redis.Redis, store: WorkerStore
) -> None:
    dead = "host:2:q"
    in_flight(r, dead, "x", "a")
    r.set(KEYS.worker(dead), "record")
    r.set(KEYS.workers, "another tool's string")
    assert store.recover(dead) == (2, b"record")
    assert r.lrange(KEYS.queue("q"), 0, -1) == [job("x").encode(), job("a").encode()]
    assert r.get(KEYS.workers) == b"another tool's string"
    assert not r.exists(KEYS.worker(dead), KEYS.inflight(dead))


# --- fail_entry.lua: fail one in-flight job instead of requeueing it ----------------------------


def test_fail_entry_moves_the_entry_to_the_failure_list(
    r: redis.Redis, store: WorkerStore
) -> None:
    dead = "host:2:q"
    first, second = in_flight(r, dead, "a", "b")
    assert store.fail_entry(dead, first, "the record", "q")
    assert r.lrange(KEYS.inflight(dead), 0, -1) == [second]
    assert r.lrange(KEYS.failed, 0, -1) == [b"the record"]


def test_fail_entry_of_an_entry_that_is_gone_writes_nothing(
    r: redis.Redis, store: WorkerStore
) -> None:
    dead = "host:2:q"
    in_flight(r, dead, "a")
    gone = layout.encode(["q", job("z"), "1:9"])
    before = snapshot(r)
    assert not store.fail_entry(dead, gone, "the record", "q")
    assert snapshot(r) == before


def test_fail_entry_refuses_when_the_failure_list_is_another_type_and_keeps_the_job(
    r: redis.Redis, store: WorkerStore
) -> None:
    dead = "host:2:q"
    (entry,) = in_flight(r, dead, "a")
    r.set(KEYS.failed, "not a list")
    before = snapshot(r)
    with pytest.raises(redis.ResponseError, match=f"^{NOT_NOW} {KEYS.failed} holds a string"):
        store.fail_entry(dead, entry, "the record", "q")
    assert snapshot(r) == before


# --- sample.lua: one sample per time bucket -----------------------------------------------------


def test_sample_refuses_a_counter_of_another_type_and_writes_nothing(r: redis.Redis) -> None:
    r.hset(KEYS.stat("processed"), "f", "v")
    before = snapshot(r)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        record_sample(r, KEYS, now=T0)
    assert snapshot(r) == before


def test_sample_counts_an_unreadable_counter_as_zero(r: redis.Redis) -> None:
    r.set(KEYS.stat("processed"), "lots")
    r.set(KEYS.stat("failed"), "7")
    assert record_sample(r, KEYS, now=T0) == 2
    (sample,) = read_samples(r, KEYS, T0)
    assert (sample.processed, sample.failed) == (0, 7)


def test_sample_loads_itself_again_after_a_script_flush(r: redis.Redis) -> None:
    assert record_sample(r, KEYS, now=T0) == 2
    r.script_flush()
    assert record_sample(r, KEYS, now=T0 + RECENT.bucket) == 1  # EVALSHA missed, EVAL ran
    assert record_sample(r, KEYS, now=T0 + HISTORY.bucket) == 2
    assert r.zcard(layout.metrics_key(KEYS, RECENT.name)) == 3
