"""Golden captures from the real Ruby resque 3.0 and Perl Resque (tests/data/golden/*.json).

We replay what Ruby did and compare every key byte for byte, and we read everything Ruby and
Perl wrote: queued payloads in either key order, working-on records, failure records and the
time formats inside them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from support.schedulerkit import dump

from resque import Resque, layout
from resque.errors import BadPayload

RUBY_FILE = "ruby-resque-3.0-layout.json"
PERL_FILE = "perl-resque-layout.json"


def load(golden_dir: Path, name: str) -> Any:
    return json.loads((golden_dir / name).read_text(encoding="utf-8"))


def ruby_phase(golden_dir: Path, phase: str) -> dict[str, Any]:
    for entry in load(golden_dir, RUBY_FILE)["phases"]:
        if entry["phase"] == phase:
            return dict(entry["keys"])
    raise AssertionError(f"no phase {phase!r} in {RUBY_FILE}")


def all_dumps(node: Any) -> Iterator[dict[str, Any]]:
    """Every ``{"keys": {...}}`` dump anywhere in a golden file, whatever its nesting."""
    if isinstance(node, dict):
        keys = node.get("keys")
        if isinstance(keys, dict) and all(
            isinstance(v, dict) and "type" in v for v in keys.values()
        ):
            yield keys
        for value in node.values():
            yield from all_dumps(value)
    elif isinstance(node, list):
        for value in node:
            yield from all_dumps(value)


def ruby_dumps(golden_dir: Path) -> list[dict[str, Any]]:
    return list(all_dumps(load(golden_dir, RUBY_FILE)["phases"]))


def perl_dumps(golden_dir: Path) -> list[dict[str, Any]]:
    return list(all_dumps(load(golden_dir, PERL_FILE)["scenarios"]))


def list_values(dumps: list[dict[str, Any]], is_wanted: Any) -> list[str]:
    found: list[str] = []
    for keys in dumps:
        for name, entry in keys.items():
            if entry["type"] == "list" and is_wanted(name):
                found.extend(entry["value"])
    return found


def is_queue_key(name: str) -> bool:
    return name.startswith("resque:queue:")


def is_failure_key(name: str) -> bool:
    return name == "resque:failed" or name.endswith("_failed")


# --- replaying Ruby ---------------------------------------------------------------------------


def test_enqueued_phase_is_byte_identical_to_ruby(r: redis.Redis, golden_dir: Path) -> None:
    """With job ids off (``job_ids=False``), our payloads are Ruby's bytes exactly."""
    golden = ruby_phase(golden_dir, "enqueued")
    resque = Resque(r, job_ids=False)

    resque.enqueue_to("high", "Hello", "a", 1)
    resque.enqueue_to("high", "Hello", "b", {"k": [2.5, None, True]})
    resque.enqueue_to("low", "Fail")
    resque.enqueue_to("low", "Sleep", 3)

    ours = dump(r)
    assert sorted(ours) == sorted(golden), "the same keys, no more and no fewer"
    for key, entry in golden.items():
        assert ours[key]["type"] == entry["type"], key
        assert ours[key]["ttl"] == entry["ttl"], key
        assert ours[key]["value"] == entry["value"], key
        if "decoded" in entry:
            assert [json.loads(item) for item in ours[key]["value"]] == entry["decoded"], key


def test_enqueued_phase_with_job_ids_is_ruby_bytes_then_the_id(
    r: redis.Redis, resque: Resque, golden_dir: Path
) -> None:
    """With job ids on (the default), each payload is Ruby's bytes with ``,"id":"..."``
    before the closing brace: class and args first, in Ruby's order, byte for byte."""
    golden = ruby_phase(golden_dir, "enqueued")

    handles = [resque.enqueue_to("high", "Hello", "a", 1),
               resque.enqueue_to("high", "Hello", "b", {"k": [2.5, None, True]}),
               resque.enqueue_to("low", "Fail"), resque.enqueue_to("low", "Sleep", 3)]

    ids = [handle.id for handle in handles if handle is not None and handle.id]
    assert len(set(ids)) == 4
    expected = golden["resque:queue:high"]["value"] + golden["resque:queue:low"]["value"]
    ours = dump(r)
    assert ours["resque:queue:high"]["value"] + ours["resque:queue:low"]["value"] == [
        f'{ruby[:-1]},"id":"{job_id}"}}' for ruby, job_id in zip(expected, ids, strict=True)]


