"""Memory and lifetime limits: a worker that grew past ``--max-memory`` (its resident set) ends
after the job that crossed it, as one ends after ``--max-jobs``, for a supervisor (``resque
pool``, systemd, Kubernetes) to start a fresh one.

Why: a long-lived in-process or threaded worker keeps whatever its jobs leaked or cached; a
forking worker's jobs end with their child, but its own process can grow too. Ending is a
QUIT: no job starts after the one that crossed the limit, the jobs already running finish
and are acknowledged, and jobs the worker reserved but never started go back to the head of
their queue as it unregisters: none is lost, none runs twice.

Reading the resident set costs a read of ``/proc/self/statm`` (a few microseconds), after each
job, and only when ``--max-memory`` is set.
"""

from __future__ import annotations

import logging
import os
import resource
import sys
from typing import Protocol

log = logging.getLogger("resque.worker")

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
MB = 1024 * 1024


def rss() -> int:
    """This process's resident set, in bytes: ``/proc/self/statm`` where there is one (Linux),
    else the peak (``getrusage``), which can only overstate it."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


class Stopping(Protocol):
    requested: bool
    recycle: bool


def check(stop: Stopping, limit_mb: int, worker: str) -> None:
    """After a job: past ``limit_mb``, ask the worker to end once the jobs it runs have."""
    if stop.requested:
        return
    used = rss()
    if used > limit_mb * MB:
        stop.requested = stop.recycle = True
        log.warning("worker %s uses %d MB, over --max-memory %d MB: it takes no more jobs and "
                    "exits once its running jobs end, to be replaced", worker, used // MB,
                    limit_mb)
