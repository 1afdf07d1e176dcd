"""The worker's side of unique jobs and limits: before a job runs, take what its policies ask
for (a place under its limit, its unique lock) or defer it; after it ends, give them back;
meanwhile, keep their leases alive.

``applies`` is all a job without policies costs: a dict lookup and an attribute read or two,
no round trip. A job with a policy costs a round trip per policy before it runs and one after
it ends; its leases (a place under a cap, an ``until="end"`` lock) are renewed by one thread
per worker, a third of the shortest lease apart, one pipelined round trip for all of them. If
the worker dies the renewals stop and the leases expire: nothing stays held.

Redis away while a job is admitted: the job runs without what it could not take (logged),
rather than wait or be lost; the step that acknowledges it waits for Redis anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from resque import layout
from resque.policies import limits, unique
from resque.store import ACK_REQUEUE, Reserved
from resque.tasks import TaskBase

log = logging.getLogger("resque.policies")

_UNIQUE = layout.JOB_UNIQUE


def applies(payload: dict[str, Any], target: Any) -> bool:
    """Whether a job has a policy to act on: the per-job check, kept to a lookup or two."""
    if _UNIQUE in payload:
        return True
    if isinstance(target, TaskBase):
        return target.unique is not None or target.limit is not None
    try:
        found = _classes.get(target)
    except TypeError:  # an unhashable callable: asked every time
        found = None
    if found is None:  # a miss costs getattr's AttributeError: about a microsecond
        found = (getattr(target, "__resque_unique__", None) is not None
                 or getattr(target, "__resque_limit__", None) is not None)
        if len(_classes) < 10_000 and getattr(target, "__hash__", None) is not None:
            _classes[target] = found
    return found


# Whether a job class declares a policy, read the first time a worker meets the class
# (``@resque.job(unique=..., limit=...)`` runs where it is defined, before any job).
_classes: dict[Any, bool] = {}


@dataclass(eq=False)
class Admission:
    """What a job's policies decided as it started: it is deferred, or it holds these."""

    deferred: bool = False
    place: limits.Place | None = None
    lock: unique.JobLock | None = None
    lost: set[str] = field(default_factory=set)  # leases found taken by another job

    def shortest_lease(self) -> int | None:
        leases = [lease for lease in (self.place.lease_ms if self.place else None,
                                      self.lock.lease_ms if self.lock else None) if lease]
        return min(leases) if leases else None


DEFERRED = Admission(deferred=True)


