"""A ``prometheus_client`` collector: one farm snapshot per scrape, as metric families.

Names follow Prometheus's conventions: the ``resque_`` prefix, ``_total`` on counters, base
units (``_seconds``), and labels rather than names for queues, lists and workers. Every
value comes from ``snapshot.read_snapshot``, so a scrape matches ``resque stats`` exactly:
``resque_jobs_processed_total`` is its ``processed``, ``resque_jobs_failed_total`` its
``failed_stat``, ``sum(resque_queue_length)`` its ``pending``, ``resque_queues`` its
``queues``, ``sum(resque_workers)`` its ``workers``, ``resque_workers{state="working"}`` its
``working``, ``resque_failed_list_length{list="failed"}`` its ``failed``, and the sum over
every list its ``failed_all_lists``.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder

from resque import layout
from resque.client import Client
from resque.prometheus.snapshot import FarmSnapshot, read_snapshot


class FarmCollector:
    """Collects a farm's metrics at each scrape (register it in any ``CollectorRegistry``).

    ``mark_queues=False`` for a caller that must not write to Redis (a read-only dashboard):
    the oldest-job ages then rely on the marks another scraper leaves.
    """

    def __init__(self, resque: Client, *, mark_queues: bool = True) -> None:
        self.resque = resque
        self.mark_queues = mark_queues

    def describe(self) -> list[Metric]:
        return []  # registering must not read Redis; the families appear at the first scrape

    def collect(self) -> Iterator[Metric]:
        yield from families(read_snapshot(self.resque, mark_queues=self.mark_queues))


def render(resque: Client, *, mark_queues: bool = True, accept: str = "") -> tuple[bytes, str]:
    """One scrape, and its content type, in the format the ``Accept`` header asks for
    (Prometheus's text format 0.0.4 by default; OpenMetrics when asked)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FarmCollector(resque, mark_queues=mark_queues))
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type


def families(snapshot: FarmSnapshot) -> Iterator[Metric]:
    """The metric families of one snapshot, farm totals first."""
    yield from _totals(snapshot)
    yield from _queues(snapshot)
    yield from _workers(snapshot)
    yield from _failures_and_delayed(snapshot)
    yield from _durations(snapshot)


def _totals(snapshot: FarmSnapshot) -> Iterator[Metric]:
    totals = snapshot.totals
    yield CounterMetricFamily("resque_jobs_processed", "Jobs processed by every worker "
                              "(stat:processed; failed jobs count too, as in Ruby).",
                              value=totals.processed)
    yield CounterMetricFamily("resque_jobs_failed", "Jobs that failed (stat:failed).",
                              value=totals.failed)
    yield GaugeMetricFamily("resque_paused", "1 while pause-all-workers is set.",
                            value=int(totals.paused))


def _queues(snapshot: FarmSnapshot) -> Iterator[Metric]:
    sizes = {name: size for name, size in snapshot.totals.queues.items() if size is not None}
    yield GaugeMetricFamily("resque_queues", "Queues in the queues set.",
                            value=len(snapshot.totals.queues))
    length = GaugeMetricFamily("resque_queue_length", "Jobs waiting in a queue.",
                               labels=["queue"])
    age = GaugeMetricFamily(
        "resque_queue_oldest_job_age_seconds", "Seconds since the queue's oldest job was "
        "first seen by a scrape: at least this old (0: empty, or not measurable).",
        labels=["queue"])
    for name, size in sizes.items():
        length.add_metric([_label(name)], size)
        if name in snapshot.queue_ages:
            age.add_metric([_label(name)], snapshot.queue_ages[name])
    yield length
    yield age


def _workers(snapshot: FarmSnapshot) -> Iterator[Metric]:
    totals = snapshot.totals
    states = GaugeMetricFamily("resque_workers", "Registered workers, by state.",
                               labels=["state"])
    states.add_metric(["working"], totals.working)
    states.add_metric(["idle"], totals.workers - totals.working)
    yield states
    processed = CounterMetricFamily("resque_worker_jobs_processed", "Jobs processed by a "
                                    "registered worker (stat:processed:<worker>).",
                                    labels=["worker"])
    failed = CounterMetricFamily("resque_worker_jobs_failed", "Jobs failed by a registered "
                                 "worker (stat:failed:<worker>).", labels=["worker"])
    for worker in snapshot.workers:
        processed.add_metric([_label(worker.id)], worker.processed)
        failed.add_metric([_label(worker.id)], worker.failed)
    yield processed
    yield failed


def _failures_and_delayed(snapshot: FarmSnapshot) -> Iterator[Metric]:
    lists = GaugeMetricFamily("resque_failed_list_length", "Failures kept in a failure list "
                              "(failed, or <queue>_failed of the multi-queue backend).",
                              labels=["list", "queue"])
    for name, size in snapshot.totals.failure_lists.items():
        lists.add_metric([_label(name), _label(layout.queue_of_failure_list(name) or "")],
                         size or 0)
    yield lists
    delayed = snapshot.delayed
    yield GaugeMetricFamily("resque_delayed_jobs", "Delayed jobs waiting for their time.",
                            value=delayed.jobs)
    yield GaugeMetricFamily("resque_delayed_jobs_due", "Delayed jobs whose time has come, not "
                            "yet moved to their queue by a scheduler.", value=delayed.due)
    yield GaugeMetricFamily("resque_delayed_oldest_due_seconds", "Seconds the oldest due "
                            "delayed job has been due (0 when none is).",
                            value=delayed.oldest_due_seconds)


def _durations(snapshot: FarmSnapshot) -> Iterator[Metric]:
    duration = HistogramMetricFamily(
        "resque_job_duration_seconds", "How long jobs took, by queue and class (workers "
        "started with --job-metrics).", labels=["queue", "class"])
    failures = CounterMetricFamily(
        "resque_job_failures", "Jobs that failed, by queue and class (workers started with "
        "--job-metrics).", labels=["queue", "class"])
    for series in snapshot.durations:
        labels = [_label(series.queue), _label(series.class_name)]
        duration.add_metric(labels, buckets=[(le, count) for le, count in series.buckets],
                            sum_value=series.sum_seconds)
        failures.add_metric(labels, series.failed)
    yield duration
    yield failures


def _label(value: str) -> str:
    """A label value that encodes as UTF-8 even when the name came from odd bytes."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")
