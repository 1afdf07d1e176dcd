"""The jobs bench/worker.py runs, the same functions for both frameworks.

Our workers load this module with ``--app benchjobs`` (each function is registered under its
dotted name, ``benchjobs.noop``); RQ imports the same dotted paths. The module imports only
``resque`` and ``redis``, so a worker that loads it shows what the worker itself imports.

Jobs that report write to the Redis named by ``BENCH_REDIS``, on keys outside both frameworks'
namespaces (``bench:...``), one connection per process (a forked child opens its own).
"""

from __future__ import annotations

import json
import os
import sys
import time

import redis

import resque

STAMPS = "bench:stamps"
STARTED = "bench:started"
MODULES = "bench:modules"

_clients: dict[int, redis.Redis] = {}


def _client() -> redis.Redis:
    pid = os.getpid()
    if pid not in _clients:
        _clients[pid] = redis.Redis.from_url(os.environ["BENCH_REDIS"])
    return _clients[pid]


@resque.job
def noop(*args: object) -> None:
    """Does nothing: what the throughput scenarios measure is the framework."""


@resque.job
def stamp(*args: object) -> None:
    """Records when it ran (``time.time()``); the first and last jobs of a throughput run."""
    now = time.time()
    _client().rpush(STAMPS, repr(now))


@resque.job
def started(index: int) -> None:
    """Records ``index:start time`` as its first act: the enqueue-to-start latency."""
    now = time.time()
    _client().rpush(STARTED, f"{index}:{now!r}")


@resque.job
def report_modules() -> None:
    """Records the performing process's pid and imported modules (run in-process)."""
    _client().rpush(MODULES, json.dumps({"pid": os.getpid(), "modules": sorted(sys.modules)}))
