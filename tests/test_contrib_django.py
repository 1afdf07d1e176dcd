"""resque.contrib.django's ResqueBackend against Django's task-backend contract.

Modelled on Django's own tests of its backends (tests/tasks/test_dummy_backend.py and
test_immediate_backend.py in Django): the same tasks, the same assertions on ``TaskResult``,
and what only a real queue adds: a real worker performs the task, ``get_result`` and
``refresh`` read its status back, ``run_after`` waits in the delayed queue, priority picks
the queue, and a transaction defers the push to its commit.

Runs with the ``django-tasks`` package (Django < 6) in the suite, and under Django 6's
``django.tasks`` on Python 3.12 (.ci/run).
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Iterator
from typing import Any

import pytest
import redis

djangotasks = pytest.importorskip("djangotasks", reason="needs Django and its task framework")

from django.db import transaction  # noqa: E402
from django.test import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

import resque  # noqa: E402
from resque import layout  # noqa: E402
from resque.contrib.django import ResqueBackend  # noqa: E402
from resque.contrib.django.backend import client_for, worker_queues  # noqa: E402
from resque.contrib.django.compat import (  # noqa: E402
    InvalidTask,
    TaskResultDoesNotExist,
    TaskResultStatus,
    default_task_backend,
    task_backends,
)

BACKEND = "resque.contrib.django.ResqueBackend"


def tasks_setting(redis_url: str, **options: Any) -> dict[str, Any]:
    return {"default": {"BACKEND": BACKEND, "QUEUES": ["default", "queue_1"],
                        "OPTIONS": {"REDIS": redis_url, **options}}}


@pytest.fixture
def backend(r: redis.Redis, redis_url: str) -> Iterator[ResqueBackend]:
    with override_settings(TASKS=tasks_setting(redis_url)):
        found = task_backends["default"]
        assert isinstance(found, ResqueBackend)
        yield found


def work(backend: ResqueBackend, queues: list[str] | None = None) -> resque.Worker:
    """A real worker, in this process (Django is set up here), until the queues are empty."""
    worker = resque.Worker(queues or worker_queues(["default", "queue_1"]),
                           resque=backend.client, fork=False, burst=True)
    worker.work()
    return worker


def queued(r: redis.Redis, queue: str) -> list[dict[str, Any]]:
    return [layout.decode_job(raw, queue) for raw in r.lrange(f"resque:queue:{queue}", 0, -1)]


# --- the backend, as Django's tests of theirs -----------------------------------------------


def test_using_correct_backend(backend: ResqueBackend, redis_url: str) -> None:
    assert default_task_backend.alias == "default"
    assert isinstance(task_backends["default"], ResqueBackend)
    assert default_task_backend.options == {"REDIS": redis_url}
    assert (backend.supports_defer, backend.supports_async_task, backend.supports_get_result,
            backend.supports_priority) == (True, True, True, True)


@pytest.mark.parametrize("name", ["noop_task", "noop_task_async"])
def test_enqueue_task(backend: ResqueBackend, r: redis.Redis, name: str) -> None:
    task = getattr(djangotasks, name)
    result = task.enqueue(1, two=3)

    assert result.status == TaskResultStatus.READY
    assert result.is_finished is False
    assert (result.started_at, result.finished_at) == (None, None)
    assert result.enqueued_at is not None
    with pytest.raises(ValueError, match="Task has not finished yet"):
        result.return_value  # noqa: B018
    assert result.task == task
    assert (result.args, result.kwargs) == ([1], {"two": 3})
    (job,) = queued(r, "default")
    assert (job["class"], job["args"], job["id"]) == (
        f"djangotasks.{name}", [1, {"__kwargs__": True, "two": 3}], result.id)


@pytest.mark.parametrize("name", ["noop_task", "noop_task_async"])
def test_enqueue_task_async(backend: ResqueBackend, r: redis.Redis, name: str) -> None:
    task = getattr(djangotasks, name)
    result = asyncio.run(task.aenqueue())

    assert result.status == TaskResultStatus.READY
    assert (result.args, result.kwargs) == ([], {})
    assert [job["id"] for job in queued(r, "default")] == [result.id]


def test_get_result(backend: ResqueBackend) -> None:
    result = default_task_backend.enqueue(djangotasks.noop_task, (), {})

    found = djangotasks.noop_task.get_result(result.id)

    assert (found.id, found.status, found.task, found.args) == (
        result.id, TaskResultStatus.READY, djangotasks.noop_task, [])
    assert found.enqueued_at is not None and found.started_at is None


def test_get_result_async(backend: ResqueBackend) -> None:
    result = asyncio.run(default_task_backend.aenqueue(djangotasks.noop_task, (), {}))

    found = asyncio.run(djangotasks.noop_task.aget_result(result.id))

    assert (found.id, found.status) == (result.id, TaskResultStatus.READY)


def test_get_missing_result(backend: ResqueBackend) -> None:
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result("123")
    with pytest.raises(TaskResultDoesNotExist):
        asyncio.run(default_task_backend.aget_result("123"))


def test_get_result_of_another_task(backend: ResqueBackend) -> None:
    result = default_task_backend.enqueue(djangotasks.noop_task_async, (), {})
    with pytest.raises(Exception, match="Task does not match"):
        djangotasks.noop_task.get_result(result.id)


def test_a_plain_resque_job_has_no_task_result(backend: ResqueBackend) -> None:
    handle = backend.client.enqueue_to("default", "Mailer::Welcome", 1)
    assert handle is not None and handle.id is not None
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(handle.id)


def test_enqueue_with_invalid_argument(backend: ResqueBackend, r: redis.Redis) -> None:
    with pytest.raises(TypeError, match="Unsupported type"):
        djangotasks.noop_task.enqueue(datetime.datetime.now())
    assert r.keys("resque:*") == []


def test_validate_queue_name(backend: ResqueBackend) -> None:
    with pytest.raises(InvalidTask, match="Queue 'queue-2' is not valid for backend"):
        djangotasks.noop_task.using(queue_name="queue-2")


def test_a_queue_name_no_worker_could_select_is_invalid(redis_url: str) -> None:
    setting = {"default": {"BACKEND": BACKEND, "QUEUES": [], "OPTIONS": {"REDIS": redis_url}}}
    with override_settings(TASKS=setting), pytest.raises(InvalidTask, match="comma"):
        djangotasks.noop_task.using(queue_name="a,b")


def test_naive_run_after_is_invalid(backend: ResqueBackend) -> None:
    with pytest.raises(InvalidTask, match="run_after must be an aware datetime"):
        djangotasks.noop_task.using(run_after=datetime.datetime.now())


# --- performed by a real worker ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["calculate_meaning_of_life",
                                  "calculate_meaning_of_life_async"])
def test_result_of_a_performed_task(backend: ResqueBackend, name: str) -> None:
    task = getattr(djangotasks, name)
    result = task.enqueue()

    worker = work(backend)
    result.refresh()

    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 42
    assert result.is_finished is True
    assert result.started_at is not None and result.finished_at is not None
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.last_attempted_at == result.started_at
    assert (result.worker_ids, result.attempts, result.errors) == ([worker.id], 1, [])


def test_arguments_reach_the_task_through_json(backend: ResqueBackend) -> None:
    result = djangotasks.echo.enqueue(1, (2, 3), flag=True, nested={"a": [None]})
    work(backend)
    assert djangotasks.echo.get_result(result.id).return_value == {
        "args": [1, [2, 3]], "kwargs": {"flag": True, "nested": {"a": [None]}}}


def test_arefresh(backend: ResqueBackend) -> None:
    result = djangotasks.calculate_meaning_of_life.enqueue()
    work(backend)
    asyncio.run(result.arefresh())
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, 42)


def test_catches_exception(backend: ResqueBackend) -> None:
    result = djangotasks.failing_task_value_error.enqueue()
    work(backend)
    result.refresh()

    assert result.status == TaskResultStatus.FAILED
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018
    assert result.is_finished is True
    assert result.enqueued_at <= result.started_at <= result.finished_at
    (error,) = result.errors
    assert error.exception_class is ValueError
    assert error.traceback.endswith("ValueError: This task failed due to ValueError\n")


def test_complex_return_value(backend: ResqueBackend) -> None:
    result = djangotasks.complex_return_value.enqueue()
    work(backend)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is TypeError
    assert "Unsupported type" in result.errors[0].traceback


def test_takes_context(backend: ResqueBackend) -> None:
    result = djangotasks.get_task_id.enqueue()
    work(backend)
    result.refresh()
    assert result.return_value == result.id


def test_context_attempt(backend: ResqueBackend) -> None:
    result = djangotasks.attempt_of.enqueue()
    work(backend)
    result.refresh()
    assert result.return_value == 1


def test_cancelled_job_is_a_failed_task(backend: ResqueBackend) -> None:
    result = djangotasks.noop_task.enqueue()
    handle = resque.Job.fetch(result.id, client=backend.client)
    assert handle is not None and handle.cancel() is True
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is resque.JobCancelled


# --- priority, queues and run_after -----------------------------------------------------------


def test_priority_picks_the_queue_and_workers_take_high_first(
    backend: ResqueBackend, r: redis.Redis
) -> None:
    low = djangotasks.noop_task.using(priority=-5).enqueue()
    normal = djangotasks.noop_task.enqueue()
    high = djangotasks.noop_task.using(priority=100).enqueue()
    other = djangotasks.noop_task.using(queue_name="queue_1", priority=1).enqueue()
    assert [[job["id"] for job in queued(r, q)]
            for q in ("default:high", "default", "default:low", "queue_1:high")] == [
        [high.id], [normal.id], [low.id], [other.id]]

    work(backend)
    started = {}
    for result in (low, normal, high, other):
        result.refresh()
        started[result.id] = result.started_at
    order = sorted(started, key=lambda job_id: started[job_id])
    assert order == [high.id, other.id, normal.id, low.id]


def test_worker_queues_take_every_high_queue_first() -> None:
    assert worker_queues(["default", "mail"]) == [
        "default:high", "mail:high", "default", "mail", "default:low", "mail:low"]


def test_a_result_names_the_queue_it_was_enqueued_to(backend: ResqueBackend) -> None:
    result = djangotasks.noop_task.using(queue_name="queue_1", priority=3).enqueue()
    found = default_task_backend.get_result(result.id)
    assert (found.task.queue_name, found.task.func) == ("queue_1", djangotasks.noop_task.func)


def test_run_after_waits_in_the_delayed_queue(backend: ResqueBackend, r: redis.Redis) -> None:
    later = timezone.now() + datetime.timedelta(hours=1)
    result = djangotasks.calculate_meaning_of_life.using(run_after=later).enqueue()

    assert queued(r, "default") == []
    due = str(int(later.timestamp())).encode()
    assert r.zrange("resque:delayed_queue_schedule", 0, -1) == [due]
    assert default_task_backend.get_result(result.id).status == TaskResultStatus.READY

    backend.client.delayed.move_due(now=later.timestamp())
    work(backend)
    result.refresh()
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, 42)
    assert result.started_at >= later - datetime.timedelta(hours=1)


# --- transactions -----------------------------------------------------------------------------


def test_enqueue_waits_for_the_transaction_to_commit(backend: ResqueBackend,
                                                      r: redis.Redis) -> None:
    with transaction.atomic():
        result = djangotasks.noop_task.enqueue()
        assert result.enqueued_at is None
        assert queued(r, "default") == []
        with pytest.raises(TaskResultDoesNotExist):
            default_task_backend.get_result(result.id)
    assert [job["id"] for job in queued(r, "default")] == [result.id]
    assert result.enqueued_at is not None


def test_a_rolled_back_transaction_enqueues_nothing(backend: ResqueBackend,
                                                    r: redis.Redis) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        result = djangotasks.noop_task.enqueue()
        raise RuntimeError("rolled back")
    assert r.keys("resque:*") == []
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(result.id)


def test_enqueue_on_commit_off_pushes_at_once(r: redis.Redis, redis_url: str) -> None:
    with override_settings(TASKS=tasks_setting(redis_url, ENQUEUE_ON_COMMIT=False)):
        with transaction.atomic():
            result = djangotasks.noop_task.enqueue()
            assert [job["id"] for job in queued(r, "default")] == [result.id]


def test_backends_on_one_redis_share_a_client(backend: ResqueBackend) -> None:
    assert backend.client is client_for({"REDIS": backend.options["REDIS"]})
