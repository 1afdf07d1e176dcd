"""Resque for Python: Redis-backed background jobs, wire-compatible with Ruby and Perl Resque.

Start with ``Resque`` (the client: enqueue, delayed jobs, schedules), ``@resque.job``
(registering jobs) and ``Worker``. ``Client`` is the core client that ``Resque`` extends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    from resque.client import Client
    from resque.facade import Resque
    from resque.worker import Worker

__version__ = "0.1.0"

__all__ = [
    "BadPayload",
    "Client",
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


# Imported on first use, so that a module that only defines jobs (``import resque`` and
# ``@resque.job``) does not load redis-py, and clients never load the worker.
_LAZY = {"Client": "resque.client", "Resque": "resque.facade", "Worker": "resque.worker"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'resque' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
