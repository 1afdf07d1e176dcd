"""The client API (resque/client.py, resque/job.py): what each call leaves in Redis.

Every assertion on Redis reads the raw bytes with a plain client, because Ruby and Perl peers
read those bytes, not our objects.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from support.replies import bytes_list

import resque
from resque import Resque, layout
from resque.client import BULK_CHUNK
from resque.errors import BadPayload, JobForbidden, JobNotFound, NoQueueError


@pytest.fixture
def reg() -> resque.Registry:
    return resque.Registry()


@pytest.fixture
def q(r: redis.Redis, reg: resque.Registry) -> Resque:
    """A client writing Ruby's exact payloads (``job_ids=False``): this module checks bytes.
    Job ids, keywords and handles have their own module (test_handles.py)."""
    return Resque(r, registry=reg, job_ids=False)


def items(r: redis.Redis, queue: str) -> list[bytes]:
    return bytes_list(r.lrange(f"resque:queue:{queue}", 0, -1))


class Unregistered:
    """A Ruby-style job class: a ``queue`` attribute and a static ``perform``."""

    queue = "plain"

    @staticmethod
    def perform(*args: Any) -> None:
        pass


@resque.job(queue="mail", registry=resque.Registry())
def send_mail(address: str) -> None:
    pass


class NoQueue:
    @staticmethod
    def perform() -> None:
        pass


# --- enqueue ----------------------------------------------------------------------------------


def test_enqueued_job_is_byte_identical_to_ruby(q: Resque, r: redis.Redis) -> None:
    assert q.enqueue_to("high", "Hello", "a", 1) is not None
    assert items(r, "high") == [b'{"class":"Hello","args":["a",1]}']
    assert r.smembers("resque:queues") == {b"high"}


def test_enqueue_takes_the_queue_from_the_class_attribute(q: Resque, r: redis.Redis) -> None:
    q.enqueue(Unregistered, 1)
    name = f"{Unregistered.__module__}.Unregistered"
    assert items(r, "plain") == [layout.encode_job(name, [1]).encode()]


def test_enqueue_takes_a_computed_queue_from_the_class(
    q: Resque, r: redis.Redis, reg: resque.Registry
) -> None:
    @resque.job(name="Computed", registry=reg)
    class Computed:
        @staticmethod
        def queue() -> str:
            return "computed"

        @staticmethod
        def perform() -> None:
            pass

    q.enqueue(Computed)
    assert r.llen("resque:queue:computed") == 1


def test_enqueue_takes_the_queue_from_the_job_decorator(
    q: Resque, r: redis.Redis, reg: resque.Registry
) -> None:
    q.enqueue(send_mail, "a@example.com")
    name = f"{send_mail.func.__module__}.{send_mail.func.__qualname__}"
    assert items(r, "mail") == [layout.encode_job(name, ["a@example.com"]).encode()]


def test_a_job_registered_with_a_ruby_name_is_enqueued_under_that_name(
    q: Resque, r: redis.Redis, reg: resque.Registry
) -> None:
    @resque.job(queue="mail", name="Mailer::Welcome", registry=reg)
    def welcome(user_id: int) -> None:
        pass

    q.enqueue(welcome, 42)
    q.enqueue("Mailer::Welcome", 43)  # by name, queue looked up in the registry
    assert items(r, "mail") == [
        b'{"class":"Mailer::Welcome","args":[42]}',
        b'{"class":"Mailer::Welcome","args":[43]}',
    ]


def test_a_registered_class_keeps_its_queue_and_name(
    q: Resque, r: redis.Redis, reg: resque.Registry
) -> None:
    @resque.job(queue="reports", name="Report", registry=reg)
    class Report:
        @staticmethod
        def perform(day: str) -> None:
            pass

    assert Report.queue == "reports"  # type: ignore[attr-defined]
    q.enqueue(Report, "2026-11-27")
    assert items(r, "reports") == [b'{"class":"Report","args":["2026-11-27"]}']


@pytest.mark.parametrize("job", [NoQueue, "Unknown::Job"])
def test_enqueue_without_a_queue_raises_no_queue_error(q: Resque, r: redis.Redis, job: Any) -> None:
    with pytest.raises(NoQueueError, match="enqueue_to"):
        q.enqueue(job)
    assert r.keys("*") == []


def test_a_decorated_function_without_a_queue_raises_no_queue_error(
    q: Resque, reg: resque.Registry
) -> None:
    @resque.job(name="no_queue", registry=reg)
    def no_queue() -> None:
        pass

    with pytest.raises(NoQueueError):
        q.enqueue(no_queue)


def test_enqueue_to_overrides_the_class_queue(q: Resque, r: redis.Redis) -> None:
    q.enqueue_to("elsewhere", Unregistered, 1)
    assert r.llen("resque:queue:elsewhere") == 1
    assert not r.exists("resque:queue:plain")


def test_enqueue_appends_in_order(q: Resque, r: redis.Redis) -> None:
    for n in range(5):
        q.enqueue_to("high", "Count", n)
    assert [json.loads(raw)["args"] for raw in items(r, "high")] == [[0], [1], [2], [3], [4]]


def test_enqueue_publishes_a_wake_up_for_idle_workers(q: Resque, r: redis.Redis) -> None:
    pubsub = r.pubsub()
    pubsub.subscribe(q.keys.wake_channel("high"))
    assert pubsub.get_message(timeout=1)["type"] == "subscribe"
    q.enqueue_to("high", "Hello")
    message = pubsub.get_message(timeout=1)
    assert message is not None and message["channel"] == b"resque:wake:high"
    pubsub.close()


# --- enqueue hooks ----------------------------------------------------------------------------


def test_before_enqueue_returning_false_cancels_and_nothing_reaches_redis(
    q: Resque, r: redis.Redis, reg: resque.Registry
) -> None:
    after: list[Any] = []

    @resque.job(name="Vetoed", registry=reg)
    class Vetoed:
        queue = "high"

        @staticmethod
        def before_enqueue(*args: Any) -> bool:
            return False

        @staticmethod
        def after_enqueue(*args: Any) -> None:
            after.append(args)

        @staticmethod
        def perform(*args: Any) -> None:
            pass

    assert q.enqueue(Vetoed, 1) is None
    assert r.keys("*") == []
    assert after == []


def test_before_enqueue_returning_none_does_not_cancel(
    q: Resque, r: redis.Redis, reg: resque.Registry
) -> None:
    @resque.job(name="Allowed", registry=reg)
    class Allowed:
        queue = "high"

        @staticmethod
        def before_enqueue(*args: Any) -> None:
            return None

        @staticmethod
        def perform() -> None:
            pass

    assert q.enqueue(Allowed) is not None
    assert r.llen("resque:queue:high") == 1


def test_enqueue_hooks_run_sorted_by_name_with_the_job_args(
    q: Resque, r: redis.Redis, reg: resque.Registry
) -> None:
    calls: list[tuple[str, tuple[Any, ...], int]] = []

    @resque.job(name="Hooked", registry=reg)
    class Hooked:
        queue = "high"

        @staticmethod
        def before_enqueue_b(*args: Any) -> None:
            calls.append(("before_enqueue_b", args, r.llen("resque:queue:high")))

        @staticmethod
        def before_enqueue(*args: Any) -> None:
            calls.append(("before_enqueue", args, r.llen("resque:queue:high")))

        @staticmethod
        def before_enqueue_a(*args: Any) -> None:
            calls.append(("before_enqueue_a", args, r.llen("resque:queue:high")))

        @staticmethod
        def after_enqueue_z(*args: Any) -> None:
            calls.append(("after_enqueue_z", args, r.llen("resque:queue:high")))

        @staticmethod
        def after_enqueue(*args: Any) -> None:
            calls.append(("after_enqueue", args, r.llen("resque:queue:high")))

        @staticmethod
        def perform(*args: Any) -> None:
            pass

    q.enqueue(Hooked, "x", 2)
    # The last field is the queue length when the hook ran: before hooks see nothing queued.
    assert calls == [
        ("before_enqueue", ("x", 2), 0),
        ("before_enqueue_a", ("x", 2), 0),
        ("before_enqueue_b", ("x", 2), 0),
        ("after_enqueue", ("x", 2), 1),
        ("after_enqueue_z", ("x", 2), 1),
    ]


def test_one_false_among_several_before_enqueue_hooks_cancels(
    q: Resque, r: redis.Redis, reg: resque.Registry
) -> None:
    @resque.job(name="Vetoed", registry=reg)
    class Vetoed:
        queue = "high"

        @staticmethod
        def before_enqueue(*args: Any) -> None:
            pass

        @staticmethod
        def before_enqueue_check(*args: Any) -> bool:
            return False

        @staticmethod
        def perform() -> None:
            pass

    assert q.enqueue(Vetoed) is None
    assert r.keys("*") == []


def test_function_jobs_take_enqueue_hooks_by_decorator(
    q: Resque, r: redis.Redis, reg: resque.Registry
) -> None:
    seen: list[Any] = []

    @resque.job(queue="mail", name="notify", registry=reg)
    def notify(user: int) -> None:
        pass

    @notify.hook("before_enqueue")
    def only_even(user: int) -> bool:
        return user % 2 == 0

    @notify.hook("after_enqueue")
    def record(user: int) -> None:
        seen.append(user)

    assert q.enqueue(notify, 1) is None
    assert q.enqueue(notify, 2) is not None
    assert seen == [2]
    assert r.llen("resque:queue:mail") == 1


def test_enqueue_by_registered_name_runs_the_jobs_hooks(
    q: Resque, r: redis.Redis, reg: resque.Registry
) -> None:
    @resque.job(queue="mail", name="Mailer::Welcome", registry=reg)
    class Welcome:
        @staticmethod
        def before_enqueue(*args: Any) -> bool:
            return False

        @staticmethod
        def perform() -> None:
            pass

    assert q.enqueue_to("mail", "Mailer::Welcome") is None
    assert r.keys("*") == []


def test_an_unknown_hook_kind_is_refused(reg: resque.Registry) -> None:
    @resque.job(queue="q", registry=reg)
    def task() -> None:
        pass

    with pytest.raises(ValueError, match="unknown hook kind"):
        task.hook("before_everything")


# --- push -------------------------------------------------------------------------------------


def test_push_writes_class_then_args(q: Resque, r: redis.Redis) -> None:
    q.push("high", {"args": ["a", 1], "class": "Hello"})
    assert items(r, "high") == [b'{"class":"Hello","args":["a",1]}']
    assert r.smembers("resque:queues") == {b"high"}


def test_push_keeps_extra_keys_after_class_and_args(q: Resque, r: redis.Redis) -> None:
    q.push("high", {"jid": "abc", "args": [1], "meta": {"b": 1, "a": "☃"}, "class": "Hello"})
    assert items(r, "high") == [
        '{"class":"Hello","args":[1],"jid":"abc","meta":{"b":1,"a":"☃"}}'.encode()
    ]


def test_push_without_args_writes_an_empty_array(q: Resque, r: redis.Redis) -> None:
    q.push("high", {"class": "Noop"})
    assert items(r, "high") == [b'{"class":"Noop","args":[]}']


def test_push_skips_enqueue_hooks_like_ruby(
    q: Resque, r: redis.Redis, reg: resque.Registry
) -> None:
    @resque.job(name="Vetoed", registry=reg)
    class Vetoed:
        queue = "high"

        @staticmethod
        def before_enqueue(*args: Any) -> bool:
            return False

    q.push("high", {"class": Vetoed, "args": []})
    assert r.llen("resque:queue:high") == 1


@pytest.mark.parametrize("item", [{"args": []}, ["Hello", []], "Hello"])
def test_push_refuses_items_without_a_class(q: Resque, r: redis.Redis, item: Any) -> None:
    with pytest.raises(ValueError):
        q.push("high", item)
    assert r.keys("*") == []


def test_push_refuses_args_that_are_not_a_list(q: Resque, r: redis.Redis) -> None:
    with pytest.raises(TypeError):
        q.push("high", {"class": "Hello", "args": {"a": 1}})
    assert r.keys("*") == []


# --- pop, peek, size, queues ------------------------------------------------------------------


def test_pop_takes_jobs_first_in_first_out(q: Resque) -> None:
    q.enqueue_to("high", "Hello", 1)
    q.enqueue_to("high", "Hello", 2)
    assert q.pop("high") == {"class": "Hello", "args": [1]}
    assert q.pop("high") == {"class": "Hello", "args": [2]}
    assert q.pop("high") is None


def test_pop_of_an_unknown_queue_is_none(q: Resque) -> None:
    assert q.pop("never-used") is None


def test_pop_reads_perl_ordered_items(q: Resque, r: redis.Redis) -> None:
    r.rpush("resque:queue:high", '{"args":["world",1],"class":"Hello"}')
    assert q.pop("high") == {"args": ["world", 1], "class": "Hello"}


def test_peek_with_count_one_returns_one_item_or_none(q: Resque) -> None:
    assert q.peek("high") is None
    q.enqueue_to("high", "Hello", 1)
    q.enqueue_to("high", "Hello", 2)
    assert q.peek("high") == {"class": "Hello", "args": [1]}
    assert q.peek("high", 1) == {"class": "Hello", "args": [2]}
    assert q.peek("high", 2) is None


def test_peek_with_a_larger_count_returns_a_list(q: Resque) -> None:
    for n in range(4):
        q.enqueue_to("high", "Hello", n)
    assert [job["args"] for job in q.peek("high", 0, 3)] == [[0], [1], [2]]
    assert [job["args"] for job in q.peek("high", 2, 10)] == [[2], [3]]
    assert q.peek("high", 10, 2) == []
    assert q.peek("empty", 0, 2) == []


def test_peek_leaves_the_queue_alone(q: Resque) -> None:
    q.enqueue_to("high", "Hello")
    q.peek("high", 0, 5)
    assert q.size("high") == 1


@pytest.mark.parametrize(("start", "count"), [(0, 0), (-1, 1), (0, -3)])
def test_peek_refuses_negative_start_or_count_below_one(q: Resque, start: int, count: int) -> None:
    with pytest.raises(ValueError):
        q.peek("high", start, count)


def test_size_counts_queued_jobs(q: Resque) -> None:
    assert q.size("high") == 0
    q.enqueue_to("high", "Hello")
    q.enqueue_to("high", "Hello")
    assert q.size("high") == 2


def test_queues_are_sorted_and_kept_after_they_drain_like_ruby(q: Resque) -> None:
    q.enqueue_to("zeta", "Hello")
    q.enqueue_to("alpha", "Hello")
    q.pop("zeta")
    assert q.queues() == ["alpha", "zeta"]
    assert q.queue_sizes() == {"alpha": 1, "zeta": 0}


def test_remove_queue_forgets_the_queue_and_deletes_its_jobs(q: Resque, r: redis.Redis) -> None:
    q.enqueue_to("high", "Hello")
    q.enqueue_to("high", "Hello", 2)
    q.enqueue_to("low", "Hello")
    assert q.remove_queue("high") == 2
    assert q.queues() == ["low"]
    assert not r.exists("resque:queue:high")
    assert q.size("low") == 1


def test_remove_queue_of_an_unknown_queue_deletes_nothing(q: Resque) -> None:
    assert q.remove_queue("nothing-here") == 0


def test_the_core_client_has_no_scheduler_or_worker_methods(r: redis.Redis) -> None:
    client = resque.Client(r)
    assert client.enqueue_to("high", "Hello") is not None
    assert not hasattr(client, "enqueue_at") and not hasattr(client, "worker")
    assert isinstance(Resque(r), resque.Client)


# --- dequeue ----------------------------------------------------------------------------------


def test_dequeue_removes_every_job_of_a_class(q: Resque, r: redis.Redis) -> None:
    q.enqueue_to("high", "Hello", 1)
    q.enqueue_to("high", "Other", 1)
    q.enqueue_to("high", "Hello", 2)
    q.enqueue_to("high", "Hello", 1)
    assert q.dequeue("Hello", queue="high") == 3
    assert items(r, "high") == [b'{"class":"Other","args":[1]}']


def test_dequeue_with_args_removes_only_exact_matches(q: Resque, r: redis.Redis) -> None:
    q.enqueue_to("high", "Hello", 1)
    q.enqueue_to("high", "Hello", 2)
    q.enqueue_to("high", "Hello", 1, 2)
    q.enqueue_to("high", "Hello", 1)
    assert q.dequeue("Hello", 1, queue="high") == 2
    assert [json.loads(raw)["args"] for raw in items(r, "high")] == [[2], [1, 2]]


def test_dequeue_with_args_tells_true_from_1_and_1_0_like_rubys_byte_match(
    q: Resque, r: redis.Redis
) -> None:
    q.enqueue_to("high", "Hello", True)
    q.enqueue_to("high", "Hello", 1.0)
    q.enqueue_to("high", "Hello", 1)
    assert q.dequeue("Hello", 1, queue="high") == 1
    assert items(r, "high") == [
        b'{"class":"Hello","args":[true]}',
        b'{"class":"Hello","args":[1.0]}',
    ]


def test_dequeue_matches_perl_ordered_items_pushed_raw(q: Resque, r: redis.Redis) -> None:
    r.rpush(
        "resque:queue:high",
        '{"args":["world",1],"class":"Hello"}',
        '{"args":[{"b":2,"a":1}],"class":"Hello"}',
        '{"args":["other"],"class":"Hello"}',
    )
    assert q.dequeue("Hello", "world", 1, queue="high") == 1
    assert q.dequeue("Hello", {"a": 1, "b": 2}, queue="high") == 1  # nested key order too
    assert items(r, "high") == [b'{"args":["other"],"class":"Hello"}']


def test_dequeue_takes_the_queue_from_the_class(q: Resque, r: redis.Redis) -> None:
    q.enqueue(Unregistered, 1)
    assert q.dequeue(Unregistered) == 1
    assert q.size("plain") == 0


def test_dequeue_skips_unreadable_items_and_keeps_them(q: Resque, r: redis.Redis) -> None:
    r.rpush("resque:queue:high", "not json", '{"class":"Hello","args":[]}')
    assert q.dequeue("Hello", queue="high") == 1
    assert items(r, "high") == [b"not json"]


def test_dequeue_of_nothing_matching_returns_zero(q: Resque) -> None:
    q.enqueue_to("high", "Hello", 1)
    assert q.dequeue("Hello", 2, queue="high") == 0
    assert q.dequeue("Nobody", queue="high") == 0


def test_before_dequeue_returning_false_cancels(
    q: Resque, r: redis.Redis, reg: resque.Registry
) -> None:
    after: list[Any] = []

    @resque.job(name="Guarded", registry=reg)
    class Guarded:
        queue = "high"

        @staticmethod
        def before_dequeue(*args: Any) -> bool:
            return False

        @staticmethod
        def after_dequeue(*args: Any) -> None:
            after.append(args)

        @staticmethod
        def perform(*args: Any) -> None:
            pass

    q.enqueue(Guarded, 1)
    assert q.dequeue(Guarded, 1) is None
    assert r.llen("resque:queue:high") == 1
    assert after == []


def test_dequeue_hooks_run_around_the_removal(
    q: Resque, r: redis.Redis, reg: resque.Registry
) -> None:
    calls: list[tuple[str, tuple[Any, ...], int]] = []

    @resque.job(name="Hooked", registry=reg)
    class Hooked:
        queue = "high"

        @staticmethod
        def before_dequeue(*args: Any) -> None:
            calls.append(("before", args, r.llen("resque:queue:high")))

        @staticmethod
        def after_dequeue(*args: Any) -> None:
            calls.append(("after", args, r.llen("resque:queue:high")))

        @staticmethod
        def perform(*args: Any) -> None:
            pass

    q.enqueue(Hooked, 7)
    assert q.dequeue(Hooked, 7) == 1
    assert calls == [("before", (7,), 1), ("after", (7,), 0)]


# --- enqueue_many -----------------------------------------------------------------------------


def test_enqueue_many_queues_every_job_in_order(q: Resque, r: redis.Redis) -> None:
    count = BULK_CHUNK * 2 + 17  # several chunks
    assert q.enqueue_many("Bulk", ([n] for n in range(count)), queue="bulk") == count
    stored = items(r, "bulk")
    assert len(stored) == count
    assert stored[0] == b'{"class":"Bulk","args":[0]}'
    assert [json.loads(raw)["args"][0] for raw in stored] == list(range(count))
    assert r.smembers("resque:queues") == {b"bulk"}


def test_enqueue_many_takes_the_queue_from_the_job(q: Resque, r: redis.Redis) -> None:
    assert q.enqueue_many(Unregistered, [[1], [2]]) == 2
    assert r.llen("resque:queue:plain") == 2


def test_enqueue_many_sends_one_pipeline_of_chunks(redis_url: str, r: redis.Redis) -> None:
    class CountingConnection(redis.Connection):
        sends = 0

        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            CountingConnection.sends += 1
            redis.Connection.send_packed_command(self, command, check_health)

    kwargs = redis.Redis.from_url(redis_url).connection_pool.connection_kwargs
    pool = redis.ConnectionPool(
        connection_class=CountingConnection, host=kwargs["host"], port=kwargs["port"]
    )
    client = redis.Redis(connection_pool=pool)
    q = Resque(client)
    q.enqueue_many("Warm", [[0]], queue="warm")  # connects and loads the script
    calls_before = _evalsha_calls(r)
    CountingConnection.sends = 0

    count = BULK_CHUNK * 3 + 1
    q.enqueue_many("Bulk", ([n] for n in range(count)), queue="bulk")

    # One send for the pipeline, plus redis-py's SCRIPT EXISTS check before it.
    assert CountingConnection.sends <= 2
    assert _evalsha_calls(r) - calls_before == math.ceil(count / BULK_CHUNK)
    assert r.llen("resque:queue:bulk") == count
    client.close()


def _evalsha_calls(r: redis.Redis) -> int:
    stats = r.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


@pytest.mark.parametrize("bad", [{1}, math.nan, "\ud800"])
def test_enqueue_many_with_bad_args_anywhere_queues_nothing(
    q: Resque, r: redis.Redis, bad: Any
) -> None:
    args_list: list[list[Any]] = [[n] for n in range(BULK_CHUNK + 10)]
    args_list[-1] = [bad]
    with pytest.raises((TypeError, ValueError)):
        q.enqueue_many("Bulk", args_list, queue="bulk")
    assert r.keys("*") == []


def test_enqueue_many_with_an_args_value_that_is_not_a_list_queues_nothing(
    q: Resque, r: redis.Redis
) -> None:
    with pytest.raises(TypeError):
        q.enqueue_many("Bulk", [[1], "oops"], queue="bulk")  # a str is a Sequence to mypy
    assert r.keys("*") == []


def test_enqueue_many_of_nothing_writes_nothing(q: Resque, r: redis.Redis) -> None:
    assert q.enqueue_many("Bulk", [], queue="bulk") == 0
    assert r.keys("*") == []


def test_enqueue_many_skips_enqueue_hooks(q: Resque, r: redis.Redis, reg: resque.Registry) -> None:
    @resque.job(name="Vetoed", registry=reg)
    class Vetoed:
        queue = "high"

        @staticmethod
        def before_enqueue(*args: Any) -> bool:
            return False

    assert q.enqueue_many(Vetoed, [[1], [2]]) == 2
    assert r.llen("resque:queue:high") == 2


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("queue", ["", "two words", "tab\there", "new\nline", " lead", None, 5])
def test_unusable_queue_names_are_refused_before_redis(
    q: Resque, r: redis.Redis, queue: Any
) -> None:
    with pytest.raises(NoQueueError):
        q.enqueue_to(queue, "Hello")
    with pytest.raises(NoQueueError):
        q.push(queue, {"class": "Hello", "args": []})
    with pytest.raises(NoQueueError):
        q.enqueue_many("Hello", [[1]], queue=queue or " ")
    assert r.keys("*") == []


def test_no_queue_error_is_a_value_error() -> None:
    assert issubclass(NoQueueError, ValueError)


@pytest.mark.parametrize(
    ("bad", "error"),
    [({1, 2}, TypeError), (object(), TypeError), (math.nan, ValueError), ("\udc80", ValueError)],
)
def test_args_json_cannot_hold_are_refused_with_nothing_in_redis(
    q: Resque, r: redis.Redis, bad: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        q.enqueue_to("high", "Hello", "fine", bad)
    with pytest.raises(error):
        q.push("high", {"class": "Hello", "args": [bad]})
    assert r.keys("*") == []


def test_bad_args_are_refused_before_before_enqueue_hooks_run(q: Resque, r: redis.Redis) -> None:
    ran: list[Any] = []

    class Hooked:
        queue = "high"

        @staticmethod
        def before_enqueue(*args: Any) -> None:
            ran.append(args)

        @staticmethod
        def perform(*args: Any) -> None:
            pass

    with pytest.raises(TypeError):
        q.enqueue(Hooked, {1})
    assert ran == []


def test_an_empty_class_name_is_refused(q: Resque, r: redis.Redis) -> None:
    with pytest.raises(ValueError):
        q.enqueue_to("high", "")
    assert r.keys("*") == []


def test_pop_of_a_non_json_item_raises_bad_payload_and_leaves_it_queued(
    q: Resque, r: redis.Redis
) -> None:
    r.rpush("resque:queue:high", "not json", '{"class":"Hello","args":[]}')
    with pytest.raises(BadPayload) as caught:
        q.pop("high")
    assert "'high'" in str(caught.value)
    assert caught.value.raw == b"not json"
    assert items(r, "high") == [b"not json", b'{"class":"Hello","args":[]}']


@pytest.mark.parametrize("raw", ['{"class":"Noop","args":{"a":1}}', '["Hello"]', '{"args":[]}'])
def test_pop_of_a_json_non_job_raises_bad_payload_and_leaves_it_queued(
    q: Resque, r: redis.Redis, raw: str
) -> None:
    r.rpush("resque:queue:high", raw)
    with pytest.raises(BadPayload, match="high"):
        q.pop("high")
    assert items(r, "high") == [raw.encode()]


def test_peek_of_a_non_json_item_raises_bad_payload_naming_the_queue(
    q: Resque, r: redis.Redis
) -> None:
    r.rpush("resque:queue:low", "\xff garbage")
    with pytest.raises(BadPayload, match="'low'"):
        q.peek("low")
    with pytest.raises(BadPayload, match="'low'"):
        q.peek("low", 0, 5)
    assert r.llen("resque:queue:low") == 1


# --- stats, workers, info ---------------------------------------------------------------------


def add_worker(r: redis.Redis, worker: str, record: str | None) -> None:
    r.sadd("resque:workers", worker)
    if record is not None:
        r.set(f"resque:worker:{worker}", record)


def test_working_maps_busy_workers_to_their_records(q: Resque, r: redis.Redis) -> None:
    busy = '{"queue":"low","run_at":"2026-11-27T23:46:22Z","payload":{"class":"Sleep","args":[3]}}'
    add_worker(r, "vm:1:low", busy)
    add_worker(r, "vm:2:low", None)  # idle
    add_worker(r, "vm:3:low", "")  # Ruby's MGET-based working ignores empty values
    assert q.working() == {
        "vm:1:low": {
            "queue": "low",
            "run_at": "2026-11-27T23:46:22Z",
            "payload": {"class": "Sleep", "args": [3]},
        }
    }


def test_working_keeps_unreadable_records_visible(q: Resque, r: redis.Redis) -> None:
    add_worker(r, "vm:1:low", "garbage")
    assert q.working() == {"vm:1:low": {"unreadable": "garbage"}}


def test_working_with_no_workers_is_empty(q: Resque) -> None:
    assert q.working() == {}


def test_workers_are_sorted(q: Resque, r: redis.Redis) -> None:
    r.sadd("resque:workers", "vm:2:b", "vm:1:a")
    assert q.workers() == ["vm:1:a", "vm:2:b"]


def test_stat_is_zero_until_written(q: Resque, r: redis.Redis) -> None:
    assert q.stat("processed") == 0
    r.set("resque:stat:processed", "12")
    assert q.stat("processed") == 12


def test_info_reports_every_field_like_rubys(
    q: Resque, r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAILS_ENV", raising=False)
    monkeypatch.setenv("RACK_ENV", "staging")
    q.enqueue_to("high", "Hello", 1)
    q.enqueue_to("high", "Hello", 2)
    q.enqueue_to("low", "Sleep", 3)
    q.enqueue_to("empty", "Hello")
    q.pop("empty")
    r.set("resque:stat:processed", "9")
    r.set("resque:stat:failed", "5")  # info's failed is LLEN failed, not this counter
    r.rpush("resque:failed", "{}", "{}")
    add_worker(r, "vm:1:high", '{"queue":"high","run_at":"x","payload":{}}')
    add_worker(r, "vm:2:low", None)
    info = q.info()
    assert info == {
        "pending": 3,
        "processed": 9,
        "queues": 3,
        "workers": 2,
        "working": 1,
        "failed": 2,
        "servers": [layout_free_describe(q)],
        "environment": "staging",
    }
    assert "s3cret" not in str(info)


def layout_free_describe(q: Resque) -> str:
    kwargs = q.redis.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


def test_info_of_an_empty_redis_is_all_zero(q: Resque, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAILS_ENV", raising=False)
    monkeypatch.delenv("RACK_ENV", raising=False)
    info = q.info()
    assert {k: info[k] for k in ("pending", "processed", "queues", "workers", "working")} == {
        "pending": 0,
        "processed": 0,
        "queues": 0,
        "workers": 0,
        "working": 0,
    }
    assert info["failed"] == 0
    assert info["environment"] == "development"


def test_rails_env_wins_over_rack_env_in_info(q: Resque, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAILS_ENV", "production")
    monkeypatch.setenv("RACK_ENV", "staging")
    assert q.info()["environment"] == "production"


# --- inline mode ------------------------------------------------------------------------------


@pytest.fixture
def inline(r: redis.Redis, reg: resque.Registry) -> Resque:
    return Resque(r, registry=reg, inline=True)


def test_inline_performs_at_once_and_writes_nothing(
    inline: Resque, r: redis.Redis, reg: resque.Registry
) -> None:
    done: list[Any] = []

    @resque.job(queue="q", name="add", registry=reg)
    def add(a: int, b: int) -> None:
        done.append(a + b)

    assert inline.enqueue(add, 2, 3) is not None
    assert done == [5]
    assert r.keys("*") == []


def test_inline_passes_args_through_json_like_a_worker(
    inline: Resque, reg: resque.Registry
) -> None:
    seen: list[Any] = []

    @resque.job(queue="q", name="record", registry=reg)
    def record(*args: Any) -> None:
        seen.extend(args)

    inline.enqueue(record, (1, 2), {"k": (3,)})
    assert seen == [[1, 2], {"k": [3]}]


def test_inline_runs_perform_hooks_in_rubys_order(inline: Resque, reg: resque.Registry) -> None:
    calls: list[str] = []

    @resque.job(queue="q", name="Traced", registry=reg)
    class Traced:
        @staticmethod
        def before_enqueue(*args: Any) -> None:
            calls.append("before_enqueue")

        @staticmethod
        def after_enqueue(*args: Any) -> None:
            calls.append("after_enqueue")

        @staticmethod
        def before_perform(*args: Any) -> None:
            calls.append(f"before_perform{args}")

        @staticmethod
        def around_perform_a(*args: Any) -> Iterator[None]:
            calls.append("around_a in")
            yield
            calls.append("around_a out")

        @staticmethod
        def around_perform_b(*args: Any) -> Iterator[None]:
            calls.append("around_b in")
            yield
            calls.append("around_b out")

        @staticmethod
        def perform(x: int) -> None:
            calls.append(f"perform({x})")

        @staticmethod
        def after_perform(*args: Any) -> None:
            calls.append("after_perform")

        @staticmethod
        def on_failure(exc: BaseException, *args: Any) -> None:
            calls.append("on_failure")

    inline.enqueue(Traced, 1)
    assert calls == [
        "before_enqueue",
        "before_perform(1,)",
        "around_a in",
        "around_b in",
        "perform(1)",
        "around_b out",
        "around_a out",
        "after_perform",
        "after_enqueue",
    ]


def test_inline_propagates_exceptions_after_on_failure(
    inline: Resque, reg: resque.Registry
) -> None:
    calls: list[Any] = []

    @resque.job(queue="q", name="Boom", registry=reg)
    class Boom:
        @staticmethod
        def perform(x: int) -> None:
            raise RuntimeError(f"boom {x}")

        @staticmethod
        def after_perform(*args: Any) -> None:
            calls.append("after_perform")

        @staticmethod
        def on_failure(exc: BaseException, *args: Any) -> None:
            calls.append(("on_failure", type(exc).__name__, str(exc), args))

        @staticmethod
        def after_enqueue(*args: Any) -> None:
            calls.append("after_enqueue")

    with pytest.raises(RuntimeError, match="boom 4"):
        inline.enqueue(Boom, 4)
    assert calls == [("on_failure", "RuntimeError", "boom 4", (4,))]


def test_inline_before_enqueue_false_skips_the_perform(
    inline: Resque, reg: resque.Registry
) -> None:
    performed: list[Any] = []

    @resque.job(queue="q", name="Skipped", registry=reg)
    class Skipped:
        @staticmethod
        def before_enqueue(*args: Any) -> bool:
            return False

        @staticmethod
        def perform() -> None:
            performed.append(1)

    assert inline.enqueue(Skipped) is None
    assert performed == []


def test_inline_dont_perform_skips_quietly(inline: Resque, reg: resque.Registry) -> None:
    performed: list[Any] = []

    @resque.job(queue="q", name="Quiet", registry=reg)
    class Quiet:
        @staticmethod
        def before_perform(*args: Any) -> None:
            raise resque.DontPerform

        @staticmethod
        def perform() -> None:
            performed.append(1)

    assert inline.enqueue(Quiet) is not None
    assert performed == []


def test_inline_args_that_do_not_fit_perform_raise_type_error(
    inline: Resque, reg: resque.Registry
) -> None:
    @resque.job(queue="q", name="one", registry=reg)
    def one(a: int) -> None:
        pass

    with pytest.raises(TypeError, match="do not fit"):
        inline.enqueue(one, 1, 2)  # type: ignore[call-overload]  # deliberately one too many


def test_inline_resolves_the_job_by_name_as_a_worker_would(inline: Resque) -> None:
    # An unregistered class outside the allowed modules would fail on a worker: inline
    # surfaces that at enqueue time instead of performing it.
    with pytest.raises(JobForbidden):
        inline.enqueue(Unregistered, 1)


# --- job resolution security ------------------------------------------------------------------


PROBE_SOURCE = """
IMPORTED = True