def test_enqueued_phase_via_push_and_enqueue_many_is_also_identical(
    r: redis.Redis, golden_dir: Path
) -> None:
    golden = ruby_phase(golden_dir, "enqueued")
    resque = Resque(r, job_ids=False)

    resque.enqueue_many("Hello", [["a", 1], ["b", {"k": [2.5, None, True]}]], queue="high")
    resque.push("low", {"class": "Fail", "args": []})
    resque.push("low", {"args": [3], "class": "Sleep"})

    ours = dump(r)
    assert {key: entry["value"] for key, entry in ours.items()} == {
        key: entry["value"] for key, entry in golden.items()
    }


def test_payloads_ruby_requeued_equal_our_encoding(golden_dir: Path) -> None:
    for raw in list_values(ruby_dumps(golden_dir), is_queue_key):
        job = layout.decode_job(raw, "golden")
        assert layout.encode_job(job["class"], job["args"]) == raw


def test_working_on_record_matches_ruby_bytes(utc: None, golden_dir: Path) -> None:
    keys = ruby_phase(golden_dir, "working")
    raw = keys["resque:worker:vm:1210:high,low"]["value"]
    record = json.loads(raw)
    moment = layout.parse_time(record["run_at"])
    assert moment is not None
    payload = layout.encode_job(record["payload"]["class"], record["payload"]["args"])
    assert layout.working_on(record["queue"], payload, moment.timestamp()) == raw


def test_started_and_heartbeat_values_match_ruby_bytes(utc: None, golden_dir: Path) -> None:
    keys = ruby_phase(golden_dir, "working")
    started = keys["resque:worker:vm:1210:high,low:started"]["value"]
    beat = keys["resque:workers:heartbeat"]["value"]["vm:1210:high,low"]
    started_moment = layout.parse_time(started)
    beat_moment = layout.parse_time(beat)
    assert started_moment is not None and beat_moment is not None
    assert layout.started_at(started_moment.timestamp()) == started
    assert layout.heartbeat_at(beat_moment.timestamp()) == beat


def test_worker_ids_in_the_capture_parse(golden_dir: Path) -> None:
    ids = [
        member
        for keys in ruby_dumps(golden_dir) + perl_dumps(golden_dir)
        for name, entry in keys.items()
        if name == "resque:workers"
        for member in entry["value"]
    ]
    assert ids
    for worker in ids:
        host, pid, queues = layout.parse_worker_id(worker)
        assert host == "vm" and pid is not None and queues
        assert layout.worker_id(host, pid, queues) == worker


# --- failure records --------------------------------------------------------------------------


def test_every_failure_record_from_ruby_and_perl_has_a_parseable_failed_at(
    golden_dir: Path,
) -> None:
    records = list_values(ruby_dumps(golden_dir), is_failure_key)
    records += list_values(perl_dumps(golden_dir), is_failure_key)
    assert len(records) >= 5
    for raw in records:
        record = json.loads(raw)
        assert layout.parse_time(record["failed_at"]) is not None, record["failed_at"]
        if "retried_at" in record:
            assert layout.parse_time(record["retried_at"]) is not None, record["retried_at"]
        assert isinstance(record["worker"], str)
        payload = record["payload"]
        assert isinstance(payload, dict) and isinstance(payload["class"], str)


def test_retried_at_is_read_with_and_without_a_zone(golden_dir: Path) -> None:
    retried = [
        json.loads(raw)["retried_at"]
        for raw in list_values(ruby_dumps(golden_dir), is_failure_key)
        if "retried_at" in json.loads(raw)
    ]
    assert "2026/11/27 23:46:25 UTC" in retried  # Failure::Redis
    assert "2026/11/27 23:46:27" in retried  # RedisMultiQueue: no zone


