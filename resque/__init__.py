"""Resque for Python: Redis-backed background jobs, wire-compatible with Ruby and Perl Resque.

Start with ``Resque`` (the client), ``@resque.job`` (registering jobs) and ``Worker``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from resque.client import Resque
from resque.errors import (
    BadPayload,
    DirtyExit,
    DontPerform,
    JobForbidden,
    JobNotFound,
    NoQueueError,
    RedisUnavailable,
    ResqueError,
    TermException,
)
from resque.jobs import JobFunction, Registry, job, registry

if TYPE_CHECKING:
    from resque.worker import Worker

__version__ = "0.1.0"

__all__ = [
    "BadPayload",
    "DirtyExit",
    "DontPerform",
    "JobForbidden",
    "JobFunction",
    "JobNotFound",
    "NoQueueError",
    "RedisUnavailable",
    "Registry",
    "Resque",
    "ResqueError",
    "TermException",
    "Worker",
    "__version__",
    "job",
    "registry",
]


def __getattr__(name: str) -> Any:
    # The worker module is imported on first use so that clients stay light.
    if name == "Worker":
        from resque.worker import Worker

        return Worker
    raise AttributeError(f"module 'resque' has no attribute {name!r}")
