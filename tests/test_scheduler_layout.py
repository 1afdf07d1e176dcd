"""The golden capture of resque-scheduler 5.0 (tests/data/golden/resque-scheduler-5.0-layout.json):
we write what Ruby wrote byte for byte, and we move what Ruby delayed exactly as Ruby moved it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import redis
from support.schedulerkit import dump, golden, phase, restore

from resque import Registry, Resque, layout
from resque.scheduler.delayed import Delayed
from resque.scheduler.lock import MasterLock
from resque.scheduler.recurring import Recurring

T0 = 1795825795  # the capture's t0: enqueue_at times are t0 + n


@pytest.fixture
def ruby_like(r: redis.Redis) -> Resque:
    """A client whose registry knows the capture's classes as Ruby declared them."""
    registry = Registry()

    class Noop:
        queue = "noop"

    class Fail:
        queue = "low"

    registry.register(Noop, name="Noop")
    registry.register(Fail, name="Fail")
    # Ruby's exact payloads (job_ids=False): these tests compare resque-scheduler's bytes.
    return Resque(r, registry=registry, job_ids=False)


def delay_like_the_capture(resque: Resque) -> None:
    """The capture's `delayed` phase, call for call (the clock is the capture's)."""
    at = Delayed(resque, clock=lambda: T0)
    at.enqueue_at_with_queue("high", T0 + 12, "Hello", "a", 1)
    at.enqueue_at_with_queue("high", T0 + 12, "Hello", "b", {"k": [2.5, None, True]})
    at.enqueue_at_with_queue("low", T0 + 3600, "Hello", "later")
    Delayed(resque, clock=lambda: T0 + 2).enqueue_in(15, "Noop", 15)
    Delayed(resque, clock=lambda: T0 + 2).enqueue_in_with_queue("low", 7200, "Hello", "later")
    at.enqueue_at(T0 + 14, "Fail", "gone")


def assert_same_keys(
    ours: dict[str, dict[str, Any]], theirs: dict[str, dict[str, Any]]
) -> None:
    assert sorted(ours) == sorted(theirs), "the same keys, no more and no fewer"
    for key, entry in theirs.items():
        assert ours[key]["type"] == entry["type"], key
        assert ours[key]["ttl"] == entry["ttl"], key
        assert ours[key]["value"] == entry["value"], key


def test_delayed_phase_is_byte_identical_to_ruby(
    r: redis.Redis, ruby_like: Resque, golden_dir: Path
) -> None:
    delay_like_the_capture(ruby_like)
    assert_same_keys(dump(r), phase(golden_dir, "delayed"))


def test_remove_delayed_in_queue_matches_ruby_and_leaves_the_timestamp(
    r: redis.Redis, ruby_like: Resque, golden_dir: Path
) -> None:
    delay_like_the_capture(ruby_like)
    assert ruby_like.remove_delayed_in_queue("Fail", "low", "gone") == 1
    assert_same_keys(dump(r), phase(golden_dir, "removed"))


def test_remove_delayed_uses_the_class_queue_as_ruby(
    r: redis.Redis, ruby_like: Resque, golden_dir: Path
) -> None:
    delay_like_the_capture(ruby_like)
    assert ruby_like.remove_delayed("Fail", "gone") == 1  # Fail's queue is "low"
    assert_same_keys(dump(r), phase(golden_dir, "removed"))


def test_set_schedule_writes_ruby_bytes(
    r: redis.Redis, ruby_like: Resque, golden_dir: Path
) -> None:
    restore(r, phase(golden_dir, "removed"))
    ruby_like.schedules.set("cron_daily", {
        "cron": "0 3 * * *", "class": "Hello", "queue": "low", "args": ["daily"],
        "description": "Runs at 03:00 server time", "persist": True,
    })
    ruby_like.schedules.set(
        "every_3s", {"every": "3s", "class": "Noop", "queue": "noop", "args": ["tick"]}
    )
    assert_same_keys(dump(r), phase(golden_dir, "schedules_set"))


