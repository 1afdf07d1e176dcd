"""Worker hooks, Ruby's: code an application runs at points of a worker's life.

``before_first_fork()``, ``before_fork(job)``, ``after_fork(job)`` (in the child),
``before_pause(worker)``, ``after_pause(worker)``, ``queue_empty()``, ``shutdown()`` and
``worker_exit()``; ``job`` is the decoded payload. Job hooks (``before_perform`` and the
like) are methods of the job, run by ``resque.jobs``. Nothing here imports redis-py: the fork
server's children run ``after_fork`` too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("resque.worker")

WORKER_HOOKS = (
    "before_first_fork",
    "before_fork",
    "after_fork",
    "before_pause",
    "after_pause",
    "queue_empty",
    "shutdown",
    "worker_exit",
)
Hook = Callable[..., Any]
global_hooks: dict[str, list[Hook]] = {kind: [] for kind in WORKER_HOOKS}


def worker_hook(kind: str) -> Callable[[Hook], Hook]:
    """Register a hook for every worker in this process: ``@worker_hook("before_fork")``
    (importable from ``resque.worker`` too)."""
    if kind not in global_hooks:
        raise ValueError(f"unknown worker hook {kind!r}; expected one of {WORKER_HOOKS}")

    def add(hook: Hook) -> Hook:
        global_hooks[kind].append(hook)
        return hook

    return add


def no_hooks() -> dict[str, list[Hook]]:
    """A worker's own hooks, run after the global ones: none yet."""
    return {kind: [] for kind in WORKER_HOOKS}


def run_hooks(kind: str, extra: list[Hook], *args: Any) -> None:
    """Run worker hooks; a failing hook is logged and never stops the worker."""
    for hook in global_hooks[kind] + extra:
        try:
            hook(*args)
        except Exception:
            log.exception("%s hook %r failed", kind, hook)
