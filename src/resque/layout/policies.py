"""Our job policies' keys and payload fields (``resque.policies``); Ruby and Perl ignore them.

A unique job's lock is resque-loner's key, ``loners:queue:<q>:job:<digest>``, the digest being
loner's (MD5 of Ruby's JSON of ``{"class","args"}`` with hash arguments sorted into pairs), or
a key the job computes. Its value is the payload of the job holding it (loner writes ``"1"``:
ours treat any value as held; loner reads only its own ``"1"``). The payload of a unique job
enqueued from Python carries ``"unique":[until, digest or key, lease s, ttl s]`` so that a
worker finds the lock without recomputing it; a job rebuilt without it (Ruby's scheduler)
falls back on its class's declaration.
A limit has two sorted sets per name: ``limits:<name>:running`` (a member per running job,
scored by the millisecond its lease ends: a dead worker's slot expires) and
``limits:<name>:starts`` (a member per start, scored by its millisecond, for the window).
"""

from __future__ import annotations

from typing import Any

from resque.layout.codec import encode
from resque.layout.keys import Keys

JOB_UNIQUE = "unique"  # payload key: [until, digest or key, lease seconds, ttl seconds]


def unique_lock(keys: Keys, queue: str, name: str) -> str:
    """A unique job's lock: resque-loner's ``loners:queue:<q>:job:<digest>``."""
    return f"{keys.prefix}loners:queue:{queue}:job:{name}"


def with_unique(payload: str, spec: list[Any]) -> str:
    """A payload of ``encode_job`` with its unique lock's spec appended (``Unique.spec``)."""
    return f'{payload[:-1]},"{JOB_UNIQUE}":{encode(spec)}}}'


def limit_running(keys: Keys, name: str) -> str:
    """The running jobs of a limit: member per job, scored by its lease's end (ms)."""
    return f"{keys.prefix}limits:{name}:running"


def limit_starts(keys: Keys, name: str) -> str:
    """The starts of a limit within its period: member per start, scored by its ms."""
    return f"{keys.prefix}limits:{name}:starts"
