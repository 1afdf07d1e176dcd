"""Administration: the operations behind the ``resque`` admin verbs and the dashboard.

``Admin`` (``operations.py``) looks after queues, workers, stats, pausing and pruning;
``Admin.failures`` (``failures.py``) lists, retries and removes failures, addressing each
entry by index and content so that concurrent changes never make it act on the wrong one.
``cli.py`` holds the click verbs, imported only when one of them runs.
"""

from __future__ import annotations

from resque.admin.failures import (
    BulkResult,
    FailureEntry,
    FailureId,
    FailureNotFound,
    Failures,
    Filter,
    NotAFailureList,
    NotRequeueable,
    Page,
)
from resque.admin.operations import Admin, PruneResult, QueuedItem, WorkerInfo

__all__ = [
    "Admin",
    "BulkResult",
    "FailureEntry",
    "FailureId",
    "FailureNotFound",
    "Failures",
    "Filter",
    "NotAFailureList",
    "NotRequeueable",
    "Page",
    "PruneResult",
    "QueuedItem",
    "WorkerInfo",
]
