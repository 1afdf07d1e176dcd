"""Looking after a Resque farm: queues, workers, stats, pause, pruning, and the failures.

``Admin`` is what the ``resque`` admin verbs and the dashboard call; each method names its
cost in round trips. Nothing here uses ``KEYS`` or ``SCAN``: queues come from the ``queues``
set and workers from the ``workers`` set, as Ruby keeps them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

import redis

from resque import ids, layout
from resque.admin.inflight import InflightJob, Orphan, RecoverResult
from resque.admin.inflight import orphans as find_orphans
from resque.admin.inflight import read as read_inflight
from resque.admin.inflight import recover as recover_worker
from resque.client import Client
from resque.connection import describe, translate_errors
from resque.failure.operations import Failures
from resque.layout import check_queue_name
from resque.queues import ruby_fnmatch

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
    # Ours: every job the worker holds (a batch, or one per thread), oldest first; the record
    # above shows one. None when not read (``workers(inflight=True)`` reads them).
    inflight: list[InflightJob] | None = None

    @property
    def state(self) -> str:
        return "working" if self.working else "idle"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id, "host": self.host, "pid": self.pid, "queues": self.queues,
            "state": self.state, "job": self.job, "started": self.started,
            "heartbeat": self.heartbeat, "heartbeat_age": self.heartbeat_age,
            "processed": self.processed, "failed": self.failed,
        }
        if self.inflight is not None:
            data["inflight"] = [job.to_json() for job in self.inflight]
        return data


@dataclass(frozen=True)
class PruneResult:
    """Workers pruned, or, if another pruner held Ruby's lock, who held it."""

    pruned: list[str]
    lock_holder: str | None = None
    lock_ttl: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"pruned": self.pruned, "lock_holder": self.lock_holder, "lock_ttl": self.lock_ttl}


@dataclass(frozen=True)
class Totals:
    """The farm's counts, read so that junk cannot stop them: a key holding another type than
    Ruby's layout says (another tool's, or a mistake) counts as empty and is named in
    ``problems``, as the worker reports such keys and goes on."""

    queues: dict[str, int | None]  # every member of ``queues``, by name; None: not a list
    failure_lists: dict[str, int | None]  # ``failed`` first, then ``failed_queues``'s members
    workers: int
    working: int  # workers with a non-empty ``worker:<id>``, as Ruby's ``working`` counts
    processed: int
    failed: int  # the ``stat:failed`` counter; ``failure_lists`` are what is kept
    paused: bool
    problems: tuple[str, ...] = ()

    @property
    def pending(self) -> int:
        return sum(size or 0 for size in self.queues.values())

    @property
    def failures(self) -> int:
        """Entries in every failure list."""
        return sum(length or 0 for length in self.failure_lists.values())


