"""Looking after a Resque farm: queues, workers, stats, pause, pruning, and the failures.

``Admin`` is what the ``resque`` admin verbs and the dashboard call; each method names its
cost in round trips. Nothing here uses ``KEYS`` or ``SCAN``: queues come from the ``queues``
set and workers from the ``workers`` set, as Ruby keeps them.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

import redis

from resque import layout
from resque.client import Client
from resque.connection import translate_errors
from resque.failure.operations import Failures
from resque.layout import check_queue_name

log = logging.getLogger("resque.admin")

PRUNE_LOCK_TTL = 5  # seconds our one-off prune holds Ruby's lock; workers prune soon after


@dataclass(frozen=True)
class QueuedItem:
    """A queued item as stored; ``job`` is None (and ``problem`` says why) if unreadable."""

    index: int
    raw: bytes
    job: dict[str, Any] | None
    problem: str | None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"index": self.index, "job": self.job}
        if self.job is None:
            data.update(problem=self.problem, raw=layout.raw_text(self.raw))
        return data


@dataclass(frozen=True)
class WorkerInfo:
    """A registered worker as Ruby's ``Worker`` and resque-web see it."""

    id: str
    host: str
    pid: int | None
    queues: list[str]
    working: bool  # Ruby's state: any ``worker:<id>`` value, even empty, means working
    job: dict[str, Any] | None  # the decoded working-on record
    started: str | None
    heartbeat: str | None
    heartbeat_age: float | None  # seconds, by Redis server time
    processed: int
    failed: int

    @property
    def state(self) -> str:
        return "working" if self.working else "idle"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "host": self.host, "pid": self.pid, "queues": self.queues,
            "state": self.state, "job": self.job, "started": self.started,
            "heartbeat": self.heartbeat, "heartbeat_age": self.heartbeat_age,
            "processed": self.processed, "failed": self.failed,
        }


@dataclass(frozen=True)
class PruneResult:
    """Workers pruned, or, if another pruner held Ruby's lock, who held it."""

    pruned: list[str]
    lock_holder: str | None = None
    lock_ttl: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"pruned": self.pruned, "lock_holder": self.lock_holder, "lock_ttl": self.lock_ttl}


