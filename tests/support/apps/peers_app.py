"""Python jobs for the peer tests (``--app peers_app``), under the names the Ruby and Perl
drivers (tests/ruby/peers.rb, tests/perl/peers.pl) give theirs, so one payload runs in any of
the three. No name is one of workerapp.py's (beside it), which workerkit's workers also load:
with two jobs of one name, the fork server (modules imported sorted) and an in-process worker
(``--app`` order) would run different ones. Each job records the args it was given in
``resque:peers:ran:python``, encoded by the wire contract, on the server ``RESQUE_REDIS`` names.
"""

from __future__ import annotations

import os
import time

import redis

import resque
from resque import layout

RAN = "resque:peers:ran:python"
_clients: dict[int, redis.Redis] = {}


def client() -> redis.Redis:
    """One connection per process: a forked child opens its own."""
    if os.getpid() not in _clients:
        _clients[os.getpid()] = redis.Redis.from_url(os.environ["RESQUE_REDIS"])
    return _clients[os.getpid()]


@resque.job(name="Echo", queue="peers")
def echo(*args: object) -> None:
    client().rpush(RAN, layout.encode(list(args)))


@resque.job(name="Flaky", queue="peers")
def flaky(*args: object) -> None:
    """Fails the first time it sees a given set of args, then succeeds (a retry shows)."""
    if client().incr("resque:peers:tries:python:" + layout.encode(list(args))) == 1:
        raise RuntimeError("flaky: first try")
    client().rpush(RAN, layout.encode(list(args)))


@resque.job(name="Doze", queue="peers")
def doze(seconds: float) -> None:
    """Keeps a worker busy, for tests that look at a working worker."""
    time.sleep(seconds)