def task(*args):
    return ("task", args)

class Job:
    queue = "probe"

    @staticmethod
    def perform(*args):
        return ("job", args)
"""


@pytest.fixture
def probe_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A throwaway importable module: importing it shows up in ``sys.modules``."""
    name = f"resque_probe_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(PROBE_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert name not in sys.modules
    yield name
    sys.modules.pop(name, None)


def test_a_module_outside_the_allowed_prefixes_is_never_imported(
    reg: resque.Registry, probe_module: str
) -> None:
    with pytest.raises(JobForbidden, match="not imported"):
        reg.resolve(f"{probe_module}.task")
    with pytest.raises(JobForbidden):
        reg.resolve(f"{probe_module}.task", ["some_other_app"])
    assert probe_module not in sys.modules


def test_a_prefix_only_allows_its_own_package_not_lookalikes(
    reg: resque.Registry, probe_module: str
) -> None:
    lookalike = probe_module[:-2]  # "resque_probe_x" must not allow "resque_probe_xy"
    with pytest.raises(JobForbidden):
        reg.resolve(f"{probe_module}.task", [lookalike])
    assert probe_module not in sys.modules


@pytest.mark.parametrize(
    "name", ["os.system", "builtins.eval", "subprocess.Popen", "importlib.import_module"]
)
def test_dangerous_dotted_paths_are_forbidden(reg: resque.Registry, name: str) -> None:
    with pytest.raises(JobForbidden):
        reg.resolve(name)


