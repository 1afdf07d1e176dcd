"""Testing an application's jobs with the pytest plugin: a module to copy.

The plugin comes with resque (no conftest needed). ``resque_fake`` records enqueues without
Redis; ``resque_client`` is a real client on a namespace of its own, whose ``drain()`` runs a
real worker in this process; ``resque_clock`` is the time both of them see, moved by hand.
Whichever is used is the default client while the test runs, so ``task.enqueue`` goes to it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import shopapp
from shopapp import SENT, mail_count, place_order, remind, send_receipt

from resque import JobStatus
from resque.testing import Clock, FakeResque, TestResque


@pytest.fixture(autouse=True)
def no_mail_yet() -> Iterator[None]:
    SENT.clear()
    yield
    SENT.clear()


# --- fake mode: no Redis ------------------------------------------------------------------------


def test_placing_an_order_queues_it(resque_fake: FakeResque) -> None:
    place_order.enqueue(7, "ann@example.com")
    resque_fake.assert_enqueued(place_order, 7, "ann@example.com", queue="orders")
    assert SENT == []  # nothing runs until drain()


def test_an_order_sends_its_receipt_now_and_a_reminder_tomorrow(
    resque_fake: FakeResque, resque_clock: Clock
) -> None:
    place_order.enqueue(7, "ann@example.com")
    resque_fake.drain()
    assert SENT == ["receipt 7 to ann@example.com"]
    resque_fake.assert_enqueued(remind, 7)  # due tomorrow, still waiting
    resque_clock.advance(days=1)
    resque_fake.drain()
    assert SENT == ["receipt 7 to ann@example.com", "reminder 7"]
    resque_fake.assert_nothing_enqueued()


def test_a_failing_job_is_recorded_not_raised(resque_fake: FakeResque) -> None:
    send_receipt.enqueue(0, email="ann@example.com")
    resque_fake.drain()
    (failed,) = resque_fake.failures
    assert (failed.name, repr(failed.error)) == ("shopapp.send_receipt",
                                                 "ValueError('no order 0')")


def test_arguments_are_checked_when_enqueued(resque_fake: FakeResque) -> None:
    with pytest.raises(TypeError, match="cannot travel as JSON"):
        send_receipt.enqueue(7, email={"ann@example.com"})  # type: ignore[arg-type]
    resque_fake.assert_nothing_enqueued()


# --- a real Redis and a real worker ---------------------------------------------------------------


def test_drain_performs_the_order_and_its_receipt(resque_client: TestResque) -> None:
    place_order.enqueue(8, "bob@example.com")
    drained = resque_client.drain()
    assert (drained.processed, drained.failed) == (2, 0)
    assert SENT == ["receipt 8 to bob@example.com"]
    assert resque_client.delayed.count_all_scheduled_jobs() == 1


def test_the_reminder_moves_to_its_queue_when_the_clock_reaches_it(
    resque_client: TestResque, resque_clock: Clock
) -> None:
    place_order.enqueue(8, "bob@example.com")
    resque_client.drain()
    resque_clock.advance(hours=23)
    assert resque_client.size("mail") == 0
    resque_clock.advance(hours=1)
    assert resque_client.size("mail") == 1  # due now: moved, as a scheduler would
    assert resque_client.drain().processed == 1
    assert SENT[-1] == "reminder 8"


def test_a_failure_is_recorded_as_a_worker_records_it(resque_client: TestResque) -> None:
    send_receipt.enqueue(0, email="bob@example.com")
    drained = resque_client.drain()
    assert [(f["exception"], f["error"], f["queue"]) for f in drained.failures] == [
        ("ValueError", "no order 0", "mail")]


def test_a_tracked_job_s_result_is_read_after_drain(resque_client: TestResque) -> None:
    SENT.extend(["one", "two"])
    handle = mail_count.enqueue()
    assert handle is not None and handle.status() is JobStatus.QUEUED
    resque_client.drain()
    assert handle.result(timeout=1) == 2


def test_a_recurring_schedule_fires_as_the_clock_moves(
    resque_client: TestResque, resque_clock: Clock
) -> None:
    resque_client.schedules.set("hourly-count", {"class": "shopapp.mail_count", "every": "1h"})
    resque_clock.advance(minutes=59)
    assert resque_client.size("reports") == 0
    resque_clock.advance(minutes=1)
    assert resque_client.size("reports") == 1
    assert resque_client.drain().processed == 1


def test_the_default_client_is_the_fixture_s(resque_client: TestResque) -> None:
    handle = remind.enqueue(9)
    assert handle is not None and handle.client is resque_client
    assert shopapp.remind.name == "shopapp.remind"
