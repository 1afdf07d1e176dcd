"""The failure record of Ruby resque 3.0 (``failure/redis.rb``) and the lists that hold it.

Keys in Ruby's order and ``failed_at`` in its format, since resque-web's /failed page fails
on anything else; the synthetic exception names and messages Ruby writes for jobs whose
worker died; the redis_multi_queue list names and ``retried_at`` as each backend writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from resque.layout.codec import encode, raw_text
from resque.layout.times import failed_at, retried_at_multi_queue


def unreadable_payload(raw: str | bytes | None) -> dict[str, Any]:
    """The payload recorded in a failure for an item that is not a usable job: its bytes
    kept whole, as the one argument of ``Resque::BadPayload``."""
    return {"class": "Resque::BadPayload", "args": [raw_text(raw)]}


def failure_record(
    *,
    payload: Any,
    exception: str,
    error: str,
    backtrace: Sequence[str],
    worker: str,
    queue: str,
    now: float | None = None,
) -> str:
    """A ``failed`` list element, keys in Ruby's order (``failure/redis.rb``)."""
    return encode(
        {
            "failed_at": failed_at(now),
            "payload": payload,
            "exception": exception,
            "error": error,
            "backtrace": list(backtrace),
            "worker": worker,
            "queue": queue,
        }
    )


# Synthetic failure classes and messages, as Ruby writes them (§2.4 of the contract).
DIRTY_EXIT = "Resque::DirtyExit"
PRUNE_DIRTY_EXIT = "Resque::PruneDeadWorkerDirtyExit"
TERM_EXCEPTION = "Resque::TermException"
STILL_PROCESSING = "Job still being processed"


def child_signal_message(pid: int, signal_name: str, signum: int) -> str:
    return f"Child process received unhandled signal pid {pid} {signal_name} (signal {signum})"


def repeat_offender_message(worker: str, requeued: int) -> str:
    return (
        f"Worker {worker} died while processing this job, which had already been requeued "
        f"{requeued} times after other workers died under it; not requeued again"
    )


def stopped_too_often_message(times: int, limit: int) -> str:
    return (
        f"Stopped by a worker shutdown {times} times without finishing within the grace "
        f"period (requeued {times - 1} times, the limit, RESQUE_STOP_REQUEUE_LIMIT={limit}); "
        "failed instead of requeued, so that it no longer blocks its queue at every restart"
    )


def prune_message(worker: str, class_name: str | None) -> str:
    job = class_name or "<Unknown Job>"
    return f"Worker {worker} did not gracefully exit while processing {job}"


# --- Failure administration (additions for resque.failure and resque.admin) -------------------

FAILED_LIST = "failed"  # the redis backend's list, also the first list every reader shows
FAILED_QUEUE_SUFFIX = "_failed"  # redis_multi_queue: the list of job queue q is ``q_failed``


def failure_list_of_queue(queue: str) -> str:
    """The redis_multi_queue list name (no namespace) of a job queue: ``<q>_failed``."""
    return queue + FAILED_QUEUE_SUFFIX


def queue_of_failure_list(name: str) -> str | None:
    """Ruby's ``Failure.job_queue_name``: the job queue of ``<q>_failed``; None for ``failed``."""
    if name != FAILED_LIST and name.endswith(FAILED_QUEUE_SUFFIX):
        return name[: -len(FAILED_QUEUE_SUFFIX)]
    return None


def retried_at_for(list_name: str, now: float | None = None) -> str:
    """``retried_at`` as Ruby's backend owning that list writes it (zone only for ``failed``)."""
    if list_name == FAILED_LIST:
        return failed_at(now)
    return retried_at_multi_queue(now)


def with_retried_at(raw: bytes, record: dict[str, Any], when: str) -> bytes:
    """The failure record marked as retried, as Ruby's ``requeue`` rewrites it in place.

    Ruby re-encodes the parsed hash with ``retried_at`` set: a new key goes last and an
    existing one keeps its position. When the key is new we splice it in before the closing
    brace, so every other byte (Perl's key order, its 64-bit integers) stays exactly as written.
    ``record`` is ``raw`` decoded (a non-empty JSON object).
    """
    if "retried_at" not in record:
        body = raw.rstrip()
        if body.endswith(b"}") and record:
            return body[:-1] + b',"retried_at":' + encode(when).encode("utf-8") + b"}"
    updated = dict(record)
    updated["retried_at"] = when
    return encode(updated).encode("utf-8", "surrogateescape")