class _Reads:
    """Pipelined reads that survive keys of another type: a command Redis refuses reads as
    None and its key is kept, to be named by ``problems`` (one ``TYPE`` pipeline, only when
    there is junk)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.bad: dict[str, str] = {}  # key -> what it should hold
        self.odd: dict[str, str] = {}  # key -> why its value is unusable

    def run(self, calls: list[tuple[str, str, str]]) -> list[Any]:
        """``(command, key, expected type)`` each, in one round trip."""
        if not calls:
            return []
        with self.client.pipeline(transaction=False) as pipe:
            for command, key, _ in calls:
                getattr(pipe, command)(_raw(key))
            replies = pipe.execute(raise_on_error=False)
        for (_, key, expected), reply in zip(calls, replies, strict=True):
            if isinstance(reply, redis.ResponseError):
                self.bad[key] = expected
        return [None if isinstance(r, redis.ResponseError) else r for r in replies]

    def counter(self, key: str, value: Any) -> int:
        """A counter's value; one that is not a whole number reads as 0 (and is named)."""
        try:
            return int(value or 0)
        except ValueError:
            self.odd[key] = f"holds {layout.raw_text(value)[:40]!r}, not a whole number"
            return 0

    def problems(self) -> tuple[str, ...]:
        found = [f"{key} {why}" for key, why in self.odd.items()]
        if self.bad:
            with self.client.pipeline(transaction=False) as pipe:
                for key in self.bad:
                    pipe.type(_raw(key))
                kinds = [layout.text(kind) for kind in pipe.execute()]
            found += [f"{key} holds a {kind}, not a {expected}"
                      for (key, expected), kind in zip(self.bad.items(), kinds, strict=True)
                      if kind != "none"]  # gone meanwhile: nothing to report
        return tuple(sorted(layout.raw_text(_raw(problem)) for problem in found))


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

    @translate_errors
    def queues(self) -> dict[str, int]:
        """Queue name to size, sorted by name: ``SMEMBERS`` plus one ``LLEN`` pipeline. A
        queue whose key holds another type is left out (``stats`` names it)."""
        reads = _Reads(self.redis)
        (members,) = reads.run([("smembers", self.keys.queues, "set")])
        names = sorted(layout.text(m) for m in members or ())
        sizes = reads.run([("llen", self.keys.queue(name), "list") for name in names])
        return {name: int(size) for name, size in zip(names, sizes, strict=True)
                if size is not None}

    @translate_errors
    def peek(self, queue: str, start: int = 0, count: int = 10) -> list[QueuedItem]:
        """Items ``start`` to ``start + count`` of a queue (one ``LRANGE``); bad items shown."""
        if start < 0 or count < 1:
            raise ValueError("peek needs start >= 0 and count >= 1")
        raws: list[Any] = self.redis.lrange(_raw(self.keys.queue(queue)), start,
                                            start + count - 1)
        items = []
        for offset, value in enumerate(raws):
            raw = value if isinstance(value, bytes) else str(value).encode()
            try:
                items.append(QueuedItem(start + offset, raw, layout.decode_job(raw, queue), None))
            except ValueError as exc:
                items.append(QueuedItem(start + offset, raw, None, str(exc)))
        return items

    def enqueue(self, queue: str, class_name: str, args: list[Any]) -> str | None:
        """Push ``{"class","args"}`` without hooks (Ruby's ``Resque.push``), with a job id
        unless the client writes Ruby's exact payloads; the id. The job's code need not be
        importable here."""
        if not isinstance(args, list):
            raise TypeError(f"job args must be a JSON array, not {type(args).__name__}")
        item: dict[str, Any] = {"class": class_name, "args": args}
        if self.resque.job_ids:
            item[layout.JOB_ID] = ids.new_id()
        self.resque.push(check_queue_name(queue), item)
        log.info("enqueued %s to %s", class_name, queue)
        return item.get(layout.JOB_ID)

    def serving(self, queue: str, heartbeat_expiry: float = 300.0) -> list[WorkerInfo]:
        """Registered workers that take jobs from ``queue`` (by name or glob) and look alive:
        a heartbeat younger than ``heartbeat_expiry``, or none at all (an older Ruby, Perl)."""
        return [worker for worker in self.workers()
                if any(ruby_fnmatch(pattern, queue) for pattern in worker.queues)
                and (worker.heartbeat_age is None or worker.heartbeat_age < heartbeat_expiry)]

    @translate_errors
    def size(self, queue: str) -> int | None:
        """A queue's length (``LLEN``); None if its key holds another type."""
        (length,) = _Reads(self.redis).run([("llen", self.keys.queue(queue), "list")])
        return None if length is None else int(length)

    @translate_errors
    def remove_queue(self, queue: str) -> int:
        """resque-web's "Remove Queue" (the client's ``remove_queue``, transactional);
        returns the jobs deleted."""
        size = self.resque.remove_queue(queue)
        log.info("removed queue %s with %d job(s)", queue, size)
        return size

    # --- workers ------------------------------------------------------------------------

    @translate_errors
    def workers(self, inflight: bool = False) -> list[WorkerInfo]:
        """Every registered worker: ``SMEMBERS`` plus one pipeline of ``MGET``s and ``TIME``
        (and, with ``inflight``, one of ``LRANGE``: the jobs each holds). Junk (a ``workers``
        or heartbeat key of another type) reads as no workers or no heartbeats; ``stats``
        names it."""
        found = self._workers()
        if not inflight:
            return found
        held = read_inflight(self.redis, self.keys, [w.id for w in found])
        return [dataclasses.replace(w, inflight=held[w.id]) for w in found]

    @translate_errors
    def inflight(self, worker_ids: list[str]) -> dict[str, list[InflightJob]]:
        """The jobs each of these workers holds in flight, oldest first: one pipeline."""
        return read_inflight(self.redis, self.keys, worker_ids)

    @translate_errors
    def orphans(self) -> list[Orphan]:
        """In-flight lists of workers no longer registered: jobs no Ruby tool shows, which
        a pruner of ours (or ``recover``) requeues."""
        (members,) = _Reads(self.redis).run([("smembers", self.keys.workers, "set")])
        return find_orphans(self.redis, self.keys, {layout.text(w) for w in members or ()})

    @translate_errors
    def recover(self, worker: str, heartbeat_expiry: float = 300.0, *,
                force: bool = False) -> RecoverResult:
        """Unregister one worker now and requeue its in-flight jobs (see
        ``resque.admin.inflight.recover``); refused while it shows signs of life, unless
        ``force``."""
        return recover_worker(self.redis, self.keys, worker, heartbeat_expiry, force)

    def _workers(self) -> list[WorkerInfo]:
        (members,) = _Reads(self.redis).run([("smembers", self.keys.workers, "set")])
        ids = sorted(layout.text(w) for w in members or ())
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
            replies = pipe.execute(raise_on_error=False)
        records, started, beats, processed, failed, (seconds, micros) = replies
        if isinstance(beats, redis.ResponseError):  # a heartbeat key of another type
            beats = [None] * len(ids)
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
    def stats(self, totals: Totals | None = None) -> dict[str, Any]:
        """Ruby's ``Resque.info`` (``failed`` is ``LLEN failed``, as there), plus the failures
        in every list, the ``stat:failed`` counter and whether workers are paused; and
        ``problems``, naming each key that holds junk, when there is any (see ``totals``).
        Given ``totals`` already read, nothing is read again."""
        totals = totals or self.totals()
        info: dict[str, Any] = {
            "pending": totals.pending,
            "processed": totals.processed,
            "queues": len(totals.queues),
            "workers": totals.workers,
            "working": totals.working,
            "failed": totals.failure_lists.get(layout.FAILED_LIST) or 0,
            "servers": [describe(self.redis)],
            # as Resque.info (and Ruby's) names it
            "environment": os.environ.get("RAILS_ENV") or os.environ.get("RACK_ENV")
            or "development",
            "failed_all_lists": totals.failures,
            "failed_lists": len(totals.failure_lists),
            "failed_stat": totals.failed,
            "paused": totals.paused,
        }
        if totals.problems:
            info["problems"] = list(totals.problems)
        return info

    @translate_errors
    def totals(self) -> Totals:
        """Every count the overview shows, whatever junk is in Redis. Two round trips: the
        sets and counters; then the lengths and the working records (a third, ``TYPE``,
        only to name keys of the wrong type)."""
        keys = self.keys
        reads = _Reads(self.redis)
        queues, workers, lists, processed, failed, pause, _ = reads.run([
            ("smembers", keys.queues, "set"), ("smembers", keys.workers, "set"),
            ("smembers", keys.failed_queues, "set"), ("get", keys.stat("processed"), "string"),
            ("get", keys.stat("failed"), "string"), ("get", keys.pause, "string"),
            ("hlen", keys.heartbeat, "hash"),  # read only to name it if it is junk
        ])
        queue_names = sorted(layout.text(q) for q in queues or ())
        list_names = [layout.FAILED_LIST,
                      *sorted({layout.text(m) for m in lists or ()} - {layout.FAILED_LIST})]
        worker_keys = [_raw(keys.worker(layout.text(w))) for w in workers or ()]
        lengths = reads.run([("llen", keys.queue(q), "list") for q in queue_names]
                            + [("llen", keys.failure_list(n), "list") for n in list_names])
        records = self.redis.mget(worker_keys) if worker_keys else []  # junk reads as nil
        return Totals(
            queues=dict(zip(queue_names, lengths[:len(queue_names)], strict=True)),
            failure_lists=dict(zip(list_names, lengths[len(queue_names):], strict=True)),
            workers=len(worker_keys),
            working=sum(1 for record in records if record),
            processed=reads.counter(keys.stat("processed"), processed),
            failed=reads.counter(keys.stat("failed"), failed),
            paused=pause is not None and layout.text(pause).strip().lower() == layout.PAUSE_VALUE,
            problems=reads.problems(),
        )

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
        """Whether ``pause-all-workers`` pauses Ruby's workers (a key of another type does
        not: they could not read it)."""
        (value,) = _Reads(self.redis).run([("get", self.keys.pause, "string")])
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

