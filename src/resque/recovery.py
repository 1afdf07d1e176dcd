"""Finding dead workers and giving their jobs back: Resque's pruning, made periodic.

Every worker tries this every ``prune_interval`` seconds, under Ruby's own
``pruning_dead_workers_in_progress`` lock, so one pruner runs at a time among Ruby and Python
workers. A worker is dead when its heartbeat is older than ``heartbeat_expiry`` (any host;
workers that never wrote a heartbeat are left alone, as Ruby does), or when it runs on this
host and its pid is not a live process whose command line mentions resque.

What happens to the job a dead worker was running:

* our worker (it has an in-flight list): the job goes back to the head of its queue, once,
  atomically with the unregistration (``lua/recover.lua``);
* a Ruby or Perl worker (no in-flight list): the job is recorded as failed, as Ruby does,
  because we cannot know how far it got;
* our worker already unregistered by a Ruby or Perl pruner: that pruner recorded the running
  job as failed, so only jobs behind it in the in-flight list are requeued.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import redis

from resque import layout, logs, status
from resque.failure import Failure, FailureBackend, RedisFailure, save_quietly
from resque.store import WorkerStore

log = logging.getLogger("resque.worker")

_PROC = Path("/proc")


def process_alive(pid: int) -> bool:
    """Is ``pid`` a live resque process on this host? (Zombies and reused pids are not.)"""
    if sys.platform.startswith("linux") and _PROC.is_dir():
        try:
            cmdline = (_PROC / str(pid) / "cmdline").read_bytes()
        except FileNotFoundError:
            return False
        except OSError:
            return True  # hidden from us (hidepid): assume alive, never prune blindly
        return b"resque" in cmdline
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Pruner:
    """Decides which workers are dead and recovers them; one per worker process."""

    def __init__(
        self,
        store: WorkerStore,
        hostname: str,
        heartbeat_expiry: float,
        lock_ttl: int,
        failure: FailureBackend | None = None,
        requeue_limit: int = 2,
    ) -> None:
        self.store = store
        self.requeue_limit = requeue_limit
        self.failure = failure or RedisFailure()
        store.failure_target = self.failure.redis_target
        self.hostname = hostname
        self.heartbeat_expiry = heartbeat_expiry
        self.lock_ttl = max(1, lock_ttl)
        self._orphans_seen: dict[str, float] = {}
        self._unreadable: set[str] = set()
        self._unrecoverable: set[str] = set()

    def prune(self) -> list[str]:
        """Recover every dead worker, if we get the lock. Returns the ids pruned."""
        if not self.store.acquire_prune_lock(self.lock_ttl):
            return []
        registered, beats, owners, now = self.store.farm()
        pruned = []
        me = self.store.worker_id
        for worker in sorted((registered | owners | set(beats)) - {me}):
            reason = self.why_dead(worker, worker in registered, beats.get(worker), now)
            if reason is None:
                continue
            try:
                self.recover(worker, reason, has_inflight=worker in owners)
            except (redis.ResponseError, UnicodeError) as exc:  # junk in one worker's keys
                if worker not in self._unrecoverable:
                    self._unrecoverable.add(worker)
                    log.error("cannot prune %s: %s (its keys are left as they are)", worker, exc)
                continue
            pruned.append(worker)
        return pruned

    def why_dead(
        self, worker: str, registered: bool, beat: str | None, now: float
    ) -> str | None:
        """A reason to consider the worker dead, or None while it may be alive."""
        host, pid, _ = layout.parse_worker_id(worker)
        if beat is not None:
            seen = layout.parse_time(beat)
            if seen is None:
                # Not a time: proof of nothing. Treated as no heartbeat (a same-host pid
                # check still applies), kept as it is, and reported once.
                if worker not in self._unreadable:
                    self._unreadable.add(worker)
                    log.warning("heartbeat of %s is not a time (%s): left alone", worker,
                                ascii(beat[:100]))
            elif now - seen.timestamp() > self.heartbeat_expiry:
                return "heartbeat"
        if host == self.hostname and pid is not None:
            return None if process_alive(pid) else "gone"
        if not registered and beat is None:
            # An in-flight list whose owner another pruner unregistered. It may still be alive
            # on another host (it re-registers at its next heartbeat), so wait a full expiry.
            first_seen = self._orphans_seen.setdefault(worker, now)
            if now - first_seen > self.heartbeat_expiry:
                return "orphan"
        else:
            self._orphans_seen.pop(worker, None)
        return None

    def recover(self, worker: str, reason: str, has_inflight: bool) -> int:
        """Unregister a dead worker; requeue its in-flight jobs, or fail a foreign worker's
        job. Returns the jobs requeued or failed (-1: its record kept changing)."""
        left = self._fail_repeat_offenders(worker) if has_inflight else []
        for _ in range(3):  # compare-and-act: retry if the record changes under us
            record = self.store.worker_record(worker)
            # Ours are requeued from the in-flight list; only a foreign worker's job is failed.
            failure = None if has_inflight else self._failure_for(worker, record, reason)
            count, _ = self.store.recover(
                worker,
                expected_record=record,
                failure=failure.record if failure else "",
                failure_queue=failure.queue if failure else "",
            )
            if count >= 0:
                self._orphans_seen.pop(worker, None)
                verb = "requeued" if has_inflight else "failed"
                log.info("pruned dead worker %s (%s): %d job(s) %s", worker, reason, count, verb)
                for _, queue, payload in left if count else []:
                    log.info("requeued at the head of its queue: job %s (from %s)",
                             _describe(queue, payload), worker)
                if failure and count:
                    log.info("failed, as Ruby does: job %s (from %s)",
                             _describe(failure.queue, failure.payload), worker)
                    if self.failure.saves:
                        save_quietly(self.failure, failure)
                return count
        log.warning("could not prune %s: its record kept changing", worker)
        return -1

    def _fail_repeat_offenders(self, worker: str) -> list[tuple[bytes, str, bytes]]:
        """A job whose workers keep dying under it (a segfault in-process, an OOM kill) is
        failed instead of requeued once it has been requeued ``requeue_limit`` times.
        Returns the entries left to requeue."""
        entries = self.store.inflight_entries(worker)
        if not self.store.worker_record(worker):
            entries = entries[1:]  # whoever unregistered the worker already failed the first
        if not entries:
            return []
        counts = self.store.count_recoveries([payload for _, _, payload in entries])
        left = []
        for (entry, queue, payload), count in zip(entries, counts, strict=True):
            if count <= self.requeue_limit:
                left.append((entry, queue, payload))
                continue
            try:
                decoded = layout.decode_job(payload, queue)
            except ValueError:
                decoded = layout.unreadable_payload(payload)
            record = layout.failure_record(
                payload=decoded, exception=layout.DIRTY_EXIT,
                error=layout.repeat_offender_message(worker, count - 1),
                backtrace=[], worker=worker, queue=queue, now=time.time(),
            )
            if self.store.fail_entry(worker, entry, record, queue):
                log.warning("job %s killed its worker again: failed, not requeued",
                            _describe(queue, decoded))
                status.after_recovery(self.store.redis, self.store.keys, worker, [], [payload])
                if self.failure.saves:
                    save_quietly(self.failure, Failure(record, queue, decoded))
        return left

    def _failure_for(self, worker: str, record: bytes | None, reason: str) -> Failure | None:
        """The failure Ruby records for a dead worker's job (used when it has no in-flight
        list; ours are requeued instead)."""
        if not record:
            return None
        try:
            working = layout.decode(record)
            payload = working.get("payload")
            queue = working.get("queue") or ""
        except (ValueError, AttributeError):
            payload, queue = {"class": None, "args": [layout.raw_text(record)]}, ""
        class_name = payload.get("class") if isinstance(payload, dict) else None
        if reason == "heartbeat":
            exception = layout.PRUNE_DIRTY_EXIT
            error = layout.prune_message(worker, class_name)
        else:
            exception, error = layout.DIRTY_EXIT, layout.STILL_PROCESSING
        json_record = layout.failure_record(
            payload=payload, exception=exception, error=error, backtrace=[],
            worker=worker, queue=queue, now=time.time(),
        )
        return Failure(json_record, queue, payload)


def _describe(queue: str, payload: Any) -> str:
    """``Class (id 42) from queue``: a payload as bytes (in flight) or decoded."""
    if isinstance(payload, bytes):
        try:
            payload = layout.decode(payload)
        except ValueError:
            payload = None
    return logs.describe_job(logs.job_fields(queue, payload))