class Guard:
    """One worker's policies: admits jobs, releases what they held, renews their leases."""

    def __init__(self, client: redis.Redis, keys: layout.Keys, worker_id: str) -> None:
        self.redis = client
        self.keys = keys
        self.worker_id = worker_id
        self._lock_script = client.register_script(unique.LOCK_SCRIPT)
        self._acquire = client.register_script(limits.ACQUIRE_SCRIPT)
        self._hold = client.register_script(limits.HOLD_SCRIPT)
        self._defer = client.register_script(limits.DEFER_SCRIPT)
        self._held: dict[int, Admission] = {}
        self._mutex = threading.Lock()
        self._wake = threading.Event()
        self._keeper: threading.Thread | None = None
        self._every = 60.0  # seconds between renewals, while the keeper waits

    def admit(self, job: Reserved, payload: dict[str, Any], target: Any) -> Admission | None:
        """Before the job runs: a place under its limit (or ``DEFERRED``: it went to the
        delayed schedule), then its unique lock (an ``until="start"`` lock goes, an
        ``until="end"`` one is held for its lease). None when it holds nothing."""
        admission = Admission()
        limit = limits.declared(target)
        if limit is not None:
            place = self._take_place(job, payload, limit)
            if place is None:
                return DEFERRED
            admission.place = place if place.capped else None
        admission.lock = self._take_lock(job, payload, target)
        if admission.place is None and admission.lock is None:
            return None
        self._keep(admission)
        return admission

    def leave(self, admission: Admission, mode: str) -> None:
        """After the job: its place is given back; its lock goes (or, requeued, lives its
        ``ttl`` again while the job waits in its queue). One round trip each."""
        with self._mutex:
            self._held.pop(id(admission), None)
        try:
            if admission.place is not None:
                self.redis.zrem(admission.place.key, admission.place.member)
            lock = admission.lock
            if lock is not None and mode == ACK_REQUEUE:
                unique.lock_action(self._lock_script, lock, "requeue", lock.ttl_ms)
            elif lock is not None:
                unique.lock_action(self._lock_script, lock, "release")
        except redis.RedisError as exc:
            log.warning("could not give back what job %s held (its leases expire by "
                        "themselves): %s", admission.lock or admission.place, exc)

    # --- limits -------------------------------------------------------------------------

    def _take_place(self, job: Reserved, payload: dict[str, Any],
                    limit: limits.Limit) -> limits.Place | None:
        """A place under the job's limit; None when refused and the job was deferred."""
        name = limit.limit_name(payload["class"], payload["args"])
        member = f"{self.worker_id}:{job.token}"
        running = layout.limit_running(self.keys, name)
        try:
            reply = int(self._acquire(keys=[running, layout.limit_starts(self.keys, name)],
                                      args=[member, *limit.arguments()]))
            if reply == 0:
                return limits.Place(running, member, limits.ms(limit.lease),
                                    limit.concurrency is not None)
            wait = limits.wait_seconds(reply, limit)
            if self._defer_job(job, wait):
                log.debug("job %s deferred %.1f s: limit %s is %s", payload["class"], wait, name,
                         "at its cap" if reply == limits.AT_CAP else "at its rate")
                return None
            log.warning("job %s left this worker while refused by limit %s", payload["class"],
                        name)
            return None
        except redis.RedisError as exc:
            log.warning("job %s runs without its limit %s: %s", payload["class"], name, exc)
            return limits.Place(running, member, limits.ms(limit.lease), False)

    def _defer_job(self, job: Reserved, wait: float) -> bool:
        """Move the job from the in-flight list to the delayed schedule (one round trip)."""
        due = int(time.time() + wait) + 1  # the schedule counts whole seconds: never early
        item = layout.delayed_item_of(job.raw.decode("utf-8"), job.queue)
        member = layout.delayed_member(due)
        keys = [self.keys.inflight(self.worker_id), self.keys.worker(self.worker_id),
                self.keys.delayed(due), self.keys.timestamps(item), self.keys.delayed_schedule]
        return bool(self._defer(keys=keys, args=[job.token, item, member, due]))

    # --- unique locks -------------------------------------------------------------------

    def _take_lock(self, job: Reserved, payload: dict[str, Any],
                   target: Any) -> unique.JobLock | None:
        lock = unique.lock_of(payload, job.raw, job.queue, target, self.keys)
        if lock is None:
            return None
        try:
            if lock.until == "start":
                unique.lock_action(self._lock_script, lock, "start")
                return None
            if not unique.lock_action(self._lock_script, lock, "hold", lock.lease_ms):
                log.warning("job %s: its unique lock %s is another job's (its own expired): it "
                            "runs without it", payload["class"], lock.key)
                return None
        except redis.RedisError as exc:
            log.warning("job %s runs without its unique lock %s: %s", payload["class"],
                        lock.key, exc)
            return None
        return lock

    # --- leases -------------------------------------------------------------------------

    def _keep(self, admission: Admission) -> None:
        lease = admission.shortest_lease()
        with self._mutex:
            self._held[id(admission)] = admission
            if self._keeper is None:
                self._keeper = threading.Thread(target=self._renew_forever,
                                                name="resque-leases", daemon=True)
                self._keeper.start()
            if lease is not None and lease / 3000 < self._every:
                self._wake.set()  # a shorter lease than the others: wait less

    def _period(self) -> float:
        """A third of the shortest lease held (a minute when none is)."""
        with self._mutex:
            leases = [lease for a in self._held.values()
                      if (lease := a.shortest_lease()) is not None]
            self._every = min(leases) / 3000 if leases else 60.0
            return self._every

    def _renew_forever(self) -> None:
        while True:
            if self._wake.wait(self._period()):
                self._wake.clear()
                continue  # the period changed: wait again, for the new one
            try:
                self.renew()
            except redis.RedisError as exc:
                log.warning("could not renew job leases: %s (they expire unless renewed)", exc)

    def renew(self) -> None:
        """Renew every lease held by running jobs: one pipelined round trip."""
        with self._mutex:
            held = list(self._held.values())
        leases: list[tuple[Admission, str]] = []
        with self.redis.pipeline(transaction=False) as pipe:
            for admission in held:
                if admission.place is not None:
                    place = admission.place
                    self._hold(keys=[place.key], args=[place.member, place.lease_ms],
                               client=pipe)
                    leases.append((admission, place.key))
                if admission.lock is not None:
                    unique.lock_action(self._lock_script, admission.lock, "hold",
                                       admission.lock.lease_ms, client=pipe)
                    leases.append((admission, admission.lock.key))
            replies = pipe.execute() if leases else []
        for (admission, key), reply in zip(leases, replies, strict=True):
            if not reply and key not in admission.lost:
                admission.lost.add(key)
                log.warning("%s lapsed while its job ran: another job may hold it now", key)
