"""Jobs for the reliability tests; workers load it with ``--app chaosapp``.

``Chaos(id, seconds)`` records its effect idempotently on a second Redis that no fault ever
touches (``CHAOS_RESULTS``, a URL): ``SADD chaos:done <id>`` says the job was performed,
``HINCRBY chaos:runs <id> 1`` counts how many times. Both in one ``MULTI``, so a process
killed in the middle leaves both or neither.
"""

from __future__ import annotations

import os
import time

import redis

import resque

DONE = "chaos:done"
RUNS = "chaos:runs"
_clients: dict[int, redis.Redis] = {}


def results() -> redis.Redis:
    """One connection per process: a forked child opens its own."""
    pid = os.getpid()
    if pid not in _clients:
        _clients[pid] = redis.Redis.from_url(os.environ["CHAOS_RESULTS"])
    return _clients[pid]


@resque.job(name="Chaos")
def chaos(job_id: str, seconds: float = 0.0) -> None:
    if seconds:
        time.sleep(seconds)
    with results().pipeline(transaction=True) as pipe:
        pipe.sadd(DONE, job_id)
        pipe.hincrby(RUNS, job_id, 1)
        pipe.execute()


@resque.job(name="Noop")
def noop(*args: object) -> None:
    """Does nothing: the soak test measures the worker, not the job."""


ATTEMPTS = "chaos:attempts"


@resque.job(name="ChaosRetry", retry=resque.Retry(max_attempts=3))
def chaos_retry(job_id: str, fail_attempts: int, seconds: float = 0.0) -> None:
    """Fails its first ``fail_attempts`` attempts (3 or more: it ends failed), counting each
    attempt it starts; on success, recorded done as ``Chaos`` is."""
    results().hincrby(ATTEMPTS, job_id, 1)
    if seconds:
        time.sleep(seconds)
    if resque.current_job().attempt <= fail_attempts:
        raise RuntimeError(f"{job_id} fails attempt {resque.current_job().attempt}")
    chaos(job_id)


@resque.job(name="ChaosSlow", timeout=0.3, retry=resque.Retry(max_attempts=3))
def chaos_slow(job_id: str, slow_attempts: int) -> None:
    """Runs past its timeout on its first ``slow_attempts`` attempts (99: every one, so it
    ends failed); then recorded done as ``Chaos`` is. An abandoned attempt never does."""
    results().hincrby(ATTEMPTS, job_id, 1)
    if resque.current_job().attempt <= slow_attempts:
        time.sleep(1.0)
        raise RuntimeError(f"{job_id} outlived its timeout")
    chaos(job_id)
