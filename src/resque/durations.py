"""How long jobs take, by queue and class: histograms the whole farm adds to, in Redis.

A worker started with ``job_metrics`` (``resque work --job-metrics``, ``RESQUE_JOB_METRICS``)
times each job it performs (in fork mode, from the fork to the child's exit, as the worker
sees it) and counts it into a histogram in its own memory: a lock and a few additions, no
I/O. A thread of the recorder adds those counts to the hash ``metrics:durations`` every
``interval`` seconds, in one round trip, and then starts again from zero. Every worker adds
to the same counters, so one scrape of the dashboard's ``/metrics`` (or ``resque metrics``)
shows the farm's histograms, however many workers come and go; a worker that dies loses at
most its last ``interval`` of counts. Without ``job_metrics`` the worker never imports this
module.

Why Redis and not a ``prometheus_client`` histogram per worker process: a Resque farm's
workers are many short-lived processes (a child per job, pools that restart them) on hosts
Prometheus does not know; Redis is the one place they all reach, as for every other count.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

from resque import layout, scripts

log = logging.getLogger("resque.durations")

# Upper bounds in seconds (Prometheus's ``le``), from a quick job to a long report.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
           1800.0)
FLUSH_INTERVAL = 5.0  # seconds between a worker's additions to Redis
MAX_FIELDS = 50_000  # about 2,500 (queue, class) series: a farm-wide bound on the hash
TTL = 30 * 86400  # the hash goes away a month after the last worker with job metrics
ADD_SCRIPT = scripts.source("durations_add")


def le_text(bound: float) -> str:
    """A bucket's upper bound as Prometheus writes ``le``: ``0.005``, ``1.0``, ``+Inf``."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


_SLOTS = tuple(layout.DURATION_SLOT_PREFIX + le_text(b) for b in (*BUCKETS, float("inf")))


class DurationRecorder:
    """A worker's job durations, counted here and added to Redis by a thread of its own.

    ``observe`` is what the worker calls per job (thread-safe; no I/O). ``start`` starts the
    flushing thread, ``close`` stops it after a last flush. While Redis is away the counts
    stay here and go with the next flush that succeeds.
    """

    def __init__(self, client: redis.Redis, keys: layout.Keys,
                 interval: float = FLUSH_INTERVAL) -> None:
        self.key = layout.job_durations_key(keys)
        self.interval = interval
        self._add = client.register_script(ADD_SCRIPT)
        self._lock = threading.Lock()
        # (queue, class) -> [count per bucket..., +Inf, failed, sum in microseconds]
        self._counts: dict[tuple[str, str], list[int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def observe(self, queue: str, class_name: str, seconds: float, failed: bool) -> None:
        """Count one job that took ``seconds``."""
        slot = bisect.bisect_left(BUCKETS, seconds)  # the first bound >= seconds
        with self._lock:
            row = self._counts.get((queue, class_name))
            if row is None:
                row = self._counts[(queue, class_name)] = [0] * (len(_SLOTS) + 2)
            row[slot] += 1
            row[-2] += failed
            row[-1] += max(0, round(seconds * 1_000_000))

    def flush(self) -> int:
        """Add the counts so far to Redis (one script call); returns the series dropped
        because the farm's hash is full. On a Redis error the counts are kept for later."""
        with self._lock:
            taken, self._counts = self._counts, {}
        if not taken:
            return 0
        try:
            dropped = int(self._add(keys=[self.key], args=[MAX_FIELDS, TTL, *_groups(taken)]))
        except redis.RedisError as exc:
            self._keep(taken)
            if not self._failing:
                log.warning("could not add job durations to Redis (%s); kept for later", exc)
            self._failing = True
            return 0
        if self._failing:
            log.warning("job durations reach Redis again")
        self._failing = False
        if dropped:
            log.warning("%s is full (%d fields): %d (queue, class) series not recorded",
                        self.key, MAX_FIELDS, dropped)
        return dropped

    def _keep(self, taken: dict[tuple[str, str], list[int]]) -> None:
        with self._lock:
            for series, row in taken.items():
                mine = self._counts.setdefault(series, [0] * len(row))
                for i, value in enumerate(row):
                    mine[i] += value

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="resque-durations", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def close(self) -> None:
        """Stop the thread and flush what is left (the worker is exiting)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.flush()


def _groups(counts: dict[tuple[str, str], list[int]]) -> list[Any]:
    """The script's ARGV groups: per series, its field count, then field and increment
    pairs, ``sum_us`` first."""
    args: list[Any] = []
    for (queue, class_name), row in counts.items():
        pairs: list[Any] = [layout.duration_field(layout.DURATION_SUM, queue, class_name),
                            row[-1]]
        pairs += [item for slot, count in zip(_SLOTS, row, strict=False) if count
                  for item in (layout.duration_field(slot, queue, class_name), count)]
        if row[-2]:
            pairs += [layout.duration_field(layout.DURATION_FAILED, queue, class_name), row[-2]]
        args += [len(pairs) // 2, *pairs]
    return args


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DurationSeries:
    """One (queue, class) histogram as Prometheus wants it: cumulative bucket counts."""

    queue: str
    class_name: str
    buckets: tuple[tuple[str, int], ...]  # (le text, jobs that took at most le), +Inf last
    sum_seconds: float
    failed: int

    @property
    def count(self) -> int:
        return self.buckets[-1][1] if self.buckets else 0


def read_durations(client: redis.Redis, keys: layout.Keys) -> list[DurationSeries]:
    """Every series in ``metrics:durations`` (one ``HGETALL``), sorted by queue and class.
    Fields that are not ours are skipped."""
    found: Any = client.hgetall(layout.job_durations_key(keys))
    series: dict[tuple[str, str], dict[str, int]] = {}
    for field, value in found.items():
        parsed = layout.parse_duration_field(field)
        if parsed is None:
            continue
        slot, queue, class_name = parsed
        try:
            series.setdefault((queue, class_name), {})[slot] = int(value)
        except ValueError:
            continue
    return [_series(queue, class_name, slots)
            for (queue, class_name), slots in sorted(series.items())]


def _series(queue: str, class_name: str, slots: dict[str, int]) -> DurationSeries:
    bounds = {le_text(b) for b in BUCKETS} | {  # and any bound an older version used
        slot[len(layout.DURATION_SLOT_PREFIX):] for slot in slots
        if slot.startswith(layout.DURATION_SLOT_PREFIX)}
    ordered = [*sorted((b for b in bounds if _finite(b)), key=float), "+Inf"]
    return DurationSeries(
        queue=queue, class_name=class_name,
        buckets=tuple(zip(ordered, _cumulative(
            slots.get(layout.DURATION_SLOT_PREFIX + le, 0) for le in ordered), strict=True)),
        sum_seconds=slots.get(layout.DURATION_SUM, 0) / 1_000_000,
        failed=slots.get(layout.DURATION_FAILED, 0),
    )


def _finite(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _cumulative(counts: Iterable[int]) -> list[int]:
    total, out = 0, []
    for count in counts:
        total += count
        out.append(total)
    return out