def test_ruby_delayed_items_are_moved_by_us_as_ruby_moved_them(
    r: redis.Redis, resque: Resque, golden_dir: Path
) -> None:
    """Ruby's `removed` state, moved by our mover at the `running` phase's time, gives
    Ruby's `running` queues and leftovers (the recurring ticks and the lock aside)."""
    restore(r, phase(golden_dir, "removed"))
    running = phase(golden_dir, "running")
    now = next(p["server_time"] for p in golden(golden_dir)["phases"] if p["phase"] == "running")
    result = resque.delayed.move_due(now)
    assert result.moved == 3 and result.failed == 0 and result.conflicts == 0

    ours = dump(r)
    assert ours["resque:queue:high"]["value"] == running["resque:queue:high"]["value"]
    assert ours["resque:queue:noop"]["value"] == ['{"class":"Noop","args":[15]}']
    assert ours["resque:queues"]["value"] == running["resque:queues"]["value"]
    untouched = [k for k in running if k.startswith(("resque:delayed:1", "resque:timestamps:"))]
    untouched.append("resque:delayed_queue_schedule")
    assert sorted(k for k in ours if k.startswith(("resque:delayed:1", "resque:timestamps:"))
                  or k == "resque:delayed_queue_schedule") == sorted(untouched)
    for key in untouched:
        assert ours[key]["value"] == running[key]["value"], key
    # the dangling 1795825809 (its only job removed) was cleaned up when it fell due
    assert "1795825809" not in [m for m, _ in ours["resque:delayed_queue_schedule"]["value"]]


def test_the_master_lock_has_rubys_key_value_shape_and_ttl(
    r: redis.Redis, resque: Resque, golden_dir: Path
) -> None:
    summary = golden(golden_dir)["scheduler_summary"]["master_lock_while_running"]
    lock = MasterLock(r, resque.keys)
    assert lock.acquire()
    assert lock.key == summary["physical_key"] == "resque:resque:resque_scheduler_master_lock"
    host, pid = r.get(lock.key).decode().rsplit(":", 1)  # type: ignore[union-attr]
    assert re.fullmatch(r"[^:]+", host) and pid.isdigit()
    assert re.fullmatch(r"[^:]+:\d+", summary["value"])
    assert lock.timeout == golden(golden_dir)["scheduler_summary"]["lock_timeout"] == 180
    assert summary["ttl"] <= r.ttl(lock.key) <= 180


def test_lock_key_follows_prefix_and_namespace_as_ruby() -> None:
    assert layout.Keys("resque").scheduler_master_lock("MyApp") == (
        "resque:resque:MyApp:resque_scheduler_master_lock"
    )
    other = layout.Keys("other").scheduler_master_lock()
    assert other == "other:other:resque_scheduler_master_lock"


def test_recurring_enqueue_writes_rubys_payload_and_last_enqueued_at(
    utc: None, r: redis.Redis, resque: Resque, golden_dir: Path
) -> None:
    restore(r, phase(golden_dir, "schedules_set"))
    fired_at = 1795825819  # the capture's last_enqueued_at of every_3s: 2026-11-28 00:30:19
    ruby_bytes = Resque(r, job_ids=False)  # a tick with Ruby's exact payload: no job id
    recurring = Recurring(ruby_bytes, clock=lambda: fired_at - 3)
    recurring.load(resque.schedules.persistent())
    assert recurring.fire_due(fired_at)

    running = phase(golden_dir, "running")
    assert r.lrange("resque:queue:noop", 0, -1) == [b'{"class":"Noop","args":["tick"]}']
    assert r.hgetall("resque:delayed:last_enqueued_at") == {
        b"every_3s": running["resque:delayed:last_enqueued_at"]["value"]["every_3s"].encode()
    }


def test_every_item_and_payload_in_the_capture_round_trips_through_our_encoder(
    golden_dir: Path,
) -> None:
    for entry in golden(golden_dir)["phases"]:
        for key, value in entry["keys"].items():
            if key.startswith("resque:delayed:1"):
                for raw in value["value"]:
                    item = layout.decode_delayed_item(raw)
                    assert layout.delayed_item(item.class_name, item.args, item.queue or "") == raw
            if key.startswith("resque:timestamps:"):
                item_json = key[len("resque:timestamps:"):]
                assert layout.Keys().timestamps(item_json) == key
                decoded = value["key_item_decoded"]
                assert layout.delayed_item(
                    decoded["class"], decoded["args"], decoded["queue"]
                ) == item_json
