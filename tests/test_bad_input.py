"""Bad input at the edges, end to end: payloads no job may run with reach a real worker, and
queue names no worker could select never get a job."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import redis
from support.workerkit import Workers, failures, notes

from resque import NoQueueError, Resque, layout

MODES = [pytest.param("--fork", id="fork"), pytest.param("--no-fork", id="no-fork")]


# raw item, the error recorded
STRICT_ITEMS = [
    (b'{"class":"Record","args":[NaN]}', "NaN is not a JSON number"),
    (b'{"class":"Record","args":[1e400]}', "number 1e400 is too large for a float"),
    (b'{"class":"Record","args":["\xff"]}', "can't decode byte 0xff"),
    (b'{"class":"Record","args":["\\ud800"]}', "half a surrogate pair"),
]


@pytest.mark.parametrize("mode", MODES)
def test_payloads_with_nan_infinity_or_broken_text_fail_as_bad_payloads_and_never_run(
    r: redis.Redis, workers: Workers, mode: str
) -> None:
    r.sadd("resque:queues", "high")
    for raw, _ in STRICT_ITEMS:
        r.rpush("resque:queue:high", raw)
    r.rpush("resque:queue:high", b'{"class":"Record","args":["next"]}')
    workers.run("high", mode)

    assert notes(r) == ["next"]
    records = failures(r)
    assert [record["exception"] for record in records] == ["Resque::BadPayload"] * 4
    for record, (raw, error) in zip(records, STRICT_ITEMS, strict=True):
        assert error in record["error"], record["error"]
        assert record["payload"] == layout.unreadable_payload(raw)


@pytest.mark.parametrize("queue", ["*", "!x", "a,b", "q?", "mail[1]", "{a}", "two words"])
def test_no_job_is_queued_where_no_worker_could_take_it(
    r: redis.Redis, resque: Resque, queue: str
) -> None:
    with pytest.raises(NoQueueError, match=f"^queue name {re.escape(repr(queue))} "):
        resque.enqueue_to(queue, "Hello", 1)
    with pytest.raises(NoQueueError):
        resque.enqueue_many("Hello", [[1]], queue=queue)
    with pytest.raises(NoQueueError):
        resque.enqueue_at_with_queue(queue, 4102444800, "Hello", 1)
    assert r.keys("*") == []


@pytest.mark.parametrize("queue", ["*", "!x", "a,b", "two words"])
def test_no_task_call_or_handle_queues_a_job_where_no_worker_could_take_it(
    r: redis.Redis, resque: Resque, queue: str
) -> None:
    # The typed ways in (h10): a task's to() and options(), a tracked call (no status record
    # is written either), a delayed one, Admin.enqueue ('resque enqueue'), the test fake.
    import taskapp

    from resque.admin import Admin
    from resque.testing import FakeResque

    calls: list[Callable[[], object]] = [
        lambda: taskapp.echo.to(queue).options(client=resque).enqueue("x"),
        lambda: taskapp.echo.options(client=resque, queue=queue, status=True).enqueue("x"),
        lambda: taskapp.echo.options(client=resque, queue=queue).enqueue_in(60, "x"),
        lambda: Admin(resque).enqueue(queue, "Hello", [1]),
        lambda: taskapp.echo.options(client=FakeResque(), queue=queue).enqueue("x"),
    ]
    for call in calls:
        with pytest.raises(NoQueueError, match=f"^queue name {re.escape(repr(queue))} "):
            call()
    assert r.keys("*") == []
