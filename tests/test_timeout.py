"""Timeouts (resque.policies.timeout): a job that runs past its limit is ended in every
execution mode and recorded as ``Resque::JobTimeout``, then follows its retry policy.

Jobs come from tests/support/apps/retryapp.py (``Sleepy``, ``AsyncSleepy``, ``SlowOnce``,
``Stubborn``, ``Nap``); each notes ``name:tag:...`` in ``retryapp:log``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from support.replies import texts
from support.workerkit import Workers, failures, wait_for

import resque
from resque import Resque
from resque.errors import JobTimeout
from resque.policies import timeout as timeouts
from resque.settings import WorkerSettings

MODES = {"fork": [], "in-process": ["--no-fork"], "threads": ["-c", "2"]}
TIMED_OUT = ("Resque::JobTimeout", "the job ran past its timeout of 0.5 s")


def log(r: redis.Redis) -> list[str]:
    return texts(r.lrange("retryapp:log", 0, -1))


def timed_out(r: redis.Redis) -> list[tuple[Any, Any]]:
    return [(f["exception"], f["error"]) for f in failures(r)]


def test_a_timeout_must_be_positive_seconds() -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        resque.job(timeout=0)
    with pytest.raises(ValueError, match="job_timeout"):
        WorkerSettings(job_timeout=-1)


def test_the_job_s_own_timeout_wins_over_the_worker_s() -> None:
    @resque.job(name="TimeoutProbe", timeout=3, registry=resque.Registry())
    def probe() -> None: ...

    class Legacy:
        __resque_timeout__ = 7

    assert (timeouts.of(probe, 60.0), timeouts.of(Legacy, 60.0), timeouts.of(object(), 60.0),
            timeouts.of(object(), None)) == (3.0, 7.0, 60.0, None)


def test_the_timeout_message_says_the_limit() -> None:
    assert str(timeouts.expired(2.5)) == "the job ran past its timeout of 2.5 s"
    assert isinstance(timeouts.expired(1), JobTimeout)


@pytest.mark.parametrize("mode", MODES)
def test_a_job_past_its_timeout_is_ended_and_recorded(
    mode: str, r: redis.Redis, workers: Workers
) -> None:
    Resque(r).enqueue_to("retry", "Sleepy", "a", 3)
    started = time.monotonic()
    workers.run("retry", *MODES[mode], app="retryapp")
    assert time.monotonic() - started < 2.9  # not waited out
    assert log(r) == ["sleepy:a:1"]
    assert timed_out(r) == [TIMED_OUT]


def test_a_job_within_its_timeout_is_untouched(r: redis.Redis, workers: Workers) -> None:
    Resque(r).enqueue_to("retry", "Sleepy", "b", 0.05)
    workers.run("retry", app="retryapp")
    assert (log(r), failures(r)) == (["sleepy:b:1", "woke:b"], [])


@pytest.mark.parametrize("mode", ["fork", "in-process", "threads"])
def test_an_async_job_past_its_timeout_is_cancelled(
    mode: str, r: redis.Redis, workers: Workers
) -> None:
    Resque(r).enqueue_to("retry", "AsyncSleepy", "c", 3)
    worker = workers.run("retry", *MODES[mode], app="retryapp")
    assert (log(r), timed_out(r)) == (["async_sleepy:c:1"], [TIMED_OUT])
    assert "takes no more jobs" not in worker.output()


@pytest.mark.parametrize("mode", MODES)
def test_a_timed_out_attempt_follows_its_retry_policy(
    mode: str, r: redis.Redis, workers: Workers
) -> None:
    Resque(r).enqueue_to("retry", "SlowOnce", "d")
    workers.run("retry", *MODES[mode], app="retryapp")
    if mode == "threads":  # that worker took no more jobs after the timeout: a fresh one
        assert r.llen("resque:queue:retry") == 1
        workers.run("retry", *MODES[mode], app="retryapp")
    assert (log(r), failures(r)) == (["slow_once:d:1", "slow_once:d:2"], [])
    assert r.keys("resque:resque-retry:*") == []


def test_a_child_that_ignores_term_is_killed_after_the_grace(
    r: redis.Redis, workers: Workers
) -> None:
    Resque(r).enqueue_to("retry", "Stubborn", "e")
    started = time.monotonic()
    workers.run("retry", app="retryapp", env={"RESQUE_TERM_TIMEOUT": "0.5"})
    assert time.monotonic() - started < 4.5
    assert log(r) == ["stubborn:e", "ignored:e"]
    assert timed_out(r) == [TIMED_OUT]


def test_the_worker_s_job_timeout_applies_to_jobs_without_one(
    r: redis.Redis, workers: Workers
) -> None:
    Resque(r).enqueue_to("retry", "Nap", "f", 3)
    workers.run("retry", "--no-fork", app="retryapp", env={"RESQUE_JOB_TIMEOUT": "0.5"})
    assert (log(r), timed_out(r)) == (["nap:f"], [TIMED_OUT])


def test_a_thread_past_its_timeout_is_abandoned_and_the_worker_recycled(
    r: redis.Redis, workers: Workers
) -> None:
    """A plain job on a thread cannot be interrupted: it is recorded as timed out at its
    deadline, and the worker takes no more jobs and exits on its own."""
    worker = workers.start("retry", "-c", "2", app="retryapp")
    wait_for(lambda: r.scard("resque:workers") == 1, what="the worker to register")
    Resque(r).enqueue_to("retry", "Sleepy", "g", 30)
    wait_for(lambda: failures(r), timeout=10, what="the timeout's failure record")
    assert worker.wait(15) == 0
    Resque(r).enqueue_to("retry", "Sleepy", "h", 0)
    time.sleep(0.5)
    assert timed_out(r) == [TIMED_OUT]
    assert r.llen("resque:queue:retry") == 1  # nobody took the next job: the worker is gone
    assert "takes no more jobs and exits once the others end" in worker.output()
    assert log(r) == ["sleepy:g:1"]


def test_a_call_s_timeout_replaces_the_job_s(r: redis.Redis, workers: Workers) -> None:
    import retryapp

    retryapp.nap.options(timeout=0.5, client=Resque(r)).enqueue("i", 3)
    workers.run("retry", "--no-fork", app="retryapp")
    assert (log(r), timed_out(r)) == (["nap:i"], [TIMED_OUT])
