"""Resque for Python: Redis-backed background jobs, wire-compatible with Ruby and Perl Resque.

Start with ``Resque`` (the client: enqueue, delayed jobs, schedules), ``@resque.job``
(registering a function as a typed ``Task``) and ``Worker``. Every enqueue returns a ``Job``
handle; a job reads itself with ``current_job()``. ``Client`` is the core client that
``Resque`` extends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from resque.current import CurrentJob, current_job
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
from resque.jobs import Registry, job, registry
from resque.policies.retry import Retry
from resque.tasks import AsyncTask, Task, default_client, set_default_client

if TYPE_CHECKING:
    from resque.client import Client
    from resque.facade import Resque
    from resque.handles import Job, JobCancelled, JobFailed, NotTracked
    from resque.policies.limits import Limit
    from resque.policies.unique import Unique
    from resque.status import JobStatus, StatusRecord
    from resque.worker import Worker

__version__ = "0.1.0"

__all__ = [
    "AsyncTask",
    "BadPayload",
    "Client",
    "CurrentJob",
    "DirtyExit",
    "DontPerform",
    "Job",
    "JobCancelled",
    "JobFailed",
    "JobForbidden",
    "JobNotFound",
    "JobStatus",
    "Limit",
    "NoQueueError",
    "NotTracked",
    "RedisUnavailable",
    "Registry",
    "Resque",
    "ResqueError",
    "Retry",
    "StatusRecord",
    "Task",
    "TermException",
    "Unique",
    "Worker",
    "__version__",
    "current_job",
    "default_client",
    "job",
    "registry",
    "set_default_client",
]


# Imported on first use, so that a module that only defines jobs (``import resque`` and
# ``@resque.job``) does not load redis-py, and clients never load the worker.
_LAZY = {
    "Client": "resque.client", "Resque": "resque.facade", "Worker": "resque.worker",
    "Job": "resque.handles", "JobFailed": "resque.handles", "JobCancelled": "resque.handles",
    "NotTracked": "resque.handles", "JobStatus": "resque.status",
    "StatusRecord": "resque.status",
    "Unique": "resque.policies.unique", "Limit": "resque.policies.limits",  # resque.policies
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'resque' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
