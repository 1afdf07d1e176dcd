"""The age of each queue's oldest job, from the marks scrapes leave (resque/lua/queue_marks.lua).

An earlier scrape is stood in for by writing its marks as the script writes them (seen time,
item, position), in the past; the script itself only ever reads Redis's clock.
"""

from __future__ import annotations

import json

import redis

from resque import Resque, layout
from resque.prometheus.ages import LARGEST_MARKED, MARKS_PER_QUEUE, queue_ages


def job(n: int) -> str:
    return layout.encode_job("Job", [n])


def marks(r: redis.Redis, resque: Resque, queue: str) -> list[list[object]]:
    raw = r.hget(layout.queue_marks_key(resque.keys), queue)
    return json.loads(raw) if raw else []


def earlier_scrape(r: redis.Redis, resque: Resque, queue: str, length: int,
                   seen: list[tuple[float, str, int]]) -> None:
    """Marks as a scrape ``ago`` seconds back, when the queue had ``length`` jobs, would
    have left them: (ago, item, position)."""
    now = float(r.time()[0])
    r.hset(layout.queue_marks_key(resque.keys), queue, json.dumps(
        [[now - ago, item, position, length] for ago, item, position in seen]))


def where(r: redis.Redis, resque: Resque, queue: str) -> list[tuple[object, ...]]:
    """(item, position, length) of each mark a scrape left."""
    return [tuple(mark[1:]) for mark in marks(r, resque, queue)]


def test_first_scrape_marks_head_and_tail_and_reads_zero(r: redis.Redis, resque: Resque) -> None:
    r.rpush(resque.keys.queue("q"), job(1), job(2), job(3))
    assert queue_ages(r, resque.keys, ["q"]) == {"q": 0.0}
    assert where(r, resque, "q") == [(job(1), 0, 3), (job(3), 2, 3)]


def test_the_oldest_mark_still_queued_gives_the_age(r: redis.Redis, resque: Resque) -> None:
    r.rpush(resque.keys.queue("q"), job(3), job(4), job(5))  # 1 and 2 were taken since
    earlier_scrape(r, resque, "q", 10, [(300, job(1), 0), (200, job(2), 3), (100, job(4), 5)])
    age = queue_ages(r, resque.keys, ["q"])["q"]
    assert 100 <= age < 102  # job 3, ahead of job 4, is at least as old
    assert where(r, resque, "q") == [(job(4), 1, 3), (job(5), 2, 3)]


def test_a_mark_near_the_tail_of_a_long_queue_is_found_from_the_tail(
    r: redis.Redis, resque: Resque
) -> None:
    r.rpush(resque.keys.queue("q"), *[job(n) for n in range(5000)])
    earlier_scrape(r, resque, "q", 4000, [(80, job(3990), 3990)])  # 1,000 pushed since
    assert 80 <= queue_ages(r, resque.keys, ["q"])["q"] < 82
    assert where(r, resque, "q")[0] == (job(3990), 3990, 5000)


def test_identical_jobs_are_not_marked_so_their_queue_reads_zero(
    r: redis.Redis, resque: Resque
) -> None:
    r.rpush(resque.keys.queue("q"), *[job(7)] * 5)
    assert queue_ages(r, resque.keys, ["q"]) == {"q": 0.0}
    assert marks(r, resque, "q") == []


def test_jobs_we_enqueue_alike_differ_by_their_ids_so_they_are_marked(
    r: redis.Redis, resque: Resque
) -> None:
    handles = [resque.enqueue_to("q", "Job", 7) for _ in range(5)]  # ids on: all unique
    Resque(r, job_ids=False).enqueue_to("same", "Job", 7)
    Resque(r, job_ids=False).enqueue_to("same", "Job", 7)  # Ruby's bytes: identical
    assert queue_ages(r, resque.keys, ["q", "same"]) == {"q": 0.0, "same": 0.0}
    first, last = handles[0], handles[-1]
    assert first is not None and last is not None
    assert where(r, resque, "q") == [(first.payload, 0, 5), (last.payload, 4, 5)]
    assert marks(r, resque, "same") == []


def test_a_mark_is_sought_no_further_than_where_it_was_seen(
    r: redis.Redis, resque: Resque
) -> None:
    # Job 9 was marked at position 0; a job 9 now at 200 was pushed later: not the same.
    r.rpush(resque.keys.queue("q"), *[job(n) for n in range(100, 300)], job(9))
    earlier_scrape(r, resque, "q", 1, [(500, job(9), 0)])
    assert queue_ages(r, resque.keys, ["q"])["q"] < 2


def test_an_empty_queue_reads_zero_and_forgets_its_marks(r: redis.Redis, resque: Resque) -> None:
    r.sadd(resque.keys.queues, "q")
    earlier_scrape(r, resque, "q", 1, [(100, job(1), 0)])
    assert queue_ages(r, resque.keys, ["q"]) == {"q": 0.0}
    assert not r.hexists(layout.queue_marks_key(resque.keys), "q")


def test_marks_of_queues_no_longer_asked_for_are_deleted(r: redis.Redis, resque: Resque) -> None:
    r.rpush(resque.keys.queue("kept"), job(1))
    earlier_scrape(r, resque, "removed", 1, [(100, job(1), 0)])
    queue_ages(r, resque.keys, ["kept"])
    assert r.hkeys(layout.queue_marks_key(resque.keys)) == [b"kept"]
    assert 0 < r.ttl(layout.queue_marks_key(resque.keys)) <= 86400


def test_without_saving_nothing_is_written(r: redis.Redis, resque: Resque) -> None:
    r.rpush(resque.keys.queue("q"), job(1), job(2))
    earlier_scrape(r, resque, "q", 2, [(60, job(1), 0)])
    before = r.hget(layout.queue_marks_key(resque.keys), "q")
    assert 60 <= queue_ages(r, resque.keys, ["q"], save=False)["q"] < 62
    assert r.hget(layout.queue_marks_key(resque.keys), "q") == before


def test_marks_are_thinned_evenly(r: redis.Redis, resque: Resque) -> None:
    count = MARKS_PER_QUEUE + 4
    r.rpush(resque.keys.queue("q"), *[job(n) for n in range(count + 1)])
    earlier_scrape(r, resque, "q", count, [(1000 - 10 * n, job(n), n) for n in range(count)])
    assert 1000 <= queue_ages(r, resque.keys, ["q"])["q"] < 1002
    kept = marks(r, resque, "q")
    assert len(kept) == MARKS_PER_QUEUE
    assert (kept[0][1], kept[-1][1]) == (job(0), job(count))  # the oldest and the new tail


def test_items_too_large_to_mark_read_zero(r: redis.Redis, resque: Resque) -> None:
    r.rpush(resque.keys.queue("q"), layout.encode_job("Job", ["x" * LARGEST_MARKED]))
    assert queue_ages(r, resque.keys, ["q"]) == {"q": 0.0}
    assert marks(r, resque, "q") == []


def test_a_queue_key_of_another_type_is_left_out(r: redis.Redis, resque: Resque) -> None:
    r.set(resque.keys.queue("junk"), "x")
    r.rpush(resque.keys.queue("q"), job(1))
    assert queue_ages(r, resque.keys, ["junk", "q"]) == {"q": 0.0}


def test_unreadable_marks_are_replaced(r: redis.Redis, resque: Resque) -> None:
    r.rpush(resque.keys.queue("q"), job(1))
    r.hset(layout.queue_marks_key(resque.keys), "q", "not json")
    assert queue_ages(r, resque.keys, ["q"]) == {"q": 0.0}
    assert where(r, resque, "q") == [(job(1), 0, 1)]
