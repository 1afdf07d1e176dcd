"""resque.durations: what a worker adds to the farm's duration histograms, byte for byte, and
the flush script's refusal path (a full hash takes no new series, whole or not at all)."""

from __future__ import annotations

import redis
from support.replies import as_bytes

from resque import Resque, layout
from resque.durations import ADD_SCRIPT, DurationRecorder, read_durations


def fields(r: redis.Redis, resque: Resque) -> dict[bytes, bytes]:
    return {as_bytes(k): as_bytes(v)
            for k, v in r.hgetall(layout.job_durations_key(resque.keys)).items()}


def test_a_flush_adds_bucket_sum_and_failure_fields(r: redis.Redis, resque: Resque) -> None:
    recorder = DurationRecorder(r, resque.keys)
    recorder.observe("mail", "Mailer::Welcome", 0.004, failed=False)
    recorder.observe("mail", "Mailer::Welcome", 0.25, failed=True)  # on a bound: that bucket
    recorder.observe("mail", "Mailer::Welcome", 4000.0, failed=False)
    assert recorder.flush() == 0
    series = '["mail","Mailer::Welcome"]'
    assert fields(r, resque) == {
        f"sum_us {series}".encode(): b"4000254000",
        f"b:0.005 {series}".encode(): b"1",
        f"b:0.25 {series}".encode(): b"1",
        f"b:+Inf {series}".encode(): b"1",
        f"failed {series}".encode(): b"1",
    }
    assert 0 < r.ttl(layout.job_durations_key(resque.keys)) <= 30 * 86400
    assert recorder.flush() == 0  # nothing new: nothing sent
    assert fields(r, resque)[f"b:0.005 {series}".encode()] == b"1"


def test_workers_add_up_and_reading_gives_cumulative_buckets(
    r: redis.Redis, resque: Resque
) -> None:
    for seconds in (0.02, 0.7):
        recorder = DurationRecorder(r, resque.keys)
        recorder.observe("q", "Job", seconds, failed=seconds > 0.5)
        recorder.flush()
    (series,) = read_durations(r, resque.keys)
    assert (series.queue, series.class_name, series.count, series.failed) == ("q", "Job", 2, 1)
    assert abs(series.sum_seconds - 0.72) < 1e-9
    buckets = dict(series.buckets)
    assert (buckets["0.01"], buckets["0.025"], buckets["0.5"], buckets["1.0"]) == (0, 1, 1, 2)
    assert series.buckets[-1] == ("+Inf", 2)


def test_a_full_hash_takes_no_new_series_but_known_ones_keep_counting(
    r: redis.Redis, resque: Resque
) -> None:
    add = r.register_script(ADD_SCRIPT)
    key = layout.job_durations_key(resque.keys)

    def group(queue: str, jobs: int) -> list[str | int]:
        return [2, layout.duration_field("sum_us", queue, "Job"), 10 * jobs,
                layout.duration_field("b:+Inf", queue, "Job"), jobs]

    assert add(keys=[key], args=[4, 60, *group("a", 1), *group("b", 1)]) == 0
    assert add(keys=[key], args=[4, 60, *group("c", 5), *group("a", 2)]) == 1
    assert [s.queue for s in read_durations(r, resque.keys)] == ["a", "b"]
    assert read_durations(r, resque.keys)[0].count == 3


def test_counts_are_kept_while_redis_refuses_and_sent_when_it_answers(
    r: redis.Redis, resque: Resque, redis_url: str
) -> None:
    recorder = DurationRecorder(redis.Redis.from_url(redis_url), resque.keys)
    recorder.observe("q", "Job", 0.1, failed=False)
    r.config_set("requirepass", "s3cret")
    try:
        assert recorder.flush() == 0
        recorder.observe("q", "Job", 0.1, failed=True)
    finally:
        admin = redis.Redis.from_url(redis_url, password="s3cret")
        admin.config_set("requirepass", "")
        admin.close()
    assert recorder.flush() == 0
    (series,) = read_durations(r, resque.keys)
    assert (series.count, series.failed) == (2, 1)


def test_fields_that_are_not_ours_are_skipped(r: redis.Redis, resque: Resque) -> None:
    key = layout.job_durations_key(resque.keys)
    r.hset(key, mapping={"junk": "1", 'b:0.1 ["q"]': "1", 'b:0.1 ["q","Job"]': "x",
                         'b:abc ["q","Job"]': "1", 'b:+Inf ["q","Job"]': "2"})
    (series,) = read_durations(r, resque.keys)
    assert series.count == 2
    assert "abc" not in dict(series.buckets)
