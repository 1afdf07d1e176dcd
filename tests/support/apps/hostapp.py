"""Jobs for the multi-host tests (``--app hostapp``), run by workers inside the hosts of
tests/support/hostkit.py. Each records what it did, with the host name it ran on, in a Redis
list outside the ``resque:`` namespace, on the server ``HOSTAPP_REDIS`` names.

Entries are ``<tag>@<host>``: ``hosts:ran`` has one per run that finished, ``hosts:started``
one per run of a ``Hold`` job that began (a run cut short by a vanished host is there, not in
``hosts:ran``).
"""

from __future__ import annotations

import os
import socket
import time

import redis

import resque

RAN = "hosts:ran"
STARTED = "hosts:started"
RELEASE = "hosts:release"  # Hold jobs finish once this key exists
_clients: dict[int, redis.Redis] = {}


def client() -> redis.Redis:
    """One connection per process: a forked child opens its own."""
    if os.getpid() not in _clients:
        _clients[os.getpid()] = redis.Redis.from_url(os.environ["HOSTAPP_REDIS"])
    return _clients[os.getpid()]


def entry(tag: object) -> str:
    return f"{tag}@{socket.gethostname()}"


@resque.job(name="Count")
def count(tag: str) -> None:
    """Records that it ran, and where."""
    client().rpush(RAN, entry(tag))


@resque.job(name="Noop")
def noop(n: int) -> None:
    """Nothing: the throughput runs measure the queue, not the job."""


@resque.job(name="Hold")
def hold(tag: str) -> None:
    """Records its start, waits for ``hosts:release``, records its end: a job caught in
    flight when its host vanishes."""
    r = client()
    r.rpush(STARTED, entry(tag))
    while not r.exists(RELEASE):
        time.sleep(0.05)
    r.rpush(RAN, entry(tag))
