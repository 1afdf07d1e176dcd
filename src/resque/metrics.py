"""Samples of a farm's counters over time, for the dashboard's charts.

Ruby's resque keeps only totals (``stat:processed``, list lengths), so a chart of "jobs per
minute" or "queue depth over the last hour" needs samples taken along the way. Any process may
take them: the dashboard does while it runs, and workers do from their heartbeat thread, so
the charts have data whenever work happens. ``record_sample`` is one round trip (a script) and
writes at most one sample per time bucket per tier however many processes call it, so calling
it often and from everywhere is safe and cheap.

Two tiers (``layout.metrics_key``): ``recent`` keeps a sample per 10 s for 2 hours, and
``history`` one per minute for 2 days. Rates are differences of the cumulative counters between
samples, so a missing sample only widens a step; a counter that went down (someone reset the
stats) starts a new line. This module is core: the worker imports it, never ``resque.web``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import redis

from resque import layout, scripts

log = logging.getLogger("resque.metrics")


@dataclass(frozen=True)
class Tier:
    """A resolution: one sample per ``bucket`` seconds, kept ``retention`` seconds."""

    name: str
    bucket: int
    retention: int


RECENT = Tier("recent", 10, 2 * 3600)
HISTORY = Tier("history", 60, 2 * 86400)
TIERS = (RECENT, HISTORY)
TOP_QUEUES = 10  # queue lengths kept per sample: the longest ones (a farm may have thousands)

SAMPLE_SCRIPT = scripts.source("sample")  # KEYS, ARGV and the return: in the file
_SCRIPT_SHA = hashlib.sha1(SAMPLE_SCRIPT.encode()).hexdigest()


def record_sample(client: redis.Redis, keys: layout.Keys, now: float | None = None) -> int:
    """Take this time bucket's sample unless someone already did; returns tiers written.

    One round trip: ``EVALSHA`` of a script that reads the counters, queue and failure-list
    lengths and the working workers, and adds the sample to each tier still missing one. The
    script reads every queue, worker and failure list (``LLEN``/``MGET``, no ``SCAN``): about
    a millisecond of Redis time for 1,000 queues and 500 workers, once per bucket.
    ``now`` defaults to Redis's clock, so processes on skewed hosts agree on the bucket.
    """
    key_names = [
        layout.metrics_key(keys, RECENT.name), layout.metrics_key(keys, HISTORY.name),
        keys.stat("processed"), keys.stat("failed"), keys.queues, keys.workers, keys.failed,
        keys.failed_queues,
    ]
    args: list[Any] = [
        "" if now is None else int(now), keys.queue(""), keys.worker(""), keys.failure_list(""),
        RECENT.bucket, RECENT.retention, HISTORY.bucket, HISTORY.retention, TOP_QUEUES,
        layout.METRICS_SAMPLE_TEMPLATE,
    ]
    written: Any  # redis-py's typing of a script's reply differs between its versions
    try:
        written = client.evalsha(_SCRIPT_SHA, len(key_names), *key_names, *args)
    except redis.exceptions.NoScriptError:
        written = client.eval(SAMPLE_SCRIPT, len(key_names), *key_names, *args)
    return int(written)


@dataclass(frozen=True)
class Sample:
    """One sample as read back: cumulative counters and gauges at time ``t``."""

    t: int
    processed: int
    failed: int
    failures: int
    pending: int
    workers: int
    working: int
    queues: tuple[tuple[str, int], ...]


def read_samples(
    client: redis.Redis, keys: layout.Keys, since: float, tier: Tier = RECENT
) -> list[Sample]:
    """Samples of one tier from ``since`` on, oldest first (one ``ZRANGEBYSCORE``)."""
    found: Any = client.zrangebyscore(layout.metrics_key(keys, tier.name), int(since), "+inf")
    samples = []
    for raw in found:
        data = layout.decode_metrics_sample(raw)
        if data is None:
            continue
        samples.append(Sample(
            t=data["t"], processed=int(data["processed"]), failed=int(data["failed"]),
            failures=int(data["failures"]), pending=int(data["pending"]),
            workers=int(data["workers"]), working=int(data["working"]),
            queues=tuple(data["queues"]),
        ))
    samples.sort(key=lambda sample: sample.t)
    return samples


def tier_for(window: float) -> Tier:
    """The finest tier that covers a window of that many seconds."""
    return next((tier for tier in TIERS if tier.retention >= window), HISTORY)
