"""Failure backends (resque/failure.py): where a worker records a failed job.

A backend gives the worker a Redis list to append to (Ruby's ``redis`` and
``redis_multi_queue``) and/or a ``save`` to call (an error tracker). These specs also run the
worker's own step script with the target a backend gives, and read the result back with the
admin library, so writer and reader agree.
"""

from __future__ import annotations

import logging
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from support.failurekit import our_record

from resque import layout
from resque.admin import Admin
from resque.failure import (
    Failure,
    FailureBackend,
    LogFailure,
    MultipleFailure,
    RedisFailure,
    RedisMultiQueueFailure,
    RedisTarget,
    backend_from_name,
    save_quietly,
)
from resque.store import ACK_FAILED, Ack, Acks, WorkerStore

KEYS = layout.Keys()


class Tracker(FailureBackend):
    """An error tracker: no Redis list, a save per failure."""

    name = "tracker"

    def __init__(self) -> None:
        self.saved: list[Failure] = []

    def save(self, failure: Failure) -> None:
        self.saved.append(failure)


class Broken(FailureBackend):
    name = "broken"

    def save(self, failure: Failure) -> None:
        raise RuntimeError("tracker is down")


def a_failure(exc: BaseException | None = None) -> Failure:
    return Failure(record=our_record(), queue="py", payload={"class": "Ours", "args": [1]},
                   exception=exc)


# --- what each backend tells the worker ---------------------------------------------------------


def test_redis_backend_appends_to_the_failed_list() -> None:
    backend = RedisFailure()
    assert backend.redis_target(KEYS, "low") == RedisTarget("resque:failed")
    assert not backend.saves


def test_redis_multi_queue_backend_appends_to_the_queues_own_list_and_names_it() -> None:
    target = RedisMultiQueueFailure().redis_target(KEYS, "low")
    assert target == RedisTarget("resque:low_failed", "low_failed")
    assert target.key == KEYS.failed_queue("low")  # the key the worker's store uses


def test_a_tracker_backend_has_no_list_and_saves() -> None:
    tracker = Tracker()
    assert tracker.redis_target(KEYS, "low") is None
    assert tracker.saves


def test_a_backend_object_is_taken_as_it_is() -> None:
    tracker = Tracker()
    assert backend_from_name(tracker) is tracker


def test_the_none_backend_does_nothing() -> None:
    backend = backend_from_name("none")
    assert backend.redis_target(KEYS, "q") is None and not backend.saves


# --- choosing a backend by name -----------------------------------------------------------------


def test_the_default_is_redis_and_failure_backend_env_chooses(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAILURE_BACKEND", raising=False)
    assert isinstance(backend_from_name(), RedisFailure)
    monkeypatch.setenv("FAILURE_BACKEND", "redis_multi_queue")
    assert isinstance(backend_from_name(), RedisMultiQueueFailure)
    assert isinstance(backend_from_name("redis"), RedisFailure)  # an explicit name wins


def test_an_unknown_name_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="redis, redis_multi_queue, log, none"):
        backend_from_name("airbrake")
    with pytest.raises(ValueError, match="cannot load failure backend 'nowhere.mod:X'"):
        backend_from_name("nowhere.mod:X")


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A user's module with a backend class, a ready instance and a duck-typed object."""
    (tmp_path / "myplugin.py").write_text(textwrap.dedent("""
        from resque.failure import FailureBackend

        class Sentry(FailureBackend):
            name = "sentry"
            def save(self, failure):
                SAVED.append(failure.class_name)

        class Duck:
            def redis_target(self, keys, queue):
                return None
            def save(self, failure):
                SAVED.append("duck")

        SAVED = []
        instance = Sentry()
        duck = Duck()
        not_a_backend = 42
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("myplugin", None)
    yield "myplugin"
    sys.modules.pop("myplugin", None)


def test_your_own_backend_by_module_and_name(plugin: str) -> None:
    import myplugin  # type: ignore[import-not-found]

    for spec in (f"{plugin}:Sentry", f"{plugin}.Sentry", f"{plugin}:instance", f"{plugin}:duck"):
        backend = backend_from_name(spec)
        assert isinstance(backend, FailureBackend) and backend.saves
        assert backend.redis_target(KEYS, "q") is None
        backend.save(a_failure())
    assert myplugin.SAVED == ["Ours", "Ours", "Ours", "duck"]
    with pytest.raises(ValueError, match="has no redis_target"):
        backend_from_name(f"{plugin}:not_a_backend")


def test_commas_combine_a_redis_list_with_your_tracker(plugin: str) -> None:
    import myplugin

    backend = backend_from_name(f"redis, {plugin}:Sentry")
    assert isinstance(backend, MultipleFailure)
    assert backend.redis_target(KEYS, "q") == RedisTarget("resque:failed")
    assert backend.saves
    backend.save(a_failure())
    assert myplugin.SAVED == ["Ours"]


def test_two_backends_writing_redis_lists_cannot_be_combined() -> None:
    with pytest.raises(ValueError, match="only one failure backend may write a Redis list"):
        backend_from_name("redis,redis_multi_queue")


def test_multiple_saves_to_every_backend_even_when_one_fails() -> None:
    tracker = Tracker()
    backend = MultipleFailure([Broken(), RedisFailure(), tracker])
    with pytest.raises(RuntimeError, match="tracker is down"):
        backend.save(a_failure())
    assert len(tracker.saved) == 1


# --- how the worker calls save ------------------------------------------------------------------


def test_save_quietly_logs_a_broken_backend_and_returns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="resque.failure"):
        assert save_quietly(Broken(), a_failure()) is False
    assert "could not save the failure of Ours from py" in caplog.text
    assert save_quietly(Tracker(), a_failure()) is True


def test_log_backend_logs_the_failure_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        failure = a_failure(exc)
    with caplog.at_level(logging.ERROR, logger="resque.failure"):
        LogFailure().save(failure)
    (record,) = caplog.records
    assert record.getMessage() == "job Ours from queue py failed"
    assert record.exc_info is not None and record.exc_info[1] is failure.exception


# --- the worker's script writes where the backend says; admin reads it back ---------------------


@pytest.mark.parametrize("backend", [RedisFailure(), RedisMultiQueueFailure()])
def test_a_failure_acknowledged_by_the_worker_script_lands_in_the_backends_list(
    r: redis.Redis, backend: FailureBackend
) -> None:
    r.rpush("resque:queue:low", '{"class":"Job","args":[7]}')
    store = WorkerStore(r, KEYS, "host:1:low")
    target = backend.redis_target(KEYS, "low")
    assert target is not None
    store.failure_target = backend.redis_target
    [reserved] = store.step(None, ["low"]).jobs
    record = our_record("Job", [7], "low")
    acks = Acks()
    acks.add(Ack(ACK_FAILED, record, "low"), reserved)
    store.step(acks, ["low"], reserve=0)

    assert r.lrange(target.key, 0, -1) == [record.encode()]
    if target.failed_queues_member:
        assert r.smembers("resque:failed_queues") == {target.failed_queues_member.encode()}
    (entry,) = Admin(redis=r).failures.scan()
    assert (entry.class_name, entry.args, entry.queue) == ("Job", [7], "low")
