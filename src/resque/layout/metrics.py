"""Our own keys for the dashboard's samples and the job-duration histograms (``resque.metrics``,
``resque.durations``, ``resque.prometheus``). Ruby resque 3.0 has no such keys; Ruby and
Perl never read them.
"""

from __future__ import annotations

from typing import Any

from resque.layout.codec import decode, encode, text
from resque.layout.keys import Keys

# --- Dashboard samples (resque.metrics, resque.web) -------------------------------------------
# Two sorted sets of samples, one per resolution. Score: the start of the sample's time bucket
# (Unix seconds), so one bucket holds at most one sample whoever writes it. Member: one JSON
# object of cumulative counters and gauges, filled in Redis by ``string.format`` from the
# template below. Each key expires (and is trimmed) after its retention, so a farm that stops
# sampling leaves nothing behind.


def metrics_key(keys: Keys, tier: str) -> str:
    """The sample set of one resolution tier (``recent`` or ``history``)."""
    return f"{keys.prefix}metrics:{tier}"


# ``%d`` slots: time, stat:processed, stat:failed, entries in every failure list, jobs pending
# in every queue, registered workers, working workers; ``%s``: the busiest queues as a JSON
# array of ``[name, length]`` pairs, longest first.
METRICS_SAMPLE_TEMPLATE = (
    '{"t":%d,"processed":%d,"failed":%d,"failures":%d,"pending":%d,'
    '"workers":%d,"working":%d,"queues":%s}'
)


def decode_metrics_sample(raw: str | bytes) -> dict[str, Any] | None:
    """A sample as written from the template; None for anything else (never raises)."""
    try:
        sample = decode(raw)
    except ValueError:
        return None
    if not isinstance(sample, dict) or not isinstance(sample.get("t"), int):
        return None
    queues = sample.get("queues")
    sample["queues"] = [
        (text(pair[0]), int(pair[1]))
        for pair in (queues if isinstance(queues, list) else [])
        if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], (int, float))
    ]
    for name in ("processed", "failed", "failures", "pending", "workers", "working"):
        if not isinstance(sample.get(name), (int, float)):
            sample[name] = 0
    return sample


# --- Job durations and queue marks (resque.durations, resque.prometheus): ours only -------------
# ``metrics:durations`` is a hash of cumulative counters, one field per (slot, queue, class):
# the field is ``<slot> <JSON [queue, class]>``; a slot is ``b:<le>`` (jobs whose duration was
# at most ``le`` seconds and more than the bound below it, Prometheus's ``le`` text: ``0.005``,
# ``+Inf``), ``sum_us`` (their total duration in microseconds, an integer so HINCRBY never
# rounds) or ``failed`` (how many of them failed). Workers only ever add to it.
# ``metrics:queue_marks`` is a hash: queue name -> JSON array of ``[seen, item, position]``
# marks, the jobs a scrape saw at the tail (or head) of that queue, oldest first.

DURATION_SLOT_PREFIX = "b:"
DURATION_SUM = "sum_us"
DURATION_FAILED = "failed"


def job_durations_key(keys: Keys) -> str:
    """The hash of job duration histograms by queue and class."""
    return f"{keys.prefix}metrics:durations"


def queue_marks_key(keys: Keys) -> str:
    """The hash of each queue's marks, from which the age of its oldest job is estimated."""
    return f"{keys.prefix}metrics:queue_marks"


def duration_field(slot: str, queue: str, class_name: str) -> str:
    """A field of ``metrics:durations``: ``b:0.25 ["mail","Mailer::Welcome"]``."""
    return f"{slot} {encode([queue, class_name])}"


def parse_duration_field(field: str | bytes) -> tuple[str, str, str] | None:
    """``(slot, queue, class)`` of a ``metrics:durations`` field; None if it is not one."""
    slot, _, series = text(field).partition(" ")
    try:
        names = decode(series)
    except ValueError:
        return None
    if not (isinstance(names, list) and len(names) == 2 and all(isinstance(n, str) for n in names)):
        return None
    return slot, names[0], names[1]
