"""Status, progress and results of the jobs that asked for them (``status=True``).

A tracked job carries ``"track": <seconds>`` in its payload (``layout.encode_job``), so a
worker knows from the payload alone, with no round trip, whether to write anything: an
untracked job costs nothing. A tracked job's record lives in ``status:<id>`` in
resque-status's layout (``layout.status_fields``), so resque-status's resque-web tab lists
it; the statuses are resque-status's words, named here as this project names them:

===============  =============  ====================================================
``JobStatus``    in Redis       when
===============  =============  ====================================================
``QUEUED``       ``queued``     enqueued (or delayed, with ``due``), or requeued
``STARTED``      ``working``    a worker started it; ``at()`` reports progress
``FINISHED``     ``completed``  it returned; ``result`` holds the value as JSON
``FAILED``       ``failed``     it raised, or its process died; ``error`` says how
``CANCELLED``    ``killed``     ``cancel()`` removed it from its queue
``RETRYING``     ``retrying``   failed, and another attempt is planned (``retrying``)
===============  =============  ====================================================

Every write is one script (``lua/status_lib.lua``) that merges fields into the record, sets
its expiry and publishes the new status on the job's channel, which ``wait`` listens to: a
waiter blocks on pub/sub, it never polls. A record is kept ``result_ttl`` seconds after the
job ends and ``PENDING_TTL`` (or ``result_ttl`` if longer) while it waits or runs.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis

from resque import layout, scripts

log = logging.getLogger("resque.status")

STATUS_SCRIPT = scripts.compose("status_lib", "status")
CANCEL_SCRIPT = scripts.compose("status_lib", "cancel")

MAX_TTL = 30 * 24 * 3600  # no record outlives its last write by more: the index horizon
PENDING_TTL = 7 * 24 * 3600  # a record's life while its job waits or runs, renewed per write
INDEX_LIMIT = 100_000  # ids the _statuses index keeps (its oldest are dropped first)


class JobStatus(str, enum.Enum):
    """Where a tracked job is; the values are what resque-status writes."""

    QUEUED = layout.STATUS_QUEUED
    STARTED = layout.STATUS_WORKING
    FINISHED = layout.STATUS_COMPLETED
    FAILED = layout.STATUS_FAILED
    CANCELLED = layout.STATUS_KILLED
    RETRYING = layout.STATUS_RETRYING

    @property
    def ended(self) -> bool:
        """Finished, failed or cancelled: nothing will change it any more."""
        return self in (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELLED)


def check_ttl(seconds: int) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 < seconds <= MAX_TTL:
        raise ValueError(f"result_ttl must be whole seconds within 1..{MAX_TTL} (30 days), "
                         f"not {seconds!r}")
    return seconds


@dataclass(frozen=True)
class StatusRecord:
    """A tracked job's record as read from Redis; times are epoch seconds."""

    id: str
    status: JobStatus | None  # None: a status this version does not know
    name: str | None
    queue: str | None
    message: str | None
    num: float | None
    total: float | None
    enqueued_at: float | None
    started_at: float | None
    ended_at: float | None
    due: int | None
    worker: str | None
    error: str | None
    payload: str | None
    result_json: str | None
    updated_at: int | None

    @property
    def result(self) -> Any:
        """The return value (JSON-decoded); None before the job finished."""
        return None if self.result_json is None else layout.decode(self.result_json)

    @property
    def progress(self) -> float | None:
        """``num / total`` of the last ``at()``, from 0 to 1; None before any."""
        if self.num is None or not self.total:
            return None
        return float(self.num) / float(self.total)

    @classmethod
    def from_json(cls, job_id: str, record: dict[str, Any]) -> StatusRecord:
        def get(name: str, kind: type | tuple[type, ...]) -> Any:
            value = record.get(name)
            return value if isinstance(value, kind) and not isinstance(value, bool) else None

        try:
            status: JobStatus | None = JobStatus(record.get("status"))
        except ValueError:
            status = None
        number = (int, float)
        return cls(
            id=job_id, status=status, name=get("name", str), queue=get("queue", str),
            message=get("message", str), num=get("num", number), total=get("total", number),
            enqueued_at=get("enqueued_at", number), started_at=get("started_at", number),
            ended_at=get("ended_at", number), due=get("due", int), worker=get("worker", str),
            error=get("error", str), payload=get("payload", str),
            result_json=get("result", str), updated_at=get("time", int),
        )


