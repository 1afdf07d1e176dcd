"""The wire contract (resque/layout/) against the bytes Ruby resque 3.0 and Perl write.

Examples are the layouts measured from the real Ruby and Perl code (docs/contract.md; the
captures in tests/data/golden/); the reference instant is the golden capture's server time,
2026-11-27 23:46:22 UTC.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from collections.abc import Callable

import pytest

from resque import layout
from resque.errors import BadPayload, NoQueueError
from resque.worker import Worker

GOLDEN_NOW = 1795823182  # 2026-11-27 23:46:22 UTC
GOLDEN_MOMENT = dt.datetime(2026, 11, 27, 23, 46, 22, tzinfo=dt.timezone.utc)


# --- encode -----------------------------------------------------------------------------------


def test_encode_is_compact_with_no_spaces() -> None:
    assert layout.encode({"a": [1, 2.5, None, True], "b": {}}) == '{"a":[1,2.5,null,true],"b":{}}'


def test_encode_job_puts_class_before_args() -> None:
    assert layout.encode_job("Hello", ["a", 1]) == '{"class":"Hello","args":["a",1]}'


def test_encode_job_is_byte_identical_to_ruby_for_nested_args() -> None:
    assert layout.encode_job("Hello", ["b", {"k": [2.5, None, True]}]) == (
        '{"class":"Hello","args":["b",{"k":[2.5,null,true]}]}'
    )


def test_encode_job_of_no_args_is_an_empty_array() -> None:
    assert layout.encode_job("Fail", []) == '{"class":"Fail","args":[]}'


def test_encode_job_accepts_a_tuple_as_args() -> None:
    assert layout.encode_job("Sleep", (3,)) == '{"class":"Sleep","args":[3]}'


def test_encode_keeps_utf8_and_slash_unescaped() -> None:
    assert layout.encode_job("Mail/Send", ["ünïcødé ☃", "a/b", "\u2028"]) == (
        '{"class":"Mail/Send","args":["ünïcødé ☃","a/b","\u2028"]}'
    )


def test_encode_writes_control_characters_as_u_escapes() -> None:
    assert layout.encode(["\x01", "\x1f"]) == '["\\u0001","\\u001f"]'


def test_encode_keeps_dict_insertion_order() -> None:
    assert layout.encode({"z": 1, "a": 2}) == '{"z":1,"a":2}'


def test_encode_keeps_big_integers_exact() -> None:
    assert layout.encode([9007199254740993]) == "[9007199254740993]"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_encode_refuses_nan_and_infinity_with_value_error(bad: float) -> None:
    with pytest.raises(ValueError):
        layout.encode([bad])
    with pytest.raises(ValueError):
        layout.encode_job("Hello", [bad])


@pytest.mark.parametrize("bad", [{1, 2}, object(), b"bytes"])
def test_encode_refuses_values_json_cannot_hold_with_type_error(bad: object) -> None:
    with pytest.raises(TypeError):
        layout.encode([bad])
    with pytest.raises(TypeError):
        layout.encode_job("Hello", [bad])


def test_encode_job_refuses_a_lone_surrogate_with_value_error() -> None:
    with pytest.raises(ValueError):
        layout.encode_job("Hello", ["\ud800"])


@pytest.mark.parametrize("args", [{"a": 1}, "abc", 3, None])
def test_encode_job_refuses_args_that_are_not_a_list(args: object) -> None:
    with pytest.raises(TypeError, match="args must be a list"):
        layout.encode_job("Hello", args)  # type: ignore[arg-type]


# --- decode -----------------------------------------------------------------------------------


def test_decode_reads_str_and_utf8_bytes() -> None:
    assert layout.decode('{"a":"☃"}') == {"a": "☃"}
    assert layout.decode('{"a":"☃"}'.encode()) == {"a": "☃"}


def test_decode_job_reads_rubys_order() -> None:
    assert layout.decode_job('{"class":"Hello","args":["a",1]}', "high") == {
        "class": "Hello",
        "args": ["a", 1],
    }


def test_decode_job_reads_perls_args_first_order() -> None:
    job = layout.decode_job(b'{"args":["world",1],"class":"Hello"}', "high")
    assert job["class"] == "Hello"
    assert job["args"] == ["world", 1]


@pytest.mark.parametrize("raw", ['{"class":"Noop"}', '{"class":"Noop","args":null}'])
def test_decode_job_reads_missing_or_null_args_as_empty(raw: str) -> None:
    assert layout.decode_job(raw, "e")["args"] == []


def test_decode_job_keeps_extra_keys() -> None:
    job = layout.decode_job('{"class":"Hello","args":[],"jid":"abc","meta":{"x":1}}', "q")
    assert job == {"class": "Hello", "args": [], "jid": "abc", "meta": {"x": 1}}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        ("", "not valid JSON"),
        ('["Hello",[]]', "not an object"),
        ('"Hello"', "not an object"),
        ("42", "not an object"),
        ('{"args":[]}', '"class"'),
        ('{"class":5,"args":[]}', '"class"'),
        ('{"class":"","args":[]}', '"class"'),
        ('{"class":"Noop","args":{"a":1}}', "not an array"),
        ('{"class":"Noop","args":"a"}', "not an array"),
        (None, "empty item"),
    ],
)
def test_decode_job_rejects_non_jobs_with_bad_payload_naming_the_queue(
    raw: str | bytes | None, reason: str
) -> None:
    with pytest.raises(BadPayload) as caught:
        layout.decode_job(raw, "mail-queue")
    assert "mail-queue" in str(caught.value)
    assert reason in str(caught.value)
    assert caught.value.queue == "mail-queue"
    assert caught.value.raw == raw


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"class":"Hello","args":[NaN]}', "NaN is not a JSON number"),
        (b'{"class":"Hello","args":[-Infinity]}', "-Infinity is not a JSON number"),
        (b'{"class":"Hello","args":[1e400]}', "number 1e400 is too large for a float"),
        (b'{"class":"Hello","args":["\xff\xfe"]}', "'utf-8' codec can't decode byte 0xff"),
        (b'{"class":"Hello","args":["\\ud800"]}', "a \\u escape names half a surrogate pair"),
        (b'{"class":"Hello","args":[' + b"[" * 50_000 + b"]" * 50_000 + b"]}",
         "JSON nested too deeply to decode"),
    ],
)
def test_decode_job_refuses_values_no_job_may_run_with(raw: bytes, reason: str) -> None:
    with pytest.raises(BadPayload) as caught:
        layout.decode_job(raw, "mail-queue")
    assert f"bad item in queue 'mail-queue': not valid JSON ({reason}" in str(caught.value)


def test_bad_payload_is_a_value_error_and_shortens_huge_items() -> None:
    with pytest.raises(ValueError) as caught:
        layout.decode_job("x" * 10_000, "q")
    assert len(str(caught.value)) < 400


def test_raw_text_never_loses_bytes() -> None:
    assert layout.raw_text(None) == ""
    assert layout.raw_text("abc") == "abc"
    assert layout.raw_text(b"a\xffb") == "a\\xffb"


# --- queue names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("queue", "reason"),
    [
        ("*", "contains '*', which makes a worker's -q read it as a pattern"),
        ("q?", "contains '?', which makes a worker's -q read it as a pattern"),
        ("mail[1]", "contains '[', which makes a worker's -q read it as a pattern"),
        ("a]", "contains ']', which makes a worker's -q read it as a pattern"),
        ("{a,b}", "contains '{', which makes a worker's -q read it as a pattern"),
        ("x}", "contains '}', which makes a worker's -q read it as a pattern"),
        ("!x", "starts with '!', which makes a worker's -q exclude the name instead"),
        ("a,b", "contains a comma, which separates queue names in a worker's -q"),
        ("two words", "contains whitespace"),
        ("tab\there", "contains whitespace"),
        ("nbsp\u00a0", "contains whitespace"),
        (" lead", "contains whitespace"),
    ],
)
def test_check_queue_name_refuses_every_name_a_workers_q_could_not_select(
    queue: str, reason: str
) -> None:
    with pytest.raises(NoQueueError) as caught:
        layout.check_queue_name(queue)
    assert str(caught.value).startswith(f"queue name {queue!r} {reason}")


@pytest.mark.parametrize("queue", ["", None, 5, ["high"]])
def test_check_queue_name_refuses_what_is_not_a_name(queue: object) -> None:
    with pytest.raises(NoQueueError, match="a queue name must be a non-empty string"):
        layout.check_queue_name(queue)


@pytest.mark.parametrize("queue", ["high", "mail:urgent", "a!b", "snake_case-and.dots", "ünï"])
def test_a_name_check_queue_name_accepts_is_selected_by_a_workers_q_as_itself(
    queue: str, redis_url: str
) -> None:
    assert layout.check_queue_name(queue) == queue
    worker = Worker([queue], redis=redis_url, fork=False, burst=True)
    queues = worker.queue_list
    assert (queues.patterns, queues.skip, queues.dynamic) == ([queue], [], False)


# --- time formats -----------------------------------------------------------------------------


def test_started_at_is_rubys_time_to_s(utc: None) -> None:
    assert layout.started_at(GOLDEN_NOW) == "2026-11-27 23:46:22 +0000"


def test_run_at_is_utc_iso8601_with_z(utc: None) -> None:
    assert layout.run_at(GOLDEN_NOW) == "2026-11-27T23:46:22Z"


def test_heartbeat_at_is_local_iso8601_with_an_offset_never_z(utc: None) -> None:
    assert layout.heartbeat_at(GOLDEN_NOW) == "2026-11-27T23:46:22+00:00"


def test_heartbeat_at_drops_fractions_of_redis_time(utc: None) -> None:
    assert layout.heartbeat_at(GOLDEN_NOW + 0.999) == "2026-11-27T23:46:22+00:00"


def test_failed_at_is_slashed_with_zone_abbreviation(utc: None) -> None:
    assert layout.failed_at(GOLDEN_NOW) == "2026/11/27 23:46:22 UTC"


def test_retried_at_multi_queue_has_no_zone(utc: None) -> None:
    assert layout.retried_at_multi_queue(GOLDEN_NOW) == "2026/11/27 23:46:22"


def test_time_formats_follow_the_local_zone_like_ruby(set_tz: Callable[[str], None]) -> None:
    set_tz("America/New_York")
    assert layout.started_at(GOLDEN_NOW) == "2026-11-27 18:46:22 -0500"
    assert layout.heartbeat_at(GOLDEN_NOW) == "2026-11-27T18:46:22-05:00"
    assert layout.failed_at(GOLDEN_NOW) == "2026/11/27 18:46:22 EST"
    assert layout.retried_at_multi_queue(GOLDEN_NOW) == "2026/11/27 18:46:22"
    assert layout.run_at(GOLDEN_NOW) == "2026-11-27T23:46:22Z"  # always UTC


def test_time_formats_default_to_now(utc: None) -> None:
    before = time.time()
    parsed = layout.parse_time(layout.run_at())
    assert parsed is not None
    assert before - 1 <= parsed.timestamp() <= time.time() + 1


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-27T23:46:22Z",  # run_at (Ruby)
        "2026-11-27T23:46:22+00:00",  # heartbeat
        "2026/11/27 23:46:22 UTC",  # failed_at, Ruby and Perl
        "2026-11-27 23:46:22 +0000",  # worker started (Ruby)
        "2026-11-27 23:46:22 UTC",  # worker started (Perl)
        "2026-11-27 18:46:22 -0500",  # Ruby in New York
        "2026-11-27T18:46:22-05:00",
        "2026-11-27T23:46:22.000Z",
        "  2026/11/27 23:46:22 GMT  ",
    ],
)
def test_parse_time_reads_every_zoned_format_of_the_contract(text: str) -> None:
    assert layout.parse_time(text) == GOLDEN_MOMENT


@pytest.mark.parametrize("text", ["2026/11/27 23:46:22", "2026-11-27 23:46:22"])
def test_parse_time_reads_zone_less_times_as_local(
    set_tz: Callable[[str], None], text: str
) -> None:
    set_tz("UTC")
    assert layout.parse_time(text) == GOLDEN_MOMENT
    set_tz("America/New_York")
    assert layout.parse_time(text) == GOLDEN_MOMENT + dt.timedelta(hours=5)


@pytest.mark.parametrize("value", [GOLDEN_NOW, float(GOLDEN_NOW), str(GOLDEN_NOW), "1795823182.0"])
def test_parse_time_reads_epoch_seconds_written_by_pyres(value: object) -> None:
    assert layout.parse_time(value) == GOLDEN_MOMENT


def test_parse_time_keeps_fractions() -> None:
    parsed = layout.parse_time("2026-11-27T23:46:22.25Z")
    assert parsed == GOLDEN_MOMENT + dt.timedelta(milliseconds=250)


def test_parse_time_results_are_timezone_aware(utc: None) -> None:
    for text in ("2026/11/27 23:46:22", "2026/11/27 23:46:22 UTC", str(GOLDEN_NOW)):
        parsed = layout.parse_time(text)
        assert parsed is not None and parsed.tzinfo is not None


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        "",
        "yesterday",
        "NaN",
        "2026-13-01 00:00:00",
        "2026-02-30 12:00:00",
        "27/11/2026 23:46:22",
        "2026-11-27",
        True,
        [],
        {},
        "9" * 30,
        math.nan,
        math.inf,
    ],
)
def test_parse_time_returns_none_for_garbage(garbage: object) -> None:
    assert layout.parse_time(garbage) is None


def test_every_written_format_parses_back_to_the_same_instant(
    set_tz: Callable[[str], None],
) -> None:
    for zone in ("UTC", "America/New_York"):
        set_tz(zone)
        for write in (layout.started_at, layout.run_at, layout.failed_at):
            assert layout.parse_time(write(GOLDEN_NOW)) == GOLDEN_MOMENT, (zone, write)
        assert layout.parse_time(layout.heartbeat_at(GOLDEN_NOW)) == GOLDEN_MOMENT


# --- worker ids and titles --------------------------------------------------------------------


def test_worker_id_is_host_pid_and_queues_as_given() -> None:
    assert layout.worker_id("vm", 1210, ["high", "low"]) == "vm:1210:high,low"
    assert layout.worker_id("vm", 7, ["*"]) == "vm:7:*"


def test_parse_worker_id_splits_like_ruby() -> None:
    assert layout.parse_worker_id("vm:1210:high,low") == ("vm", 1210, ["high", "low"])


def test_parse_worker_id_keeps_colons_in_queue_names_like_ruby_split_limit_3() -> None:
    assert layout.parse_worker_id("vm:5:a:b,c") == ("vm", 5, ["a:b", "c"])


@pytest.mark.parametrize(
    ("worker", "parsed"),
    [
        ("vm:1210", ("vm", 1210, [])),
        ("vm:1210:", ("vm", 1210, [])),
        ("vm:abc:high", ("vm", None, ["high"])),
        ("garbage", ("garbage", None, [])),
        ("", ("", None, [])),
    ],
)
def test_parse_worker_id_survives_malformed_ids(
    worker: str, parsed: tuple[str, int | None, list[str]]
) -> None:
    assert layout.parse_worker_id(worker) == parsed


def test_worker_id_round_trips() -> None:
    worker = layout.worker_id("host-1.example", 4242, ["a", "b", "c"])
    assert layout.parse_worker_id(worker) == ("host-1.example", 4242, ["a", "b", "c"])


def test_process_title_matches_ruby_and_perl_prune_patterns() -> None:
    title = layout.process_title("0.1.0", layout.title_waiting(["high", "low"]))
    assert title == "resque-0.1.0: Waiting for high,low"
    assert re.search(r"[r]esque:work|[r]esque:\sStarting|[r]esque-[0-9]", title)
    assert "resque" in title  # Perl: ps | grep resque
    assert re.search(r"[r]esque:\sStarting", layout.STARTING_TITLE)


def test_process_title_states_read_like_rubys() -> None:
    assert layout.title_processing("low", 1795823182, "Sleep") == (
        "Processing low since 1795823182 [Sleep]"
    )
    assert layout.title_forked(12976, 1795823182) == "Forked 12976 at 1795823182"
    assert layout.process_title("0.1.0", layout.TITLE_PAUSED, prefix="app ") == (
        "app resque-0.1.0: Paused"
    )


# --- records ----------------------------------------------------------------------------------


def test_working_on_record_is_byte_identical_to_ruby(utc: None) -> None:
    record = layout.working_on("low", layout.encode_job("Sleep", [3]), GOLDEN_NOW)
    assert record == (
        '{"queue":"low","run_at":"2026-11-27T23:46:22Z","payload":{"class":"Sleep","args":[3]}}'
    )


def test_failure_record_is_byte_identical_to_ruby(utc: None) -> None:
    record = layout.failure_record(
        payload={"class": "Fail", "args": []},
        exception="RuntimeError",
        error="boom",
        backtrace=["harness/ruby/jobs.rb:26:in `perform'"],
        worker="vm:1210:high,low",
        queue="low",
        now=GOLDEN_NOW,
    )
    assert record == (
        '{"failed_at":"2026/11/27 23:46:22 UTC","payload":{"class":"Fail","args":[]},'
        '"exception":"RuntimeError","error":"boom",'
        '"backtrace":["harness/ruby/jobs.rb:26:in `perform\'"],'
        '"worker":"vm:1210:high,low","queue":"low"}'
    )


def test_synthetic_failure_messages_match_ruby() -> None:
    assert layout.child_signal_message(12976, "SIGKILL", 9) == (
        "Child process received unhandled signal pid 12976 SIGKILL (signal 9)"
    )
    assert layout.prune_message("otherhost:1:high,low", "Hello") == (
        "Worker otherhost:1:high,low did not gracefully exit while processing Hello"
    )
    assert layout.prune_message("h:1:q", None).endswith("processing <Unknown Job>")
    assert layout.DIRTY_EXIT == "Resque::DirtyExit"
    assert layout.PRUNE_DIRTY_EXIT == "Resque::PruneDeadWorkerDirtyExit"
    assert layout.STILL_PROCESSING == "Job still being processed"


# --- keys -------------------------------------------------------------------------------------


def test_keys_under_the_default_namespace_match_ruby() -> None:
    keys = layout.Keys()
    worker = "vm:1210:high,low"
    assert keys.namespace == "resque"
    assert keys.queues == "resque:queues"
    assert keys.queue("high") == "resque:queue:high"
    assert keys.workers == "resque:workers"
    assert keys.worker(worker) == "resque:worker:vm:1210:high,low"
    assert keys.worker_started(worker) == "resque:worker:vm:1210:high,low:started"
    assert keys.heartbeat == "resque:workers:heartbeat"
    assert keys.prune_lock == "resque:pruning_dead_workers_in_progress"
    assert keys.stat("processed") == "resque:stat:processed"
    assert keys.worker_stat("failed", worker) == "resque:stat:failed:vm:1210:high,low"
    assert keys.failed == "resque:failed"
    assert keys.failed_queue("low") == "resque:low_failed"
    assert keys.failed_queues == "resque:failed_queues"
    assert keys.pause == "resque:pause-all-workers"


def test_keys_under_another_namespace() -> None:
    keys = layout.Keys("myapp")
    assert keys.queue("high") == "myapp:queue:high"
    assert keys.queue_name("myapp:queue:high") == "high"
    assert keys.workers == "myapp:workers"
    assert keys.inflight("h:1:q") == "myapp:inflight:h:1:q"
    assert keys.inflight_workers == "myapp:inflight"
    assert keys.wake_channel("high") == "myapp:wake:high"
    assert keys.wake_pattern == "myapp:wake:*"


def test_keys_with_an_empty_namespace_have_no_prefix_or_leading_colon() -> None:
    keys = layout.Keys("")
    assert keys.prefix == ""
    assert keys.queues == "queues"
    assert keys.queue("high") == "queue:high"
    assert keys.queue_name("queue:high") == "high"
    assert keys.failed == "failed"
    assert keys.stat("processed") == "stat:processed"
    assert keys.wake_channel("high") == "wake:high"


def test_queue_name_inverts_queue_for_names_with_colons() -> None:
    keys = layout.Keys()
    assert keys.queue_name(keys.queue("mail:urgent")) == "mail:urgent"
