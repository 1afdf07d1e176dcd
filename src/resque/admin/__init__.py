"""Administration: the operations behind the ``resque`` admin verbs and the dashboard.

``Admin`` (``operations.py``) looks after queues, workers, stats, pausing and pruning, and
(``inflight.py``) the jobs our workers hold in flight, and their recovery by hand;
``Admin.failures`` (``resque.failure.operations``) lists, retries and removes failures,
addressing each entry by index and content so that concurrent changes never make it act on
the wrong one.
``cli.py`` holds the click verbs, imported only when one of them runs.
"""

from __future__ import annotations

from resque.admin.inflight import InflightJob, Orphan, RecoverResult
from resque.admin.operations import Admin, PruneResult, QueuedItem, WorkerInfo
from resque.failure.operations import BulkResult, Failures, Filter, Page
from resque.failure.records import (
    FailureEntry,
    FailureId,
    FailureNotFound,
    NotAFailureList,
    NotRequeueable,
)

__all__ = [
    "Admin",
    "BulkResult",
    "FailureEntry",
    "FailureId",
    "FailureNotFound",
    "Failures",
    "Filter",
    "InflightJob",
    "NotAFailureList",
    "NotRequeueable",
    "Orphan",
    "Page",
    "PruneResult",
    "QueuedItem",
    "RecoverResult",
    "WorkerInfo",
]