def test_our_failure_record_matches_rubys_bytes(utc: None, golden_dir: Path) -> None:
    records = [
        raw
        for raw in list_values(ruby_dumps(golden_dir), is_failure_key)
        if "retried_at" not in json.loads(raw)
    ]
    assert records
    for raw in records:
        record = json.loads(raw)
        moment = layout.parse_time(record.pop("failed_at"))
        assert moment is not None
        assert layout.failure_record(**record, now=moment.timestamp()) == raw


def test_failure_records_stored_in_redis_read_back_through_the_client(
    r: redis.Redis, resque: Resque, golden_dir: Path
) -> None:
    records = list_values(perl_dumps(golden_dir), is_failure_key)
    r.rpush("resque:failed", *records)
    assert resque.info()["failed"] == len(records)


# --- reading Perl -----------------------------------------------------------------------------


def test_perl_queued_payloads_include_args_first_order(golden_dir: Path) -> None:
    payloads = list_values(perl_dumps(golden_dir), is_queue_key)
    assert any(raw.startswith('{"args":') for raw in payloads)


def test_decode_job_reads_every_payload_perl_queued(golden_dir: Path) -> None:
    main = load(golden_dir, PERL_FILE)["scenarios"]["main"]
    payloads = list_values(perl_dumps(golden_dir), is_queue_key) + main["enqueued_payloads"]
    for raw in payloads:
        job = layout.decode_job(raw, "perl")
        assert job == json.loads(raw)
        assert isinstance(job["class"], str) and isinstance(job["args"], list)


def test_peek_and_pop_read_perl_queues_pushed_raw(
    r: redis.Redis, resque: Resque, golden_dir: Path
) -> None:
    for keys in perl_dumps(golden_dir):
        for name, entry in keys.items():
            if entry["type"] == "list" and is_queue_key(name):
                r.delete(name)
                r.rpush(name, *entry["value"])
                queue = name[len("resque:queue:") :]
                expected = [json.loads(raw) for raw in entry["value"]]
                assert resque.peek(queue, 0, len(expected)) == expected
                assert resque.peek(queue) == expected[0]
                assert [resque.pop(queue) for _ in expected] == expected


def test_perl_numbers_survive_a_round_trip_exactly(golden_dir: Path) -> None:
    main = load(golden_dir, PERL_FILE)["scenarios"]["main"]
    raw = next(p for p in main["enqueued_payloads"] if "9007199254740993" in p)
    job = layout.decode_job(raw, "high")
    args = job["args"][0]
    assert args["big"] == 9007199254740993 and args["tiny"] == 0.1
    reencoded = layout.encode_job(job["class"], job["args"])
    assert "9007199254740993" in reencoded and '"tiny":0.1' in reencoded
    assert "ünïcødé ☃" in reencoded


def test_perl_run_at_and_started_formats_parse(golden_dir: Path) -> None:
    seen = 0
    for keys in perl_dumps(golden_dir):
        for name, entry in keys.items():
            if name.endswith(":started"):
                assert layout.parse_time(entry["value"]) is not None, entry["value"]
                seen += 1
            elif name.startswith("resque:worker:") and entry["type"] == "string":
                run_at = json.loads(entry["value"])["run_at"]
                assert layout.parse_time(run_at) is not None, run_at
                seen += 1
    assert seen >= 2


def test_foreign_payloads_that_kill_a_perl_worker_are_bad_payloads_to_us(
    r: redis.Redis, resque: Resque, golden_dir: Path
) -> None:
    cases = load(golden_dir, PERL_FILE)["scenarios"]["foreign_payloads"]
    for case in cases:
        raw = case["payload"]
        killed_perl = case["worker_exit"] != ["exit=0"]
        r.delete("resque:queue:e")
        r.rpush("resque:queue:e", raw)
        if killed_perl:
            with pytest.raises(BadPayload, match="'e'"):
                resque.pop("e")
            assert r.lrange("resque:queue:e", 0, -1) == [raw.encode()], "kept, not lost"
        else:
            job = resque.pop("e")
            assert job is not None and job["args"] == json.loads(raw).get("args", [])