class StatusStore:
    """Reads and writes status records under one namespace; every write is one round trip."""

    def __init__(self, client: redis.Redis, keys: layout.Keys) -> None:
        self.redis = client
        self.keys = keys
        self._write = client.register_script(STATUS_SCRIPT)
        self._cancel = client.register_script(CANCEL_SCRIPT)

    # --- writing ------------------------------------------------------------------------

    def _argv(self, job_id: str, ttl: int, fields: str, condition: str = "") -> list[Any]:
        return write_argv(self.keys, job_id, ttl, fields, condition)

    def write(self, job_id: str, ttl: int, condition: str = "",
              client: Any = None, **fields: Any) -> bool:
        """Merge ``fields`` into the record (if its status is ``condition``, when given);
        ``client``: a pipeline to add the write to instead of sending it now."""
        argv = self._argv(job_id, ttl, layout.status_fields(**fields), condition)
        keys = [self.keys.status(job_id), self.keys.statuses]
        return bool(self._write(keys=keys, args=argv, client=client))

    def queued(self, job_id: str, ttl: int, *, name: str, queue: str, payload: str,
               due: int | None = None, client: Any = None) -> None:
        """The record of a job just enqueued (or delayed until ``due``)."""
        keys, argv = self.queued_arguments(job_id, ttl, name=name, queue=queue, payload=payload,
                                           due=due)
        self._write(keys=keys, args=argv, client=client)

    def queued_arguments(self, job_id: str, ttl: int, *, name: str, queue: str, payload: str,
                         due: int | None = None) -> tuple[list[str], list[Any]]:
        """The KEYS and ARGV of ``lua/status_lib.lua`` for ``queued``, for a script that
        composes it (``lua/unique_push.lua``)."""
        fields = layout.status_fields(**queued_fields(name, queue, payload, due))
        argv = self._argv(job_id, pending_ttl(ttl), fields)
        return [self.keys.status(job_id), self.keys.statuses], argv

    def started(self, job_id: str, ttl: int, worker: str) -> None:
        self.write(job_id, pending_ttl(ttl), status=layout.STATUS_WORKING, worker=worker,
                   started_at=time.time(), message="")

    def progress(self, job_id: str, ttl: int, num: float, total: float, message: str) -> None:
        self.write(job_id, pending_ttl(ttl), num=num, total=total, message=message)

    def finished(self, job_id: str, ttl: int, result: Any) -> None:
        """The job returned ``result``, kept as JSON; a value JSON cannot carry is dropped
        (the record says so) rather than failing a job that did its work."""
        fields: dict[str, Any] = {"status": layout.STATUS_COMPLETED, "ended_at": time.time()}
        try:
            fields["result"] = layout.encode(result)
        except (TypeError, ValueError) as exc:
            fields["message"] = f"the return value was not kept: it is not JSON ({exc})"
            log.warning("job %s returned a value JSON cannot carry (%s): not kept", job_id, exc)
        self.write(job_id, ttl, **fields)

    def failed(self, job_id: str, ttl: int, error: str) -> None:
        self.write(job_id, ttl, status=layout.STATUS_FAILED, error=error, ended_at=time.time())

    def requeued(self, job_id: str, ttl: int, why: str) -> None:
        """Back in its queue (its worker stopped or died): queued again."""
        self.write(job_id, pending_ttl(ttl), status=layout.STATUS_QUEUED, message=why)

    def retrying(self, job_id: str, ttl: int, error: str, due: int | None = None) -> None:
        """The hook for retries: this attempt failed and another is planned (at ``due``)."""
        fields: dict[str, Any] = {"status": layout.STATUS_RETRYING, "error": error}
        if due is not None:
            fields["due"] = due
        self.write(job_id, pending_ttl(ttl), **fields)

    def cancel_queued(self, job_id: str, ttl: int, queue: str, payload: str) -> bool:
        """Remove the job from its queue by its exact bytes and mark it cancelled, together;
        False (nothing written) if it is no longer in the queue."""
        fields = layout.status_fields(status=layout.STATUS_KILLED, ended_at=time.time(),
                                      message="cancelled while queued")
        return bool(self._cancel(
            keys=[self.keys.status(job_id), self.keys.statuses, self.keys.queue(queue)],
            args=[*self._argv(job_id, ttl, fields), payload]))

    def cancelled(self, job_id: str, ttl: int) -> bool:
        """Mark a job cancelled that was removed otherwise (a delayed job), if still queued."""
        return self.write(job_id, ttl, layout.STATUS_QUEUED, status=layout.STATUS_KILLED,
                          ended_at=time.time(), message="cancelled before it was due")

    # --- reading ------------------------------------------------------------------------

    def get(self, job_id: str) -> StatusRecord | None:
        """The job's record, or None (never tracked, or expired). One round trip."""
        record = layout.decode_status(self.redis.get(self.keys.status(job_id)))
        return None if record is None else StatusRecord.from_json(job_id, record)

    def recent(self, start: int = 0, count: int = 50) -> tuple[int, list[StatusRecord]]:
        """``(ids in the index, records)``: the most recently written first, the expired
        left out. Two round trips: ``ZCARD`` + ``ZREVRANGE``, then one ``MGET``."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self.keys.statuses)
            pipe.zrevrange(self.keys.statuses, start, start + count - 1)
            total, found = pipe.execute()
        job_ids = [layout.text(job_id) for job_id in found]
        raws: list[Any] = self.redis.mget([self.keys.status(i) for i in job_ids]) if job_ids else []
        records = [(job_id, layout.decode_status(raw)) for job_id, raw in zip(job_ids, raws,
                                                                                strict=True)]
        return int(total), [StatusRecord.from_json(job_id, record)
                            for job_id, record in records if record is not None]

    def wait(self, job_id: str, timeout: float | None) -> StatusRecord | None:
        """The record once the job has ended, or the last one seen when ``timeout`` runs out.

        Subscribes to the job's channel before reading the record, so an end published
        between the two is not missed; then blocks on the subscription (no polling)."""
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self.keys.status_channel(job_id))
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                record = self.get(job_id)
                if record is None or (record.status is not None and record.status.ended):
                    return record
                if not _next_message(pubsub, deadline):
                    return record
        finally:
            pubsub.close()


def _next_message(pubsub: Any, deadline: float | None) -> bool:
    """Block until a message on the subscription (True) or the deadline (False). The
    subscription's own confirmation, and wake-ups without a message, are waited through."""
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return False
        # get_message(timeout=None) would not block at all: wait a minute at a time.
        if pubsub.get_message(timeout=60.0 if left is None else min(left, 60.0)) is not None:
            return True


