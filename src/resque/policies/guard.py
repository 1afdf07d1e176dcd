"""The worker's side of unique jobs and limits: before a job runs, take what its policies ask
for; after it ends, give it back; meanwhile, keep its leases alive.

``applies`` is all a job without policies costs: a dict lookup and an attribute read, no round
trip. A job with a policy costs a round trip before it runs and one after it ends; a running
job's leases (an ``until="end"`` lock) are renewed by one thread per worker, a third of the
shortest lease apart, in one pipelined round trip for all of them. If the worker dies, the
renewals stop and the leases expire: nothing stays held.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import redis

from resque import layout
from resque.policies import unique
from resque.store import ACK_REQUEUE, Reserved
from resque.tasks import TaskBase

log = logging.getLogger("resque.policies")

_UNIQUE = layout.JOB_UNIQUE


def applies(payload: dict[str, Any], target: Any) -> bool:
    """Whether a job has a policy to act on: the per-job check, kept to a lookup or two."""
    if _UNIQUE in payload:
        return True
    if isinstance(target, TaskBase):
        return target.unique is not None
    return getattr(target, "__resque_unique__", None) is not None


@dataclass(eq=False)
class Admission:
    """What a running job holds: its unique lock's lease."""

    lock: unique.JobLock | None = None
    lost: set[str] = field(default_factory=set)  # leases found taken by another job


class Guard:
    """One worker's policies: admits jobs, releases what they held, renews their leases."""

    def __init__(self, client: redis.Redis, keys: layout.Keys) -> None:
        self.redis = client
        self.keys = keys
        self._lock_script = client.register_script(unique.LOCK_SCRIPT)
        self._held: dict[int, Admission] = {}
        self._mutex = threading.Lock()
        self._wake = threading.Event()
        self._keeper: threading.Thread | None = None
        self._every = 60.0  # seconds between renewals, while the keeper waits

    def admit(self, job: Reserved, payload: dict[str, Any], target: Any) -> Admission | None:
        """Before the job runs: an ``until="start"`` lock goes, an ``until="end"`` lock is
        held for its lease. One round trip. Redis away: the job runs, logged."""
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
        admission = Admission(lock)
        self._keep(admission)
        return admission

    def leave(self, admission: Admission, mode: str) -> None:
        """After the job: its lock goes (or, requeued, lives its ``ttl`` again while it waits
        in its queue). One round trip."""
        with self._mutex:
            self._held.pop(id(admission), None)
        lock = admission.lock
        if lock is None:
            return
        try:
            if mode == ACK_REQUEUE:
                unique.lock_action(self._lock_script, lock, "requeue", lock.ttl_ms)
            else:
                unique.lock_action(self._lock_script, lock, "release")
        except redis.RedisError as exc:
            log.warning("could not release unique lock %s (it expires by itself): %s",
                        lock.key, exc)

    # --- leases -------------------------------------------------------------------------

    def _keep(self, admission: Admission) -> None:
        with self._mutex:
            self._held[id(admission)] = admission
            if self._keeper is None:
                self._keeper = threading.Thread(target=self._renew_forever,
                                                name="resque-leases", daemon=True)
                self._keeper.start()
            if admission.lock is not None and admission.lock.lease_ms / 3000 < self._every:
                self._wake.set()  # a shorter lease than the others: wait less

    def _period(self) -> float:
        """A third of the shortest lease held (a minute when none is)."""
        with self._mutex:
            leases = [a.lock.lease_ms for a in self._held.values() if a.lock is not None]
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
            held = [a for a in self._held.values() if a.lock is not None]
        if not held:
            return
        with self.redis.pipeline(transaction=False) as pipe:
            for admission in held:
                assert admission.lock is not None
                unique.lock_action(self._lock_script, admission.lock, "hold",
                                   admission.lock.lease_ms, client=pipe)
            replies = pipe.execute()
        for admission, reply in zip(held, replies, strict=True):
            assert admission.lock is not None
            if not reply and admission.lock.key not in admission.lost:
                admission.lost.add(admission.lock.key)
                log.warning("unique lock %s was taken by another job while this one ran",
                            admission.lock.key)
