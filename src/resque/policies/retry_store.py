"""The Redis side of retries, for the worker: count an attempt, queue the next, clean up.

What a job with a retry policy costs, in round trips: one before each attempt
(``lua/retry_begin.lua``: it reads the count, and writes nothing for a first attempt); on
success after a retry, one more (the keys are deleted); on a failure that retries, one
(``lua/retry.lua``: the job leaves the in-flight list, is counted, and its retry is queued, in
one atomic step); on the last failure, one more when an earlier attempt left keys. A job
without a policy pays nothing: ``Executor.perform`` asks ``retry.policy_of`` (an attribute
lookup) and goes on.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import redis

from resque import layout, logs, scripts
from resque.policies import retry
from resque.store import ACK_FAILED, ACK_OK, ACK_REQUEUE, ACK_SETTLED, Ack, Reserved

if TYPE_CHECKING:
    from resque.execution.base import Executor

log = logging.getLogger("resque.retry")
T = TypeVar("T")

BEGIN_SCRIPT = scripts.source("retry_begin")
RETRY_SCRIPT = scripts.compose("push_lib", "retry")


class RetryStore:
    """One worker's retry writes; scripts registered once (no round trip until used)."""

    def __init__(self, client: redis.Redis, keys: layout.Keys, worker_id: str) -> None:
        self.redis = client
        self.keys = keys
        self.worker_id = worker_id
        self._begin = client.register_script(BEGIN_SCRIPT)
        self._retry = client.register_script(RETRY_SCRIPT)

    def begin(self, key: str) -> int:
        """The 0-based number of the attempt starting now (0 on a first attempt, or when the
        count cannot be read). One round trip."""
        found = int(self._begin(keys=[key, layout.retries_due_key(self.keys)],
                                args=[layout.RETRY_KEY_GRACE]))
        if found < 0:
            log.warning("%s does not hold an attempt count: counted as a first attempt", key)
        return max(found, 0)

    def clean(self, key: str) -> None:
        """The job ended for good: its count, last failure and index entry go. One round
        trip (MULTI/EXEC), which may be sent again."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key, layout.retry_failure_key(self.keys, key))
            pipe.zrem(layout.retries_due_key(self.keys), key)
            pipe.execute()

    def uncount(self, key: str) -> None:
        """A shutdown stopped the attempt before it ended: it does not count."""
        try:
            self.redis.decr(key)
        except redis.RedisError as exc:
            log.warning("could not uncount a stopped attempt of %s (%s)", key, exc)

    def schedule(self, job: Reserved, key: str, attempt: int, due: float | None, ack: Ack,
                 every_record: tuple[str, str, str] | None) -> bool:
        """Queue the retry of a failed attempt (``due``: epoch seconds, None for now), with
        the in-flight entry settled in the same script. False if the entry was gone.
        ``every_record``: ``(failure list, failed_queues member, record)`` to also write."""
        keys, queue = self.keys, job.queue
        payload = job.raw.decode("utf-8", "surrogateescape")
        timestamp = math.ceil(due) if due is not None else int(time.time())
        item = layout.delayed_item_of(payload, queue) if due is not None else ""
        failure_list, member, record = every_record or (keys.failed, "", "")
        done = self._retry(
            keys=[keys.inflight(self.worker_id), keys.worker(self.worker_id),
                  keys.stat("processed"), keys.worker_stat("processed", self.worker_id),
                  keys.stat("failed"), keys.worker_stat("failed", self.worker_id),
                  key, layout.retry_failure_key(keys, key), layout.retries_due_key(keys),
                  keys.delayed_schedule, keys.delayed(timestamp),
                  keys.timestamps(item),
                  keys.queues, keys.queue(queue), keys.wake_channel(queue),
                  failure_list, keys.failed_queues],
            args=[job.token, attempt - 1, layout.RETRY_KEY_GRACE + max(0, timestamp -
                  int(time.time())), ack.failure, _failure_ttl(due), timestamp, item,
                  layout.delayed_member(timestamp), queue, payload,
                  "1" if ack.mode == ACK_FAILED else "0", record, member],
        )
        return bool(done)


def _failure_ttl(due: float | None) -> int:
    """How long ``failure-<retry key>`` is kept: twice the wait (MultipleWithRetrySuppression's
    choice), and at least a minute, so that an immediate retry shows its cause too."""
    wait = 0.0 if due is None else max(0.0, due - time.time())
    return max(60, math.ceil(2 * wait))


# --- the worker's side: one call around a job that has a policy -------------------------------


def perform(executor: Executor, job: Reserved, payload: dict[str, Any], target: Any,
            policy: retry.Retry) -> Ack:
    """Perform an attempt of a job that has a retry policy, and settle it: count it first,
    then clean up after a success, queue the retry of a failure that may retry, or let the
    last failure through (its record says which attempt it was)."""
    store, wait_out = executor.retry_store(), _outages(executor)
    key = layout.retry_key(store.keys, payload["class"], payload["args"])
    attempt = retry.Attempt(policy, wait_out("counting an attempt", lambda: store.begin(key)) + 1)
    token = retry.begin(attempt)
    try:
        ack = executor.perform_limited(job, payload, target)
    finally:
        retry.end(token)
    if ack.mode == ACK_OK:
        if attempt.number > 1:
            wait_out("deleting a retry's keys", lambda: store.clean(key))
    elif ack.mode == ACK_REQUEUE:
        if attempt.number > 1:
            store.uncount(key)
    elif attempt.verdict == retry.RETRY and ack.mode != ACK_SETTLED:  # ruled where it failed
        return _retry(executor, store, job, payload, key, attempt, ack)
    elif ack.mode != ACK_SETTLED:
        if attempt.number > 1:
            wait_out("deleting a retry's keys", lambda: store.clean(key))
        if ack.failure:
            ack = Ack(ack.mode, layout.with_attempt(ack.failure, attempt.number,
                                                    policy.max_attempts), ack.failure_queue)
    return ack


def _outages(executor: Executor) -> Callable[[str, Callable[[], T]], T]:
    """Run a Redis call of a retry through the worker's outage handling: while Redis is
    away it waits (one log line), as the step does; a refusal (a key of the wrong type)
    raises."""
    host = executor.host

    def wait_out(task: str, call: Callable[[], T]) -> T:
        return host.retries.until_done(task, lambda _maybe_ran: call(),
                                       host.settings.term_timeout)

    return wait_out


def _retry(executor: Executor, store: RetryStore, job: Reserved, payload: dict[str, Any],
           key: str, attempt: retry.Attempt, ack: Ack) -> Ack:
    """Queue the next attempt; the acknowledgement says the job is settled. Should Redis
    refuse, the job fails as if it had no attempts left: its record is written, not lost."""
    policy = attempt.policy
    wait = policy.delay(attempt.number)
    due = time.time() + wait if wait > 0 else None
    record = layout.with_attempt(ack.failure, attempt.number, policy.max_attempts) \
        if ack.failure else ""
    every = None
    if policy.record_attempts and record:
        target = executor.host.store.failure_target(store.keys, ack.failure_queue or job.queue)
        if target is not None:
            every = (target.key, target.failed_queues_member, record)
    try:  # sent again after an outage: a copy that ran already finds no entry, writes nothing
        queued = _outages(executor)("queueing a retry", lambda: store.schedule(
            job, key, attempt.number, due, Ack(ack.mode, record, ack.failure_queue), every))
    except redis.RedisError as exc:
        log.error("could not queue the retry of job %s (%s): it fails now, with its record",
                  payload.get("class"), exc)
        return Ack(ack.mode, record, ack.failure_queue)
    if not queued:
        log.warning("job %s was no longer in flight when its retry was to be queued (a "
                    "pruner requeued it): no retry queued", payload.get("class"))
    _line(job, payload, attempt, record, wait)
    _mark_retrying(executor, payload, record, due)
    return Ack(ACK_SETTLED, record, ack.failure_queue)


def _line(job: Reserved, payload: dict[str, Any], attempt: retry.Attempt, record: str,
          wait: float) -> None:
    """The job's line, at WARNING as a failure's: which attempt failed, why, and when the
    next one is due."""
    fields = logs.job_fields(job.queue, payload)
    line = {**fields, "outcome": "retrying", "attempt": attempt.number,
            "max_attempts": attempt.policy.max_attempts, "retry_in": wait}
    found = _record(record)
    error = (f"{found.get('exception')}: {logs.first_line(str(found.get('error')))}" if found
             else "(no failure record)")
    logs.job_log.warning("job %s: attempt %d of %d failed: %s; next attempt %s",
                         logs.describe_job(fields), attempt.number,
                         attempt.policy.max_attempts, error,
                         f"in {wait:g} s" if wait > 0 else "now", extra={"fields": line})


def _mark_retrying(executor: Executor, payload: dict[str, Any], record: str,
                   due: float | None) -> None:
    """A tracked job's status: ``retrying``, with the error and when it is due."""
    job_id, ttl = payload.get(layout.JOB_ID), payload.get(layout.JOB_TRACK)
    if not isinstance(job_id, str) or type(ttl) is not int:
        return
    from resque.status import error_of  # tracked jobs only

    try:
        executor.host.resque.statuses.retrying(job_id, ttl, error_of(record) if record else
                                               "failed", None if due is None else math.ceil(due))
    except redis.RedisError as exc:
        log.warning("could not record job %s as retrying: %s", job_id, exc)


