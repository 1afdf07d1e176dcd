"""The scheduler's Lua (resque/lua/master_lock_*.lua, delayed_*.lua, schedule_fire.lua), run
directly against Redis: what each writes, and what each refuses: a lock held by someone
else, a list that changed under the mover, an item already moved, a replayed call, a key of
the wrong type."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from resque.scheduler.delayed import (
    DELAY_SCRIPT,
    ITEM_NOW_SCRIPT,
    MOVE_SCRIPT,
    REMOVE_AT_SCRIPT,
    REMOVE_SCRIPT,
)
from resque.scheduler.lock import ACQUIRE_SCRIPT, RELEASE_SCRIPT
from resque.scheduler.recurring import FIRE_SCRIPT

LOCK = "resque:resque:resque_scheduler_master_lock"
RECORD = "resque:scheduler:master"
SCHEDULE = "resque:delayed_queue_schedule"
QUEUES = "resque:queues"
FAILED = "resque:failed"
TS = 1_800_000_000
LIST = f"resque:delayed:{TS}"
MEMBER = f"delayed:{TS}"
ITEM = '{"class":"Mailer","args":[1],"queue":"mail"}'
PAYLOAD = '{"class":"Mailer","args":[1]}'
WHERE = f"resque:timestamps:{ITEM}"
MAIL = "resque:queue:mail"


def script(r: redis.Redis, source: str) -> Any:
    return r.register_script(source)


def delay(r: redis.Redis, timestamp: int = TS, item: str = ITEM, copies: int = 1) -> None:
    """Items as resque-scheduler writes them."""
    for _ in range(copies):
        r.rpush(f"resque:delayed:{timestamp}", item)
    r.sadd(f"resque:timestamps:{item}", f"delayed:{timestamp}")
    r.zadd(SCHEDULE, {str(timestamp): timestamp})


# --- the master lock ----------------------------------------------------------------------------


def test_a_free_lock_is_taken_with_its_ttl(r: redis.Redis) -> None:
    assert script(r, ACQUIRE_SCRIPT)(keys=[LOCK], args=["me:1", 180]) == 1
    assert (r.get(LOCK), r.ttl(LOCK)) == (b"me:1", 180)


def test_our_lock_is_renewed(r: redis.Redis) -> None:
    r.set(LOCK, "me:1", ex=10)
    assert script(r, ACQUIRE_SCRIPT)(keys=[LOCK], args=["me:1", 180]) == 1
    assert r.ttl(LOCK) == 180


def test_a_lock_held_by_someone_else_is_neither_taken_nor_extended(r: redis.Redis) -> None:
    r.set(LOCK, "ruby:42", ex=10)
    assert script(r, ACQUIRE_SCRIPT)(keys=[LOCK], args=["me:1", 180]) == 0
    assert (r.get(LOCK), r.ttl(LOCK)) == (b"ruby:42", 10)


def test_renewing_our_lock_renews_our_masters_record_with_it(r: redis.Redis) -> None:
    r.set(LOCK, "me:1", ex=10)
    r.set(RECORD, '{"lock":"me:1"}', ex=10)
    assert script(r, ACQUIRE_SCRIPT)(keys=[LOCK, RECORD], args=["me:1", 180]) == 1
    assert (r.ttl(LOCK), r.ttl(RECORD)) == (180, 180)


def test_renewing_our_lock_without_its_record_asks_for_the_record_again(
    r: redis.Redis
) -> None:
    r.set(LOCK, "me:1", ex=10)
    assert script(r, ACQUIRE_SCRIPT)(keys=[LOCK, RECORD], args=["me:1", 180]) == 2
    assert r.ttl(LOCK) == 180


def test_taking_a_free_lock_leaves_an_earlier_masters_record_to_lapse(r: redis.Redis) -> None:
    r.set(RECORD, '{"lock":"gone:7"}', ex=10)
    assert script(r, ACQUIRE_SCRIPT)(keys=[LOCK, RECORD], args=["me:1", 180]) == 1
    assert r.ttl(RECORD) == 10


def test_a_lock_held_by_someone_else_leaves_the_record_alone(r: redis.Redis) -> None:
    r.set(LOCK, "ruby:42", ex=10)
    r.set(RECORD, '{"lock":"me:1"}', ex=10)
    assert script(r, ACQUIRE_SCRIPT)(keys=[LOCK, RECORD], args=["me:1", 180]) == 0
    assert r.ttl(RECORD) == 10


def test_release_deletes_our_lock(r: redis.Redis) -> None:
    r.set(LOCK, "me:1", ex=10)
    assert script(r, RELEASE_SCRIPT)(keys=[LOCK], args=["me:1"]) == 1
    assert not r.exists(LOCK)


def test_release_leaves_someone_elses_lock(r: redis.Redis) -> None:
    r.set(LOCK, "ruby:42", ex=10)
    assert script(r, RELEASE_SCRIPT)(keys=[LOCK], args=["me:1"]) == 0
    assert r.get(LOCK) == b"ruby:42"


# --- delaying and removing ----------------------------------------------------------------------


def test_delay_writes_resque_schedulers_three_keys(r: redis.Redis) -> None:
    assert script(r, DELAY_SCRIPT)(keys=[LIST, WHERE, SCHEDULE], args=[ITEM, MEMBER, TS]) == 1
    assert r.lrange(LIST, 0, -1) == [ITEM.encode()]
    assert r.smembers(WHERE) == {MEMBER.encode()}
    assert r.zrange(SCHEDULE, 0, -1, withscores=True) == [(str(TS).encode(), float(TS))]


def test_delay_onto_a_timestamp_that_is_not_a_list_writes_nothing(r: redis.Redis) -> None:
    r.set(LIST, "junk")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        script(r, DELAY_SCRIPT)(keys=[LIST, WHERE, SCHEDULE], args=[ITEM, MEMBER, TS])
    assert r.get(LIST) == b"junk"
    assert not r.exists(WHERE) and not r.exists(SCHEDULE)


def test_remove_takes_every_copy_from_every_timestamp(r: redis.Redis) -> None:
    delay(r, TS, copies=2)
    delay(r, TS + 60)
    delay(r, TS + 60, item='{"class":"Other","args":[],"queue":"mail"}')
    remove = script(r, REMOVE_SCRIPT)
    assert remove(keys=[WHERE], args=[ITEM, "resque:"]) == 3
    assert not r.exists(LIST) and not r.exists(WHERE)
    assert r.lrange(f"resque:delayed:{TS + 60}", 0, -1) == [
        b'{"class":"Other","args":[],"queue":"mail"}']
    assert r.zcard(SCHEDULE) == 2  # as Ruby: the mover drops empty timestamps when due


def test_a_replayed_remove_removes_nothing(r: redis.Redis) -> None:
    delay(r)
    remove = script(r, REMOVE_SCRIPT)
    assert remove(keys=[WHERE], args=[ITEM, "resque:"]) == 1
    assert remove(keys=[WHERE], args=[ITEM, "resque:"]) == 0


def test_remove_at_takes_one_timestamp_and_drops_it_once_empty(r: redis.Redis) -> None:
    delay(r, TS, copies=2)
    delay(r, TS + 60)
    remove_at = script(r, REMOVE_AT_SCRIPT)
    assert remove_at(keys=[LIST, WHERE, SCHEDULE], args=[ITEM, MEMBER, TS]) == 2
    assert not r.exists(LIST)
    assert r.zrange(SCHEDULE, 0, -1) == [str(TS + 60).encode()]
    assert r.smembers(WHERE) == {f"delayed:{TS + 60}".encode()}


def test_remove_at_of_an_item_already_gone_leaves_the_others(r: redis.Redis) -> None:
    other = '{"class":"Other","args":[],"queue":"mail"}'
    delay(r, TS, item=other)
    remove_at = script(r, REMOVE_AT_SCRIPT)
    assert remove_at(keys=[LIST, WHERE, SCHEDULE], args=[ITEM, MEMBER, TS]) == 0
    assert r.lrange(LIST, 0, -1) == [other.encode()]
    assert r.zrange(SCHEDULE, 0, -1) == [str(TS).encode()]


# --- moving due jobs ----------------------------------------------------------------------------


@pytest.fixture
def move(r: redis.Redis) -> Any:
    mover = script(r, MOVE_SCRIPT)

    def call(commit: tuple[int, list[tuple[str, str, str]]] | None = None, *, fetch: int = 10,
             lock: str = "me:1", now: int = TS, only: int | str = "") -> list[Any]:
        """One call: commit ``(ts, [(item, queue, payload), ...])`` read last time, then read
        up to ``fetch`` items of the next due timestamp."""
        ts, triples = commit if commit else ("", [])
        args: list[Any] = [lock, 180, now, fetch, only, "resque:delayed:", "delayed:",
                           "resque:timestamps:", "resque:queue:", "resque:wake:", ts,
                           len(triples)]
        for triple in triples:
            args += triple
        reply: list[Any] = mover(keys=[SCHEDULE, QUEUES, FAILED, LOCK], args=args)
        return reply

    r.set(LOCK, "me:1", ex=10)
    return call


def test_the_mover_reads_the_oldest_due_batch_and_renews_the_lock(
    r: redis.Redis, move: Any
) -> None:
    delay(r, TS)
    delay(r, TS + 60)
    assert move() == [0, str(TS).encode(), [ITEM.encode()]]
    assert r.ttl(LOCK) == 180


def test_the_mover_commits_the_batch_it_read(r: redis.Redis, move: Any) -> None:
    delay(r, TS, copies=2)
    assert move((TS, [(ITEM, "mail", PAYLOAD)] * 2), fetch=0) == [2]
    assert r.lrange(MAIL, 0, -1) == [PAYLOAD.encode()] * 2
    assert r.smembers(QUEUES) == {b"mail"}
    assert not r.exists(LIST) and not r.exists(WHERE) and not r.exists(SCHEDULE)


def test_a_mover_that_is_not_master_moves_and_reads_nothing(r: redis.Redis, move: Any) -> None:
    delay(r, TS)
    r.set(LOCK, "ruby:42", ex=10)
    assert move((TS, [(ITEM, "mail", PAYLOAD)])) == [-2]
    assert r.lrange(LIST, 0, -1) == [ITEM.encode()]
    assert not r.exists(MAIL)
    assert (r.get(LOCK), r.ttl(LOCK)) == (b"ruby:42", 10)


def test_a_batch_whose_list_changed_is_not_moved(r: redis.Redis, move: Any) -> None:
    other = '{"class":"Other","args":[],"queue":"mail"}'
    delay(r, TS, item=other)  # the head is not the item we say we read
    delay(r, TS)
    assert move((TS, [(ITEM, "mail", PAYLOAD)]), fetch=0) == [-1]
    assert r.lrange(LIST, 0, -1) == [other.encode(), ITEM.encode()]
    assert not r.exists(MAIL)


def test_a_replayed_commit_moves_nothing_twice(r: redis.Redis, move: Any) -> None:
    delay(r, TS)
    assert move((TS, [(ITEM, "mail", PAYLOAD)]), fetch=0) == [1]
    assert move((TS, [(ITEM, "mail", PAYLOAD)]), fetch=0) == [-1]
    assert r.lrange(MAIL, 0, -1) == [PAYLOAD.encode()]


def test_a_declined_item_is_dropped_and_a_bad_one_parked_in_failed(
    r: redis.Redis, move: Any
) -> None:
    r.rpush(LIST, "declined", "bad")
    r.zadd(SCHEDULE, {str(TS): TS})
    assert move((TS, [("declined", "", ""), ("bad", "", "a failure record")]), fetch=0) == [2]
    assert r.lrange(FAILED, 0, -1) == [b"a failure record"]
    assert not r.exists(LIST) and not r.exists(SCHEDULE) and not r.exists(QUEUES)


def test_one_timestamp_is_read_even_before_it_is_due(r: redis.Redis, move: Any) -> None:
    delay(r, TS + 3600)
    assert move(now=TS, only=TS + 3600) == [0, str(TS + 3600).encode(), [ITEM.encode()]]


# --- one item now -------------------------------------------------------------------------------


def item_now(r: redis.Redis, target: str, queue: str, pushed: str = PAYLOAD) -> int:
    keys = [LIST, WHERE, SCHEDULE, QUEUES, target]
    result: int = script(r, ITEM_NOW_SCRIPT)(
        keys=keys, args=[ITEM, MEMBER, TS, pushed, queue, f"resque:wake:{queue}"])
    return result


def test_item_now_queues_every_copy_and_cleans_up(r: redis.Redis) -> None:
    delay(r, TS, copies=2)
    assert item_now(r, MAIL, "mail") == 2
    assert r.lrange(MAIL, 0, -1) == [PAYLOAD.encode()] * 2
    assert r.smembers(QUEUES) == {b"mail"}
    assert not r.exists(LIST) and not r.exists(WHERE) and not r.exists(SCHEDULE)


def test_item_now_of_an_item_already_moved_writes_nothing(r: redis.Redis) -> None:
    delay(r, TS)
    assert item_now(r, MAIL, "mail") == 1
    assert item_now(r, MAIL, "mail") == 0
    assert r.lrange(MAIL, 0, -1) == [PAYLOAD.encode()]


def test_item_now_parks_an_item_that_cannot_be_queued_in_failed(r: redis.Redis) -> None:
    delay(r, TS)
    assert item_now(r, FAILED, "", "a failure record") == 1
    assert r.lrange(FAILED, 0, -1) == [b"a failure record"]
    assert not r.exists(QUEUES)


# --- recurring ticks ----------------------------------------------------------------------------


def fire(r: redis.Redis, tick: int, lock: str = "me:1") -> int:
    keys = [LOCK, "resque:scheduler:last_tick", "resque:delayed:last_enqueued_at", QUEUES, MAIL]
    result: int = script(r, FIRE_SCRIPT)(
        keys=keys, args=[lock, "nightly", tick, "2027-01-15 08:00:00 +0000", "mail", PAYLOAD,
                         "resque:wake:mail"])
    return result


def test_a_tick_is_enqueued_and_recorded(r: redis.Redis) -> None:
    r.set(LOCK, "me:1")
    assert fire(r, TS) == 1
    assert r.lrange(MAIL, 0, -1) == [PAYLOAD.encode()]
    assert r.smembers(QUEUES) == {b"mail"}
    assert r.hgetall("resque:scheduler:last_tick") == {b"nightly": str(TS).encode()}
    assert r.hgetall("resque:delayed:last_enqueued_at") == {
        b"nightly": b"2027-01-15 08:00:00 +0000"}


def test_a_replayed_or_older_tick_is_not_enqueued_again(r: redis.Redis) -> None:
    r.set(LOCK, "me:1")
    assert fire(r, TS) == 1
    assert fire(r, TS) == 0
    assert fire(r, TS - 60) == 0
    assert r.llen(MAIL) == 1


def test_a_scheduler_that_is_not_master_fires_nothing(r: redis.Redis) -> None:
    r.set(LOCK, "ruby:42")
    assert fire(r, TS) == -2
    assert not r.exists(MAIL) and not r.exists("resque:scheduler:last_tick")
