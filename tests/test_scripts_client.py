"""The client's Lua (resque/lua/push_lib.lua, push.lua), run directly against Redis: what it
writes, byte for byte, and what it does with keys of the wrong type."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from resque import Resque, scripts
from resque.client import PUSH_SCRIPT

QUEUES = "resque:queues"
HIGH = "resque:queue:high"
WAKE = "resque:wake:high"


@pytest.fixture
def push(r: redis.Redis) -> Any:
    return r.register_script(PUSH_SCRIPT)


@pytest.fixture
def wake(r: redis.Redis) -> Iterator[redis.client.PubSub]:
    """A subscriber to the high queue's wake channel, subscribed before the test acts."""
    pubsub = r.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(WAKE)
    pubsub.get_message(timeout=1)  # the subscription itself
    yield pubsub
    pubsub.close()


def wake_ups(pubsub: redis.client.PubSub) -> list[bytes]:
    found = []
    while (message := pubsub.get_message(timeout=0.2)) is not None:
        found.append(message["data"])
    return found


def test_push_lists_the_queue_appends_the_payloads_in_order_and_wakes_its_workers(
    r: redis.Redis, push: Any, wake: redis.client.PubSub
) -> None:
    payloads = ['{"class":"A","args":[1]}', '{"class":"A","args":["é"]}']
    assert push(keys=[QUEUES, HIGH, WAKE], args=["high", *payloads]) == 1
    assert r.smembers(QUEUES) == {b"high"}
    assert r.lrange(HIGH, 0, -1) == [p.encode() for p in payloads]
    assert wake_ups(wake) == [b""]


def test_push_onto_a_queue_that_is_not_a_list_is_refused_and_queues_no_job(
    r: redis.Redis, push: Any, wake: redis.client.PubSub
) -> None:
    r.hset(HIGH, "someone", "else")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        push(keys=[QUEUES, HIGH, WAKE], args=["high", '{"class":"A","args":[]}'])
    assert r.hgetall(HIGH) == {b"someone": b"else"}
    assert wake_ups(wake) == []
    # Redis does not roll a script back: the SADD before the refused RPUSH stays, as it
    # would after Ruby's own SADD + RPUSH.
    assert r.smembers(QUEUES) == {b"high"}


def test_push_with_a_queues_key_that_is_not_a_set_writes_nothing(
    r: redis.Redis, push: Any, wake: redis.client.PubSub
) -> None:
    r.set(QUEUES, "junk")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        push(keys=[QUEUES, HIGH, WAKE], args=["high", '{"class":"A","args":[]}'])
    assert r.get(QUEUES) == b"junk"
    assert not r.exists(HIGH)
    assert wake_ups(wake) == []


def test_the_client_pushes_again_after_the_server_forgot_its_scripts(r: redis.Redis) -> None:
    client = Resque(r, job_ids=False)
    client.enqueue_to("high", "A", 1)
    r.script_flush()
    client.enqueue_to("high", "A", 2)
    assert r.lrange(HIGH, 0, -1) == [b'{"class":"A","args":[1]}', b'{"class":"A","args":[2]}']


@pytest.mark.parametrize("name", ["act", "schedule_fire", "delayed_item_now"])
def test_scripts_that_enqueue_compose_the_push_code_instead_of_copying_it(name: str) -> None:
    assert "redis.call('SADD'" not in scripts.source(name)
    assert "push(" in scripts.source(name)
    assert "local function push(keys, argv)" in scripts.source("push_lib")