def write_argv(keys: layout.Keys, job_id: str, ttl: int, fields: str,
               condition: str = "") -> list[Any]:
    """ARGV of ``lua/status.lua`` (KEYS: the record, the index) for one write: the sync
    store's and the asyncio client's (``resque.aio``)."""
    now = time.time()
    return [job_id, now, ttl, fields, keys.status_channel(job_id), condition,
            int(now) - MAX_TTL, INDEX_LIMIT]


def queued_fields(name: str, queue: str, payload: str, due: int | None) -> dict[str, Any]:
    """The fields of a record whose job was just enqueued (or delayed until ``due``)."""
    fields: dict[str, Any] = {"status": layout.STATUS_QUEUED, "name": name, "queue": queue,
                              "payload": payload, "enqueued_at": time.time()}
    if due is not None:
        fields["due"] = due
    return fields


def pending_ttl(ttl: int) -> int:
    return max(ttl, PENDING_TTL)


def error_of(failure_record: str) -> str:
    """``Exception: message`` of a failure record (as the failed list holds it)."""
    try:
        record = layout.decode(failure_record)
        return f"{record.get('exception')}: {record.get('error')}"
    except (ValueError, AttributeError):
        return "failed"


def settle(store: StatusStore, payload: dict[str, Any], mode: str, failure: str,
           worker: str) -> None:
    """After a worker acknowledged a tracked job: record what only the worker knows (it
    failed, its process died, it goes back to its queue). A finished job's record was
    written where it ran, with its result."""
    job_id, ttl = payload.get(layout.JOB_ID), payload.get(layout.JOB_TRACK)
    if not isinstance(job_id, str) or type(ttl) is not int:
        return
    try:
        if mode == "requeue":
            store.requeued(job_id, ttl, f"requeued: {worker} stopped before it finished")
        elif failure:
            store.failed(job_id, ttl, error_of(failure))
    except redis.RedisError as exc:  # the job's own outcome is recorded by the step anyway
        log.warning("could not record the status of job %s: %s", job_id, exc)


def after_recovery(client: redis.Redis, keys: layout.Keys, worker: str,
                   requeued: list[bytes], failed: list[bytes]) -> None:
    """A dead worker's jobs were requeued (or failed by whoever pruned it): say so in the
    records of the tracked ones. Reads nothing when none of them is tracked."""
    tracked = [(raw, mode) for payloads, mode in ((requeued, "requeue"), (failed, "failed"))
               for raw in payloads if b'"track":' in raw]  # cheap: most jobs are untracked
    if not tracked:
        return
    store = StatusStore(client, keys)
    died = layout.encode({"exception": layout.DIRTY_EXIT,
                          "error": f"worker {worker} died while performing it"})
    for raw, mode in tracked:
        try:
            payload = layout.decode(raw)
        except ValueError:
            continue
        if isinstance(payload, dict):
            settle(store, payload, mode, "" if mode == "requeue" else died,
                   f"worker {worker}")
