"""The failure lists' Lua (resque/lua/act.lua, composed after push_lib.lua), run directly
against Redis: retry and remove by index and bytes, and what it refuses: an entry that moved,
one that is gone, a replayed call, a list of the wrong type."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from resque.failure.operations import ACT_SCRIPT

FAILED = "resque:failed"
QUEUES = "resque:queues"
MAIL = "resque:queue:mail"
SENTINEL = "resque:removing:test"
JOB = '{"class":"Mailer","args":[1]}'


@pytest.fixture
def act(r: redis.Redis) -> Any:
    script = r.register_script(ACT_SCRIPT)

    def call(*entries: tuple[int, str, str, bool, str]) -> list[int]:
        """Each entry: hint index, raw bytes, new record ('' = keep), remove, queue ('' = no
        push). Every push goes to ``mail`` (KEYS 3 and 4)."""
        args: list[Any] = [SENTINEL]
        for hint, raw, new, remove, queue in entries:
            args += [hint, raw, new, "1" if remove else "0", queue, JOB if queue else "", 3]
        reply: list[int] = script(keys=[FAILED, QUEUES, MAIL, "resque:wake:mail"], args=args)
        return reply

    return call


def failed(r: redis.Redis) -> list[bytes]:
    found: list[bytes] = r.lrange(FAILED, 0, -1)  # type: ignore[assignment]
    return found


def test_a_retry_marks_the_entry_and_pushes_its_job(r: redis.Redis, act: Any) -> None:
    r.rpush(FAILED, "a", "b", "c")
    assert act((1, "b", "b-retried", False, "mail")) == [0, 1]
    assert failed(r) == [b"a", b"b-retried", b"c"]
    assert r.lrange(MAIL, 0, -1) == [JOB.encode()]
    assert r.smembers(QUEUES) == {b"mail"}


def test_an_entry_that_moved_is_found_by_its_bytes(r: redis.Redis, act: Any) -> None:
    r.rpush(FAILED, "a", "b", "c")
    r.lpop(FAILED)  # someone else removed the head: "c" is now at 1, not 2
    assert act((2, "c", "c-retried", False, "mail")) == [0, 1]
    assert failed(r) == [b"b", b"c-retried"]


def test_an_entry_that_is_gone_is_reported_and_nothing_is_pushed(
    r: redis.Redis, act: Any
) -> None:
    r.rpush(FAILED, "a", "c")
    assert act((1, "b", "b-retried", False, "mail")) == [0, -1]
    assert failed(r) == [b"a", b"c"]
    assert not r.exists(MAIL)


def test_a_replayed_retry_pushes_the_job_once(r: redis.Redis, act: Any) -> None:
    r.rpush(FAILED, "a", "b")
    assert act((1, "b", "b-retried", False, "mail")) == [0, 1]
    assert act((1, "b", "b-retried", False, "mail")) == [0, -1]
    assert r.lrange(MAIL, 0, -1) == [JOB.encode()]


def test_removal_takes_exactly_the_entries_named_and_keeps_the_order(
    r: redis.Redis, act: Any
) -> None:
    r.rpush(FAILED, *"abcdef")
    assert act((1, "b", "", True, ""), (4, "e", "", True, "")) == [2, 1, 4]
    assert failed(r) == [b"a", b"c", b"d", b"f"]


def test_removal_near_the_tail_leaves_the_head_alone(r: redis.Redis, act: Any) -> None:
    r.rpush(FAILED, *"abcdefghij")
    assert act((8, "i", "", True, ""), (9, "j", "", True, "")) == [2, 8, 9]
    assert failed(r) == [c.encode() for c in "abcdefgh"]


def test_of_two_identical_entries_one_is_removed(r: redis.Redis, act: Any) -> None:
    r.rpush(FAILED, "a", "same", "b", "same")
    assert act((1, "same", "", True, "")) == [1, 1]
    assert failed(r) == [b"a", b"b", b"same"]


def test_a_retry_and_remove_pushes_the_job_and_removes_the_entry(
    r: redis.Redis, act: Any
) -> None:
    r.rpush(FAILED, "a", "b")
    assert act((0, "a", "", True, "mail")) == [1, 0]
    assert failed(r) == [b"b"]
    assert r.lrange(MAIL, 0, -1) == [JOB.encode()]


def test_a_failure_list_of_another_type_is_refused_before_any_write(
    r: redis.Redis, act: Any
) -> None:
    r.set(FAILED, "junk")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        act((0, "a", "a-retried", False, "mail"))
    assert r.get(FAILED) == b"junk"
    assert not r.exists(MAIL) and not r.exists(QUEUES)