# --- reading: the retries waiting for their next attempt (CLI, dashboard) --------------------


@dataclass(frozen=True)
class PendingRetry:
    """A retry waiting for its next attempt, from ``retries:due`` and resque-retry's keys."""

    key: str
    class_name: str
    next_attempt: int  # the attempt it will be, from 1
    due: int  # epoch seconds
    queue: str | None  # from the failure record kept for it; None when it has expired
    args: list[Any] | None
    error: str | None  # ``Exception: message`` of the attempt that failed last

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "class": self.class_name, "next_attempt": self.next_attempt,
                "due": self.due, "queue": self.queue, "args": self.args, "error": self.error}


def pending(client: redis.Redis, keys: layout.Keys, start: int = 0,
            count: int = 50) -> tuple[int, list[PendingRetry]]:
    """``(how many are pending, one page of them)``, soonest first. Two round trips
    (``ZCARD`` + ``ZRANGE``, then one ``MGET`` of their counts and failure records); a retry
    whose count is gone (removed by hand) is left out of the page."""
    index = layout.retries_due_key(keys)
    with client.pipeline(transaction=False) as pipe:
        pipe.zcard(index)
        pipe.zrange(index, start, start + count - 1, withscores=True)
        total, entries = pipe.execute()
    names = [layout.text(member) for member, _ in entries]
    values: list[Any] = client.mget([*names, *(layout.retry_failure_key(keys, name)
                                                for name in names)]) if names else []
    found = []
    for i, (name, (_, score)) in enumerate(zip(names, entries, strict=True)):
        count_value, record = values[i], _record(values[len(names) + i])
        if count_value is None or not layout.text(count_value).lstrip("-").isdigit():
            continue
        payload = record.get("payload")
        args = payload.get("args") if isinstance(payload, dict) else None
        error = (f"{record.get('exception')}: {record.get('error')}" if record else None)
        found.append(PendingRetry(
            key=name, class_name=layout.retry_class_of(keys, name),
            next_attempt=int(layout.text(count_value)) + 2, due=int(score),
            queue=record.get("queue") if isinstance(record.get("queue"), str) else None,
            args=args if isinstance(args, list) else None, error=error))
    return int(total), found


def _record(raw: Any) -> dict[str, Any]:
    try:
        value = layout.decode(raw) if raw is not None else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
