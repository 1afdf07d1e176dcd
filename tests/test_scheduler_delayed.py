"""Delayed jobs: the client API, the atomic move, bad items, and what the dashboard calls."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
import redis
from support.replies import bytes_list

from resque import NoQueueError, Registry, Resque, layout
from resque.scheduler.delayed import Delayed
from resque.scheduler.lock import MasterLock

NOW = 1_900_000_000  # a fixed clock: "now" for every test here


@pytest.fixture
def client(r: redis.Redis, registry: Registry) -> Resque:
    """Ruby's exact payloads (``job_ids=False``): these tests compare resque-scheduler's bytes."""
    return Resque(r, registry=registry, job_ids=False)


@pytest.fixture
def delayed(client: Resque) -> Delayed:
    return Delayed(client, clock=lambda: NOW)


def queue(r: redis.Redis, name: str) -> list[bytes]:
    return bytes_list(r.lrange(f"resque:queue:{name}", 0, -1))


# --- enqueueing ---------------------------------------------------------------------------------


def test_enqueue_at_writes_the_three_keys_of_resque_scheduler(
    r: redis.Redis, delayed: Delayed
) -> None:
    assert delayed.enqueue_at_with_queue("mail", NOW + 60.9, "Mailer", 1, "x")
    item = b'{"class":"Mailer","args":[1,"x"],"queue":"mail"}'
    assert r.lrange(f"resque:delayed:{NOW + 60}", 0, -1) == [item]
    assert r.smembers(b"resque:timestamps:" + item) == {f"delayed:{NOW + 60}".encode()}
    assert r.zrange("resque:delayed_queue_schedule", 0, -1, withscores=True) == [
        (str(NOW + 60).encode(), NOW + 60)
    ]


def test_enqueue_at_in_the_past_or_now_enqueues_at_once(r: redis.Redis, delayed: Delayed) -> None:
    delayed.enqueue_at_with_queue("mail", NOW, "Mailer", 1)
    delayed.enqueue_at_with_queue("mail", NOW - 100, "Mailer", 2)
    assert queue(r, "mail") == [b'{"class":"Mailer","args":[1]}', b'{"class":"Mailer","args":[2]}']
    assert not r.exists("resque:delayed_queue_schedule")


def test_enqueue_at_takes_datetimes_aware_or_local(r: redis.Redis, delayed: Delayed) -> None:
    aware = dt.datetime.fromtimestamp(NOW + 5, dt.timezone.utc)
    naive_local = dt.datetime.fromtimestamp(NOW + 7)
    delayed.enqueue_at_with_queue("q", aware, "A")
    delayed.enqueue_at_with_queue("q", naive_local, "B")
    assert delayed.delayed_queue_peek(0, 10) == [NOW + 5, NOW + 7]


def test_enqueue_in_adds_seconds_or_a_timedelta(delayed: Delayed) -> None:
    delayed.enqueue_in_with_queue("q", 30, "A")
    delayed.enqueue_in_with_queue("q", dt.timedelta(minutes=2), "B")
    assert delayed.delayed_queue_peek(0, 10) == [NOW + 30, NOW + 120]
    with pytest.raises(TypeError, match="seconds"):
        delayed.enqueue_in_with_queue("q", "soon", "C")  # type: ignore[arg-type]


def test_enqueue_at_uses_the_job_queue_and_refuses_a_job_without_one(
    registry: Registry, delayed: Delayed
) -> None:
    @registry.register
    class Report:
        queue = "reports"

    delayed.enqueue_at(NOW + 10, Report, 7)
    assert delayed.scheduled_at(Report, 7) == [NOW + 10]
    with pytest.raises(NoQueueError):
        delayed.enqueue_at(NOW + 10, "Unknown", 1)


def test_before_schedule_false_skips_and_after_schedule_runs(
    r: redis.Redis, registry: Registry, delayed: Delayed
) -> None:
    seen: list[Any] = []

    class Hooked:
        queue = "q"

        @staticmethod
        def before_schedule_check(n: int) -> bool:
            return n != 0

        @staticmethod
        def after_schedule_note(n: int) -> None:
            seen.append(n)

    registry.register(Hooked, name="Hooked")
    assert delayed.enqueue_at(NOW + 10, Hooked, 0) is None
    assert delayed.enqueue_at(NOW + 10, Hooked, 1) is not None
    assert seen == [1]
    assert delayed.count_all_scheduled_jobs() == 1


def test_the_top_level_client_methods_reach_the_delayed_api(client: Resque) -> None:
    future = time.time() + 3600
    assert client.enqueue_at_with_queue("q", future, "A", 1)
    assert client.enqueue_in_with_queue("q", 3600, "A", 2)
    assert client.count_all_scheduled_jobs() == 2
    assert client.delayed_queue_schedule_size() in (1, 2)
    assert client.delayed_timestamp_size(future) >= 1
    assert client.remove_delayed_in_queue("A", "q", 1) == 1
    assert client.remove_delayed_selection(lambda args: args == [2]) == 1
    assert client.count_all_scheduled_jobs() == 0


# --- removing and reading -----------------------------------------------------------------------


def test_remove_delayed_removes_every_copy_and_leaves_the_timestamp_for_the_mover(
    r: redis.Redis, delayed: Delayed
) -> None:
    for when in (NOW + 10, NOW + 10, NOW + 20):
        delayed.enqueue_at_with_queue("q", when, "A", 1)
    delayed.enqueue_at_with_queue("q", NOW + 20, "A", 2)
    assert delayed.remove_delayed_in_queue("A", "q", 1) == 3
    assert not r.exists('resque:timestamps:{"class":"A","args":[1],"queue":"q"}')
    assert delayed.delayed_queue_peek(0, 10) == [NOW + 10, NOW + 20]  # as Ruby: dangling
    assert delayed.count_all_scheduled_jobs() == 1
    delayed.move_due(NOW + 15)
    assert delayed.delayed_queue_peek(0, 10) == [NOW + 20]  # the mover dropped the empty one


def test_remove_delayed_selection_matches_class_and_args(delayed: Delayed) -> None:
    for n in range(6):
        delayed.enqueue_at_with_queue("q", NOW + 10 + n % 2, "A" if n < 4 else "B", n)
    assert delayed.remove_delayed_selection(lambda args: args[0] % 2 == 0, "A") == 2
    assert delayed.count_all_scheduled_jobs() == 4
    assert [item["args"] for item in delayed.delayed_timestamp_peek(NOW + 10, 0, 10)] == [[4]]


def test_remove_from_one_timestamp_only(r: redis.Redis, delayed: Delayed) -> None:
    delayed.enqueue_at_with_queue("q", NOW + 10, "A", 1)
    delayed.enqueue_at_with_queue("q", NOW + 20, "A", 1)
    assert delayed.remove_item_at(NOW + 10, layout.delayed_item("A", [1], "q")) == 1
    assert delayed.delayed_queue_peek(0, 10) == [NOW + 20]  # emptied timestamp is gone
    assert r.smembers('resque:timestamps:{"class":"A","args":[1],"queue":"q"}') == {
        f"delayed:{NOW + 20}".encode()
    }


def test_inspection_sizes_peeks_and_next_timestamp(delayed: Delayed) -> None:
    assert delayed.next_delayed_timestamp() is None
    for n in range(5):
        delayed.enqueue_at_with_queue("q", NOW + 10 * (1 + n % 2), "A", n)
    assert delayed.delayed_queue_schedule_size() == 2
    assert delayed.delayed_timestamp_size(NOW + 10) == 3
    assert delayed.delayed_timestamp_peek(NOW + 20, 0, 5) == [
        {"class": "A", "args": [1], "queue": "q"}, {"class": "A", "args": [3], "queue": "q"}
    ]
    assert delayed.next_delayed_timestamp(NOW + 15) == NOW + 10
    assert delayed.next_delayed_timestamp() is None
    assert delayed.is_delayed("A", 1, queue="q") and not delayed.is_delayed("A", 9, queue="q")
    assert delayed.scheduled_at("A", 1, queue="q") == [NOW + 20]
    with pytest.raises(NoQueueError):
        delayed.scheduled_at("A", 1)  # neither registered with a queue nor given one
    assert delayed.count_all_scheduled_jobs() == 5


def test_reset_delayed_queue_deletes_everything(r: redis.Redis, delayed: Delayed) -> None:
    for n in range(3):
        delayed.enqueue_at_with_queue("q", NOW + n + 1, "A", n)
    delayed.reset_delayed_queue()
    assert r.keys("*") == []


# --- the move -----------------------------------------------------------------------------------


def test_due_jobs_move_oldest_first_in_batches_inclusive_of_now(
    r: redis.Redis, delayed: Delayed
) -> None:
    for n in range(10):
        delayed.enqueue_at_with_queue("q", NOW + 10 + n // 5, "A", n)
    delayed.enqueue_at_with_queue("q", NOW + 12, "Later", 0)
    result = delayed.move_due(NOW + 11, batch_size=3)
    assert (result.moved, result.batches, result.conflicts) == (10, 4, 0)
    assert [layout.decode(p)["args"][0] for p in queue(r, "q")] == list(range(10))
    assert delayed.delayed_queue_peek(0, 10) == [NOW + 12]
    assert r.smembers("resque:queues") == {b"q"}
    assert r.keys("resque:timestamps:*") == [
        b'resque:timestamps:{"class":"Later","args":[0],"queue":"q"}'
    ]


def test_two_movers_racing_move_every_job_exactly_once(r: redis.Redis, redis_url: str) -> None:
    seed = Delayed(Resque(r), clock=lambda: NOW)
    for n in range(3000):
        seed.enqueue_at_with_queue("race", NOW + 1 + n % 30, "Job", n)
    results = []

    def mover() -> None:
        mover = Delayed(Resque(redis_url), clock=lambda: NOW)
        results.append(mover.move_due(NOW + 60, batch_size=7))

    threads = [threading.Thread(target=mover) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    moved = [layout.decode(p)["args"][0] for p in queue(r, "race")]
    assert sorted(moved) == list(range(3000)), "each job once: none lost, none twice"
    assert sum(result.moved for result in results) == 3000
    assert r.keys("resque:delayed*") == []


def test_a_mover_without_the_master_lock_moves_nothing(r: redis.Redis, delayed: Delayed) -> None:
    delayed.enqueue_at_with_queue("q", NOW + 1, "A", 1)
    ours = MasterLock(r, delayed.keys, value="localhost:1")
    other = MasterLock(r, delayed.keys, value="rubyhost:2")
    assert other.acquire()
    result = delayed.move_due(NOW + 5, fence=ours)
    assert result.not_master and result.moved == 0
    assert delayed.count_all_scheduled_jobs() == 1
    assert other.release() and ours.acquire()
    assert delayed.move_due(NOW + 5, fence=ours).moved == 1
    assert 0 < r.ttl(ours.key) <= 180


def test_bad_items_are_parked_in_failed_and_the_rest_still_moves(
    r: redis.Redis, delayed: Delayed
) -> None:
    key = f"resque:delayed:{NOW + 1}"
    delayed.enqueue_at_with_queue("q", NOW + 1, "Good", 1)
    bad = [b"not json{", b"[1,2]", b'{"args":[1]}', b'{"class":"X","args":[],"queue":5}',
           b'{"class":"Nobody","args":[1]}', b'{"class":"X","args":[],"queue":"has space"}',
           b"\xff\xfe", b'{"class":"A\xff","args":[],"queue":"q"}']
    r.rpush(key, *bad)
    delayed.enqueue_at_with_queue("q", NOW + 1, "Good", 2)
    result = delayed.move_due(NOW + 5, batch_size=4)
    assert (result.moved, result.failed) == (2, len(bad))
    assert [layout.decode(p)["args"] for p in queue(r, "q")] == [[1], [2]]
    failures = [layout.decode(raw) for raw in r.lrange("resque:failed", 0, -1)]
    assert [f["exception"] for f in failures] == [layout.BAD_DELAYED_ITEM] * len(bad)
    assert "not valid JSON" in failures[0]["error"] and failures[0]["payload"] == "not json{"
    assert "is not registered here and the item names no queue" in failures[4]["error"]
    assert failures[4]["payload"] == {"class": "Nobody", "args": [1]}
    assert not r.exists(key) and not r.exists("resque:delayed_queue_schedule")


def test_an_unknown_class_with_a_queue_is_still_queued_for_other_workers(
    r: redis.Redis, delayed: Delayed
) -> None:
    r.rpush(f"resque:delayed:{NOW}", b'{"class":"Ruby::Only","args":{"id":3},"queue":"rb"}',
            b'{"class":"Ruby::Only","args":null,"queue":"rb"}')
    r.zadd("resque:delayed_queue_schedule", {str(NOW): NOW})
    assert delayed.move_due(NOW).moved == 2
    assert queue(r, "rb") == [b'{"class":"Ruby::Only","args":[{"id":3}]}',
                              b'{"class":"Ruby::Only","args":[]}']


def test_args_bytes_written_by_ruby_reach_the_queue_unchanged(
    r: redis.Redis, delayed: Delayed
) -> None:
    raw = '{"class":"Big","args":[1.0e+20,"é/ü",-0.0],"queue":"q"}'
    r.rpush(f"resque:delayed:{NOW}", raw)
    r.zadd("resque:delayed_queue_schedule", {str(NOW): NOW})
    delayed.move_due(NOW)
    assert queue(r, "q") == ['{"class":"Big","args":[1.0e+20,"é/ü",-0.0]}'.encode()]


def test_hooks_run_when_a_delayed_job_reaches_its_queue(
    r: redis.Redis, registry: Registry, delayed: Delayed
) -> None:
    calls: list[str] = []

    class Hooked:
        queue = "h"

        @staticmethod
        def before_schedule(n: int) -> None:
            calls.append(f"before_schedule {n}")

        @staticmethod
        def before_delayed_enqueue(n: int) -> None:
            calls.append(f"before_delayed_enqueue {n}")

        @staticmethod
        def before_enqueue(n: int) -> bool:
            calls.append(f"before_enqueue {n}")
            return n != 0

        @staticmethod
        def after_enqueue(n: int) -> None:
            calls.append(f"after_enqueue {n}")

    registry.register(Hooked, name="Hooked")
    for n in (0, 1):
        r.rpush(f"resque:delayed:{NOW}", layout.delayed_item("Hooked", [n], "h"))
    r.zadd("resque:delayed_queue_schedule", {str(NOW): NOW})
    result = delayed.move_due(NOW)
    assert (result.moved, result.dropped) == (1, 1)
    assert queue(r, "h") == [b'{"class":"Hooked","args":[1]}']
    assert calls == ["before_schedule 0", "before_delayed_enqueue 0", "before_enqueue 0",
                     "before_schedule 1", "before_delayed_enqueue 1", "before_enqueue 1",
                     "after_enqueue 1"]


def test_moving_wakes_idle_workers_of_the_queue(r: redis.Redis, delayed: Delayed) -> None:
    pubsub = r.pubsub()
    pubsub.subscribe("resque:wake:q")
    pubsub.get_message(timeout=1)
    delayed.enqueue_at_with_queue("q", NOW + 1, "A", 1)
    delayed.move_due(NOW + 1)
    message = pubsub.get_message(timeout=2)
    pubsub.close()
    assert message and message["channel"] == b"resque:wake:q"


# --- the dashboard's delayed tab ---------------------------------------------------------------


def test_page_lists_timestamps_with_size_and_first_job(delayed: Delayed) -> None:
    for n in range(25):
        delayed.enqueue_at_with_queue("q", NOW + 100 + n, "A", n)
    delayed.enqueue_at_with_queue("q", NOW + 100, "A", "second")
    total, rows = delayed.page(0, 20)
    assert total == 25 and len(rows) == 20
    assert (rows[0].timestamp, rows[0].size) == (NOW + 100, 2)
    assert rows[1].first == {"class": "A", "args": [1], "queue": "q"}
    total, rows = delayed.page(20, 20)
    assert [row.timestamp for row in rows] == [NOW + 120 + n for n in range(5)]


def test_queue_now_moves_one_whole_timestamp_before_it_is_due(
    r: redis.Redis, delayed: Delayed
) -> None:
    for n in range(5):
        delayed.enqueue_at_with_queue("q", NOW + 500, "A", n)
    delayed.enqueue_at_with_queue("q", NOW + 600, "A", 9)
    assert delayed.queue_now(NOW + 500).moved == 5
    assert len(queue(r, "q")) == 5 and delayed.delayed_queue_peek(0, 5) == [NOW + 600]


def test_queue_item_now_moves_every_copy_of_one_item(r: redis.Redis, delayed: Delayed) -> None:
    for n in (1, 2, 1):
        delayed.enqueue_at_with_queue("q", NOW + 500, "A", n)
    assert delayed.queue_item_now(NOW + 500, layout.delayed_item("A", [1], "q")) == 2
    assert queue(r, "q") == [b'{"class":"A","args":[1]}'] * 2
    left = delayed.delayed_timestamp_peek(NOW + 500, 0, 5)
    assert left == [{"class": "A", "args": [2], "queue": "q"}]
    assert delayed.queue_item_now(NOW + 500, layout.delayed_item("A", [2], "q")) == 1
    assert r.keys("resque:delayed*") == [] and r.keys("resque:timestamps:*") == []