def test_forbidden_is_a_kind_of_not_found() -> None:
    assert issubclass(JobForbidden, JobNotFound)


def test_an_allowed_prefix_resolves_and_imports(reg: resque.Registry, probe_module: str) -> None:
    task = reg.resolve(f"{probe_module}.task", [probe_module])
    assert task(1) == ("task", (1,))
    job = reg.resolve(f"{probe_module}.Job", [f"{probe_module}."])
    assert job.perform(2) == ("job", (2,))
    assert probe_module in sys.modules


def test_an_allowed_prefix_with_a_missing_attribute_is_not_found(
    reg: resque.Registry, probe_module: str
) -> None:
    with pytest.raises(JobNotFound) as caught:
        reg.resolve(f"{probe_module}.nothing_here", [probe_module])
    assert not isinstance(caught.value, JobForbidden)


def test_resque_job_modules_env_allows_a_prefix(
    r: redis.Redis, reg: resque.Registry, probe_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESQUE_JOB_MODULES", f"elsewhere, {probe_module} ")
    client = Resque(r, registry=reg, allowed_modules=["extra"])
    assert client.allowed_modules == ["elsewhere", probe_module, "extra"]
    assert reg.resolve(f"{probe_module}.task", client.allowed_modules)(3) == ("task", (3,))


def test_allowed_modules_let_inline_mode_run_an_unregistered_job(
    r: redis.Redis, reg: resque.Registry, probe_module: str
) -> None:
    inline = Resque(r, registry=reg, allowed_modules=[probe_module], inline=True)
    assert inline.enqueue_to("probe", f"{probe_module}.Job", 1) is not None
    assert probe_module in sys.modules


def test_a_ruby_style_name_is_not_found_unless_registered(reg: resque.Registry) -> None:
    with pytest.raises(JobNotFound, match=r"@resque.job\(name='Mailer::Welcome'\)") as caught:
        reg.resolve("Mailer::Welcome", ["Mailer"])
    assert not isinstance(caught.value, JobForbidden)

    @resque.job(name="Mailer::Welcome", queue="mail", registry=reg)
    def welcome() -> str:
        return "hi"

    assert reg.resolve("Mailer::Welcome") is welcome
    assert reg.names() == ["Mailer::Welcome"]


@pytest.mark.parametrize("name", [".os.system", "os..system", "", "Plain"])
def test_malformed_names_are_not_found(reg: resque.Registry, name: str) -> None:
    with pytest.raises(JobNotFound):
        reg.resolve(name, ["os", ""])


def test_registering_in_one_registry_leaves_the_default_alone(reg: resque.Registry) -> None:
    @resque.job(name="Only::Here", queue="q", registry=reg)
    def only_here() -> None:
        pass

    assert resque.registry.get("Only::Here") is None
    assert reg.get("Only::Here") is only_here


def test_a_registered_name_wins_over_a_dotted_import(
    reg: resque.Registry, probe_module: str
) -> None:
    @resque.job(name=f"{probe_module}.task", queue="q", registry=reg)
    def local() -> str:
        return "local"

    assert reg.resolve(f"{probe_module}.task", [probe_module]) is local
    assert probe_module not in sys.modules
