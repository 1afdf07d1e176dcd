"""The age of each queue's oldest job, estimated from marks a scrape leaves in Redis.

Resque's payload has no enqueue time, and adding one would change the bytes Ruby's
``Resque.dequeue`` compares; so the age is measured from outside, by the scrapes themselves.
``resque/lua/queue_marks.lua`` explains how, and why the estimate is a lower bound within
about one scrape interval, and what identical payloads do to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from resque import layout, scripts

MARKS_SCRIPT = scripts.source("queue_marks")
MARKS_PER_QUEUE = 16  # the age's resolution is about (age / this), or one scrape interval
LARGEST_MARKED = 4096  # bytes: a larger tail item is not kept (the next one may be)
SLACK = 64  # jobs a stopped worker may push back at a queue's head between two scrapes
WINDOW = 1000  # a marked item has no copy among this many items at its end of the queue


def queue_ages(client: redis.Redis, keys: layout.Keys, queues: Sequence[str],
               save: bool = True) -> dict[str, float]:
    """Seconds since each queue's oldest job was first seen by a scrape (0 when empty).

    One script call; with ``save`` it leaves marks for the next scrape (a read-only caller
    passes False and reads the marks others leave). Queues whose key is not a list are
    left out.
    """
    if not queues:
        return {}
    script = client.register_script(MARKS_SCRIPT)  # EVALSHA, loading it once per server
    found: Any = script(keys=[layout.queue_marks_key(keys)], args=[
        keys.queue(""), MARKS_PER_QUEUE, LARGEST_MARKED, "1" if save else "0", SLACK, WINDOW,
        *queues])
    return {queue: float(age) for queue, age in zip(queues, found, strict=True) if age}