class Admin:
    """Operations on one farm. ``Admin(Resque(...))`` or ``Admin(redis=url, namespace=ns)``."""

    def __init__(
        self,
        resque: Client | None = None,
        *,
        redis: redis.Redis | str | None = None,
        namespace: str | None = None,
    ) -> None:
        self.resque = resque or Client(redis, namespace=namespace)
        self.redis = self.resque.redis
        self.keys = self.resque.keys
        self.failures = Failures(self.resque)

    # --- queues -------------------------------------------------------------------------

    def queues(self) -> dict[str, int]:
        """Queue name to size, sorted by name: ``SMEMBERS`` plus one ``LLEN`` pipeline."""
        return self.resque.queue_sizes()

    @translate_errors
    def peek(self, queue: str, start: int = 0, count: int = 10) -> list[QueuedItem]:
        """Items ``start`` to ``start + count`` of a queue (one ``LRANGE``); bad items shown."""
        if start < 0 or count < 1:
            raise ValueError("peek needs start >= 0 and count >= 1")
        raws: list[Any] = self.redis.lrange(self.keys.queue(queue), start, start + count - 1)
        items = []
        for offset, value in enumerate(raws):
            raw = value if isinstance(value, bytes) else str(value).encode()
            try:
                items.append(QueuedItem(start + offset, raw, layout.decode_job(raw, queue), None))
            except ValueError as exc:
                items.append(QueuedItem(start + offset, raw, None, str(exc)))
        return items

    def enqueue(self, queue: str, class_name: str, args: list[Any]) -> None:
        """Push ``{"class","args"}`` without hooks (Ruby's ``Resque.push``): the job's code
        need not be importable here."""
        if not isinstance(args, list):
            raise TypeError(f"job args must be a JSON array, not {type(args).__name__}")
        self.resque.push(check_queue_name(queue), {"class": class_name, "args": args})
        log.info("enqueued %s to %s", class_name, queue)

    def remove_queue(self, queue: str) -> int:
        """resque-web's "Remove Queue" (the client's ``remove_queue``, transactional);
        returns the jobs deleted."""
        size = self.resque.remove_queue(queue)
        log.info("removed queue %s with %d job(s)", queue, size)
        return size

    # --- workers ------------------------------------------------------------------------

    @translate_errors
    def workers(self) -> list[WorkerInfo]:
        """Every registered worker: ``SMEMBERS`` plus one pipeline of ``MGET``s and ``TIME``."""
        ids = sorted(layout.text(w) for w in self.redis.smembers(self.keys.workers))
        if not ids:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            # Keys as bytes: an id that is not UTF-8 (another tool's) goes back as it came.
            pipe.mget([_raw(self.keys.worker(w)) for w in ids])
            pipe.mget([_raw(self.keys.worker_started(w)) for w in ids])
            pipe.hmget(self.keys.heartbeat, [_raw(w) for w in ids])
            pipe.mget([_raw(self.keys.worker_stat("processed", w)) for w in ids])
            pipe.mget([_raw(self.keys.worker_stat("failed", w)) for w in ids])
            pipe.time()
            records, started, beats, processed, failed, (seconds, micros) = pipe.execute()
        now = seconds + micros / 1e6
        found = []
        for i, worker in enumerate(ids):
            host, pid, queues = layout.parse_worker_id(worker)
            beat = layout.text(beats[i]) if beats[i] is not None else None
            seen = layout.parse_time(beat)
            found.append(WorkerInfo(
                id=worker, host=host, pid=pid, queues=queues,
                working=records[i] is not None,
                job=_working_on(records[i]),
                started=layout.text(started[i]) if started[i] is not None else None,
                heartbeat=beat,
                heartbeat_age=round(now - seen.timestamp(), 1) if seen else None,
                processed=_int(processed[i]),
                failed=_int(failed[i]),
            ))
        return found

    @translate_errors
    def prune(self, heartbeat_expiry: float = 300.0, *, force: bool = False) -> PruneResult:
        """Prune dead workers now, with the workers' own rules (``resque.recovery.Pruner``):
        a stale heartbeat anywhere, or a same-host pid that is gone. Their in-flight jobs are
        requeued (ours) or recorded as failed (Ruby's and Perl's).

        Respects Ruby's ``pruning_dead_workers_in_progress`` lock unless ``force``.
        """
        from resque.recovery import Pruner
        from resque.store import WorkerStore

        hostname = socket.gethostname()
        me = layout.worker_id(hostname, os.getpid(), ["prune"])
        if force:
            self.redis.delete(self.keys.prune_lock)
        store = WorkerStore(self.redis, self.keys, me)
        pruned = Pruner(store, hostname, heartbeat_expiry, PRUNE_LOCK_TTL).prune()
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(self.keys.prune_lock)
            pipe.ttl(self.keys.prune_lock)
            holder, ttl = pipe.execute()
        if holder is not None and layout.text(holder) != me:
            return PruneResult(pruned, layout.text(holder), int(ttl))
        return PruneResult(pruned)

    # --- stats and pausing --------------------------------------------------------------

    @translate_errors
    def stats(self) -> dict[str, Any]:
        """Ruby's ``Resque.info`` (``failed`` is ``LLEN failed``, as there), plus the failures
        in every list, the ``stat:failed`` counter and whether workers are paused."""
        info = self.resque.info()
        failed_lists = self.failures.counts()
        info["failed_all_lists"] = sum(failed_lists.values())
        info["failed_lists"] = len(failed_lists)
        info["failed_stat"] = self.resque.stat("failed")
        info["paused"] = self.paused()
        return info

    @translate_errors
    def pause(self) -> None:
        """Set ``pause-all-workers``: Ruby workers and ours stop taking jobs (Perl's do not)."""
        self.redis.set(self.keys.pause, layout.PAUSE_VALUE)
        log.info("paused all workers")

    @translate_errors
    def resume(self) -> None:
        self.redis.delete(self.keys.pause)
        log.info("resumed all workers")

    @translate_errors
    def paused(self) -> bool:
        value = self.redis.get(self.keys.pause)
        return value is not None and layout.text(value).strip().lower() == layout.PAUSE_VALUE


def _raw(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _working_on(raw: Any) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        record = layout.decode(raw)
    except ValueError:
        return {"unreadable": layout.raw_text(raw)}
    return record if isinstance(record, dict) else {"unreadable": layout.raw_text(raw)}

