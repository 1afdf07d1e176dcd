"""Everything ``/metrics`` reports, read from Redis in one go (no ``prometheus_client`` here).

What Resque's layout can tell, and so what is reported:

* ``stat:processed`` and ``stat:failed``: farm totals (a failed job counts as processed, as
  in Ruby), and ``stat:processed:<worker>``/``stat:failed:<worker>`` per registered worker.
  Ruby keeps no count per queue; per queue and class there are the histograms our workers
  add to with ``--job-metrics`` (``resque.durations``), which count failures too.
* Queue lengths (the ``queues`` set, ``LLEN``), workers and which are working (the
  ``worker:<id>`` records), the failure lists (``failed``, and ``<q>_failed`` for Ruby's
  multi-queue backend: the only failures Redis keeps by queue), ``pause-all-workers``: read by
  ``Admin.totals``, the very counts ``resque stats`` prints.
* Delayed jobs (resque-scheduler's layout): how many wait, how many are due and not yet
  moved to their queue, and since when the oldest due one has waited.
* The age of each queue's oldest job: estimated from marks (``ages.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from resque import layout
from resque.admin.operations import Admin, Totals, WorkerInfo
from resque.client import Client
from resque.connection import unavailable_error
from resque.durations import DurationSeries, read_durations
from resque.prometheus.ages import queue_ages

CHUNK = 1000  # delayed timestamps whose lengths one pipeline reads


@dataclass(frozen=True)
class Delayed:
    """Delayed jobs (resque-scheduler's ``delayed_queue_schedule``)."""

    jobs: int
    due: int  # due now and still waiting for a scheduler to move them
    oldest_due_seconds: float  # how long the oldest due timestamp has been due; 0 if none


@dataclass(frozen=True)
class FarmSnapshot:
    """One reading of a farm, for one scrape."""

    totals: Totals
    workers: list[WorkerInfo]
    queue_ages: dict[str, float]
    delayed: Delayed
    durations: list[DurationSeries]


def read_snapshot(resque: Client, *, mark_queues: bool = True) -> FarmSnapshot:
    """Read the farm. Round trips: three for the totals (``Admin.totals``), one for the
    workers, one script for the queue ages, two or more for delayed jobs (one per thousand
    timestamps), one ``HGETALL`` for the histograms. ``mark_queues=False`` writes nothing
    (a read-only dashboard): ages then come from the marks other scrapers leave."""
    admin = Admin(resque)
    totals = admin.totals()
    queues = [name for name, size in totals.queues.items() if size is not None]
    try:
        return FarmSnapshot(
            totals=totals,
            workers=admin.workers(),
            queue_ages=queue_ages(resque.redis, resque.keys, queues, save=mark_queues),
            delayed=read_delayed(resque.redis, resque.keys),
            durations=_durations(resque),
        )
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise unavailable_error(resque.redis, exc) from exc


def _durations(resque: Client) -> list[DurationSeries]:
    try:
        return read_durations(resque.redis, resque.keys)
    except redis.ResponseError:  # the key holds another type: no histograms, not no metrics
        return []


def read_delayed(client: redis.Redis, keys: layout.Keys) -> Delayed:
    """Delayed job counts by Redis's clock: one ``ZRANGE`` with ``TIME``, then ``LLEN``s."""
    with client.pipeline(transaction=False) as pipe:
        pipe.zrange(keys.delayed_schedule, 0, -1, withscores=True)
        pipe.time()
        schedule, (seconds, _) = pipe.execute(raise_on_error=False)
    if isinstance(schedule, redis.ResponseError):
        schedule = []
    stamps: list[tuple[Any, float]] = list(schedule)
    jobs = due = 0
    for start in range(0, len(stamps), CHUNK):
        chunk = stamps[start:start + CHUNK]
        with client.pipeline(transaction=False) as pipe:
            for member, _ in chunk:
                pipe.llen(keys.delayed(_timestamp(member)))
            lengths = pipe.execute(raise_on_error=False)
        for (_, score), length in zip(chunk, lengths, strict=True):
            count = length if isinstance(length, int) else 0
            jobs += count
            due += count if score <= seconds else 0
    oldest = stamps[0][1] if stamps else None
    return Delayed(jobs, due, max(0.0, seconds - oldest) if oldest is not None else 0.0)


def _timestamp(member: Any) -> int:
    try:
        return int(layout.text(member))
    except ValueError:
        return -1  # not a timestamp (junk): its list cannot exist, LLEN reads 0
