"""Failures: where a failed job is recorded, what a record holds, and what people do with them.

``backends`` decides where a worker records a failure (Ruby's ``redis`` and
``redis_multi_queue``, ``log``, ``none``, several at once, or your own). ``records`` builds a
record from an exception and reads records that Ruby, Perl or we wrote. ``operations`` lists,
retries, removes and clears them for the admin verbs and the dashboard.
"""

from __future__ import annotations

from resque.failure.backends import (
    Failure,
    FailureBackend,
    LogFailure,
    MultipleFailure,
    RedisFailure,
    RedisMultiQueueFailure,
    RedisTarget,
    backend_from_name,
    save_quietly,
)

__all__ = [
    "Failure",
    "FailureBackend",
    "LogFailure",
    "MultipleFailure",
    "RedisFailure",
    "RedisMultiQueueFailure",
    "RedisTarget",
    "backend_from_name",
    "save_quietly",
]
