"""Every Redis operation a worker performs, with its cost in round trips.

The per-job path is one round trip: the step script (``lua/step.lua``) finishes the previous job
(acknowledge, count, record a failure) and reserves the next one. Reserving is one atomic
step: the job moves from ``queue:<q>`` into this worker's in-flight list and the Ruby
"working on" record is written in the same script, so no crash window can lose it.
Ruby and Perl see exactly what a Ruby worker writes; the in-flight list is ours alone.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from resque import layout, scripts, status
from resque.failure import RedisFailure, RedisTarget

log = logging.getLogger("resque.worker")

# Ack modes of the STEP script: what happened to the job this worker had in flight.
ACK_OK = "ok"  # performed (or skipped by a hook): processed +1
ACK_FAILED = "failed"  # raised: failure record, processed +1, failed +1 (Ruby's counting)
ACK_DIRTY = "dirty"  # its process died: failure record, processed +1, failed untouched
ACK_REQUEUE = "requeue"  # stopped by a shutdown: back to the head of its queue, not counted
# Refused by its limit (resque.policies): already moved from the in-flight list to the delayed
# schedule by lua/limit_defer.lua, so no step acknowledges it and nothing counts it.
ACK_DEFERRED = "deferred"
# Settled already, by the script that queued its retry (policies/retry_store.py): the step
# leaves it alone (it is no longer in flight, and it was counted).
ACK_SETTLED = "settled"
_LEFT_ALONE = (ACK_DEFERRED, ACK_SETTLED)  # acknowledged by a script of their own

# The scripts, one file each in resque/lua/ with their KEYS, ARGV, reply and atomicity argument.
STEP_SCRIPT = scripts.source("step")  # acknowledge the jobs in flight, reserve the next ones
RECOVER_SCRIPT = scripts.source("recover")  # unregister a worker, requeue its jobs
FAIL_ENTRY_SCRIPT = scripts.source("fail_entry")  # fail one in-flight job instead

RECOVERY_MEMORY = 7 * 24 * 3600  # how long a requeue is remembered against a payload


def digest(payload: bytes) -> str:
    """A payload's field in the ``recovered`` and ``stopped`` hashes (Lua's ``sha1hex``)."""
    return hashlib.sha1(payload).hexdigest()


@dataclass(frozen=True)
class Reserved:
    """A job taken from ``queue``: the raw bytes exactly as they were queued."""

    queue: str
    raw: bytes
    token: str = ""  # the step that reserved it, also stored in its in-flight entry


@dataclass(frozen=True)
class Ack:
    """How one job ended; ``failure`` is its failure record (failed and dirty)."""

    mode: str
    failure: str = ""
    failure_queue: str = ""  # redis_multi_queue: the job's queue, whose <q>_failed list gets it


@dataclass
class Acks:
    """What the next step reports for the jobs at the head of the in-flight list, in order:
    ``done`` finished ones (``failed`` of them raised), then ``requeue`` stopped ones.

    ``concurrent``: jobs that finished in any order (threads), each named by its token in
    ``finished``; ``shows`` is the worker record for the oldest job still running."""

    done: int = 0
    failed: int = 0
    requeue: int = 0
    records: list[str] = field(default_factory=list)
    queue: str = ""
    last_token: str | None = None  # the last entry covered: gone once the step has run
    concurrent: bool = False
    finished: list[tuple[str, int, str]] = field(default_factory=list)
    shows: str = ""

    def add(self, ack: Ack, job: Reserved) -> None:
        if ack.mode in _LEFT_ALONE:
            return  # its entry left the in-flight list in its own script
        if ack.mode == ACK_REQUEUE:
            if self.concurrent:
                raise ValueError("a concurrent worker leaves unfinished jobs in flight")
            self.requeue += 1
        else:
            if self.requeue:
                raise ValueError("a finished job cannot follow a requeued one")
            self.done += 1
            self.failed += ack.mode == ACK_FAILED
            if ack.failure:
                self.records.append(ack.failure)
                self.queue = ack.failure_queue or job.queue
            if self.concurrent:
                self.finished.append((job.token, int(ack.mode == ACK_FAILED), ack.failure))
        self.last_token = job.token

    def accepts(self, ack: Ack, job: Reserved) -> bool:
        """False for a failure of another queue than the failures already here: one step
        writes one failure list (``redis_multi_queue`` keeps one per queue)."""
        return ack.mode == ACK_SETTLED or not (ack.failure and self.records
                    and (ack.failure_queue or job.queue) != self.queue)

    def __bool__(self) -> bool:
        return bool(self.done or self.requeue)


@dataclass(frozen=True)
class Step:
    """What one step did: the jobs it reserved (maybe none), unless every worker is paused.
    ``bad_queues`` names queues skipped because their key is not a list."""

    jobs: list[Reserved] = field(default_factory=list)
    paused: bool = False
    bad_queues: tuple[str, ...] = ()


_NO_ACKS = Acks()  # never changed: a step with nothing to acknowledge
# The reply code of a script that refused before writing anything, because a key it must
# write holds another type: the jobs stay in flight; the worker reports it and tries again.
NOT_NOW = "NOTNOW"


def _entry(raw: bytes | str) -> tuple[str, bytes, str]:
    """An in-flight entry ``[queue, payload, token]`` (older entries have no token)."""
    value = layout.decode(raw)
    queue, payload = value[0], value[1]
    token = value[2] if len(value) > 2 else ""
    return queue, payload.encode("utf-8", "surrogateescape"), token


class WorkerStore:
    """The Redis side of one worker: registration, heartbeat, reserve/ack, recovery."""

    def __init__(self, client: redis.Redis, keys: layout.Keys, worker_id: str) -> None:
        self.redis = client
        self.keys = keys
        self.worker_id = worker_id
        # Where failure records go (a backend's ``redis_target``): pure, no round trip.
        self.failure_target: Callable[[layout.Keys, str], RedisTarget | None] = (
            RedisFailure().redis_target
        )
        self._step = client.register_script(STEP_SCRIPT)
        self._recover = client.register_script(RECOVER_SCRIPT)
        self._fail_entry = client.register_script(FAIL_ENTRY_SCRIPT)
        self._fixed_keys = [
            keys.worker(worker_id),
            keys.inflight(worker_id),
            keys.stat("processed"),
            keys.worker_stat("processed", worker_id),
            keys.stat("failed"),
            keys.worker_stat("failed", worker_id),
            keys.failed,
            keys.failed_queues,
            keys.pause,
            keys.stopped,
        ]
        self.concurrent = False  # jobs on threads: acknowledged by token, in any order
        self._queue_args: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
        self._run_at_second = -1
        self._reported_bad: set[str] = set()
        self._run_at = ""

    # --- one round trip per job ---------------------------------------------------------

    def step(
        self,
        acks: Acks | None,
        queues: Sequence[str],
        reserve: int = 1,
        now: float = 0.0,
        token: str = "",
    ) -> Step:
        """Finish the jobs in flight and reserve up to ``reserve`` more from the first queue
        that has any: one round trip, ``EVALSHA`` of ``lua/step.lua``.

        ``token`` names this step (a number, increasing per worker) so that ``step_outcome``
        can tell, after a lost reply, whether the script ran, and so that the script can
        refuse to act twice. A queue key that holds another type than a list is skipped and
        logged once; nothing in it is touched.
        """
        keys, args = self._step_arguments(acks, tuple(queues), reserve, now, token)
        result = self._step(keys=keys, args=args)
        if result == b"paused":
            return Step(paused=True)
        if not result:
            return Step()
        queue, bad = layout.text(result[0]), int(result[1])
        bad_queues = tuple(layout.text(name) for name in result[2 : 2 + bad])
        self._report_bad_queues(bad_queues)
        jobs = [Reserved(queue, raw, f"{token}:{i}") for i, raw in enumerate(result[2 + bad :], 1)]
        return Step(jobs, bad_queues=bad_queues)

    def _step_arguments(
        self, acks: Acks | None, queues: tuple[str, ...], reserve: int, now: float, token: str
    ) -> tuple[list[str], list[Any]]:
        queue_keys, queue_args = self._queue_arguments(queues)
        keys = self._fixed_keys + queue_keys
        acks = acks if acks else _NO_ACKS
        records, failed_member, written = "", "", False
        if acks.records:
            target = self.failure_target(self.keys, acks.queue)
            if target is not None:
                keys[6] = target.key
                records, failed_member = layout.encode(acks.records), target.failed_queues_member
                written = True
        counts, finished = (acks.done, acks.failed, acks.requeue), ""
        if self.concurrent:  # by token; records travel with their jobs
            finished = layout.encode([[t, f, r if written else ""] for t, f, r in acks.finished])
            counts, records = (0, 0, 0), ""
        args: list[Any] = [
            *counts, failed_member, records, reserve,
            layout.WORKING_ON_TEMPLATE, self._run_at_json(now), layout.UNREADABLE_PAYLOAD,
            self.keys.queue(""), token, acks.last_token or "", RECOVERY_MEMORY, finished,
            acks.shows, *queue_args,
        ]
        return keys, args

    def _report_bad_queues(self, names: Sequence[str]) -> None:
        for name in names:
            if name not in self._reported_bad:
                self._reported_bad.add(name)
                log.error("%s holds a value that is not a list: queue %r is skipped, and "
                          "nothing in it is touched; inspect it with TYPE and remove or fix it",
                          self.keys.queue(name), name)

    def step_outcome(self, token: str, acked_token: str | None) -> Step | None:
        """After a step whose reply was lost: what did it do? One round trip (``LRANGE``).

        Returns what it reserved (possibly nothing), or None when it never ran.
        """
        key = self.keys.inflight(self.worker_id)
        entries = [_entry(raw) for raw in self.redis.lrange(key, 0, -1)]
        mine = [Reserved(q, raw, t) for q, raw, t in entries if t.startswith(token + ":")]
        if mine:
            return Step(mine)
        if acked_token is not None and all(t != acked_token for _, _, t in entries):
            return Step()  # the acknowledgement went through and nothing was reserved
        return None

    def _queue_arguments(self, queues: tuple[str, ...]) -> tuple[list[str], list[str]]:
        cached = self._queue_args.get(queues)
        if cached is None:
            queue_keys = [self.keys.queue(q) for q in queues]
            queue_args = [part for q in queues for part in (q, layout.encode(q))]
            cached = self._queue_args[queues] = (queue_keys, queue_args)
            if len(self._queue_args) > 64:  # wildcard workers see changing lists
                self._queue_args.clear()
        return cached

    def _run_at_json(self, now: float) -> str:
        second = int(now)
        if second != self._run_at_second:
            self._run_at_second = second
            self._run_at = layout.encode(layout.run_at(second))
        return self._run_at

    # --- lifecycle ----------------------------------------------------------------------

    def register(self, started: str) -> None:
        """Ruby's ``register_worker`` (SADD + SET started) plus our in-flight owner entry."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.sadd(self.keys.workers, self.worker_id)
            pipe.set(self.keys.worker_started(self.worker_id), started)
            pipe.sadd(self.keys.inflight_workers, self.worker_id)
            pipe.execute()

    def is_registered(self) -> bool:
        return bool(self.redis.sismember(self.keys.workers, self.worker_id))

    def heartbeat(self, clear: bool = False) -> None:
        """Write Redis server time as the heartbeat (two round trips, once a minute)."""
        seconds, _ = self.redis.time()
        if clear:
            self.redis.hdel(self.keys.heartbeat, self.worker_id)
        self.redis.hset(self.keys.heartbeat, self.worker_id, layout.heartbeat_at(seconds))

    def unregister(self) -> int:
        """Remove every key of this worker; anything still in flight is requeued first."""
        requeued, _ = self.recover(self.worker_id)
        return requeued

    def recover(
        self,
        worker: str,
        expected_record: bytes | None = None,
        failure: str = "",
        failure_queue: str = "",
    ) -> tuple[int, bytes | None]:
        """Unregister ``worker`` atomically, requeueing its in-flight jobs at their heads.

        ``expected_record`` makes it a compare-and-act: if the worker record changed meanwhile
        nothing happens and ``(-1, None)`` is returned. ``failure`` is recorded when the worker
        had a job in its record but no in-flight list (a Ruby or Perl worker).
        Returns ``(jobs requeued or failed, the worker record that was there)``.
        """
        keys = self.keys
        target = self.failure_target(keys, failure_queue) if failure else None
        # Read first, for the status records of tracked jobs among them (status.py): one
        # LRANGE, and recovery is rare (a dead worker, a worker's exit).
        entries: list[Any] = self.redis.lrange(keys.inflight(worker), 0, -1)
        result = self._recover(
            keys=[
                keys.worker(worker),
                keys.inflight(worker),
                keys.workers,
                keys.heartbeat,
                keys.inflight_workers,
                keys.queues,
                target.key if target else keys.failed,
                keys.failed_queues,
                keys.worker_started(worker),
                keys.worker_stat("processed", worker),
                keys.worker_stat("failed", worker),
            ],
            args=[
                worker,
                keys.queue(""),
                expected_record or b"",
                failure if target else "",
                target.failed_queues_member if target else "",
            ],
        )
        if int(result[0]) < 0:
            return -1, None
        if entries:
            payloads = [_entry(raw)[1] for raw in entries]
            # Without a worker record, whoever unregistered it failed the first job already.
            first = 0 if result[2] else 1
            status.after_recovery(self.redis, keys, worker, payloads[first:], payloads[:first])
        return int(result[0]) + int(result[1]), result[2] or None

    def inflight_entries(self, worker: str) -> list[tuple[bytes, str, bytes]]:
        """A worker's in-flight list as ``(entry, queue, payload)``."""
        raws: list[Any] = self.redis.lrange(self.keys.inflight(worker), 0, -1)
        return [(raw, *_entry(raw)[:2]) for raw in raws]

    def count_recoveries(self, payloads: Sequence[bytes]) -> list[int]:
        """Count one more requeue of each payload (by digest); returns the new counts."""
        with self.redis.pipeline(transaction=False) as pipe:
            for payload in payloads:
                pipe.hincrby(self.keys.recovered, digest(payload), 1)
            pipe.expire(self.keys.recovered, RECOVERY_MEMORY)
            counts = pipe.execute()
        return [int(count) for count in counts[:-1]]

    def times_stopped(self, payload: bytes) -> int:
        """How often a shutdown requeued this payload (the step script counts). One round
        trip, only for a job a shutdown stopped."""
        count: Any = self.redis.hget(self.keys.stopped, digest(payload))
        return int(count or 0)

    def forget_stops(self, payload: bytes) -> None:
        self.redis.hdel(self.keys.stopped, digest(payload))

    def fail_entry(self, worker: str, entry: Any, failure: str, queue: str) -> bool:
        """Move one in-flight entry to the failure list, atomically; False if it was gone."""
        target = self.failure_target(self.keys, queue)
        if target is None:
            return bool(self.redis.lrem(self.keys.inflight(worker), 1, entry))
        done = self._fail_entry(
            keys=[self.keys.inflight(worker), target.key, self.keys.failed_queues],
            args=[entry, failure, target.failed_queues_member],
        )
        return bool(done)

    # --- reading the farm, for pruning --------------------------------------------------

    def acquire_prune_lock(self, ttl: int) -> bool:
        """Ruby's lock: ``SET pruning_dead_workers_in_progress <id> NX EX ttl``."""
        return bool(self.redis.set(self.keys.prune_lock, self.worker_id, nx=True, ex=ttl))

    def farm(self) -> tuple[set[str], dict[str, str], set[str], float]:
        """Registered ids, heartbeats, in-flight owners and Redis time: one round trip."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.smembers(self.keys.workers)
            pipe.hgetall(self.keys.heartbeat)
            pipe.smembers(self.keys.inflight_workers)
            pipe.time()
            workers, beats, owners, (seconds, micros) = pipe.execute()
        return (
            {layout.text(w) for w in workers},
            {layout.text(k): layout.text(v) for k, v in beats.items()},
            {layout.text(w) for w in owners},
            seconds + micros / 1e6,
        )

    def worker_record(self, worker: str) -> bytes | None:
        value: Any = self.redis.get(self.keys.worker(worker))
        return value if value else None

    def queue_names(self) -> list[str]:
        return sorted(layout.text(q) for q in self.redis.smembers(self.keys.queues))
