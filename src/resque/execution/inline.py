"""Jobs performed in the worker process itself (``fork=False``): no fork to pay for, no
isolation from the job.

A stop reaches the job as ``TermException``, raised by the signal handler in the middle of it:
at once with ``term_child`` or on a second TERM, otherwise when ``term_timeout`` runs out
(``SIGALRM``). The job then goes back to its queue. A job with a timeout gets the same alarm
at its deadline, which raises ``JobTimeout`` in it instead (``policies/timeout.py``).
Batches: while jobs are quick, one step reserves several (up to ``max_batch``), so the round
trip is shared; a slow batch shrinks the next one, so queue priority is looked at again at
least every ``BATCH_SECONDS``.
"""

from __future__ import annotations

import signal
import time
from typing import Any

from resque.errors import TermException
from resque.execution.base import Executor, Host
from resque.policies import timeout as timeouts
from resque.store import Ack, Reserved

BATCH_SECONDS = 0.05  # a batch is halved when it takes longer than this


class InlineExecutor(Executor):
    """Performs each job here, in the worker's main thread."""

    mode = "in-process"

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.max_batch = max(1, host.settings.max_batch)
        self._in_job = False
        self._deadline: tuple[float, float] | None = None  # (monotonic deadline, limit)

    def perform_job(self, job: Reserved, payload: dict[str, Any], target: Any) -> Ack:
        self.show_processing(job, payload)
        self._in_job = True  # from here on a stop may raise TermException into the job
        try:
            return self.perform_here(job, payload, target)
        finally:
            self._in_job = False
            signal.setitimer(signal.ITIMER_REAL, 0)

    def perform_job_by(self, job: Reserved, payload: dict[str, Any], target: Any,
                       limit: float) -> Ack:
        """The alarm at its deadline raises ``JobTimeout`` in the job (``stop_job``)."""
        self._deadline = (time.monotonic() + limit, limit)
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            return self.perform_job(job, payload, target)
        finally:
            self._deadline = None
            signal.setitimer(signal.ITIMER_REAL, 0)

    def stop_job(self, force: bool) -> None:
        deadline = self._deadline
        if not self._in_job:
            if deadline is not None and force:  # its alarm came before the job began
                signal.setitimer(signal.ITIMER_REAL, 0.001)
            return
        settings = self.host.settings
        if deadline is not None and time.monotonic() >= deadline[0] - 0.001:
            self._deadline = None
            signal.setitimer(signal.ITIMER_REAL, 0)
            raise timeouts.expired(deadline[1])
        if force or settings.term_child:
            signal.setitimer(signal.ITIMER_REAL, 0)
            raise TermException("SIGTERM")
        grace = max(settings.term_timeout, 0.001)
        if deadline is not None:  # the job's own deadline may come first
            grace = max(min(grace, deadline[0] - time.monotonic()), 0.001)
        signal.setitimer(signal.ITIMER_REAL, grace)

    def ran(self, taken: int, seconds: float) -> None:
        """Double the batch while whole batches run in under ``BATCH_SECONDS``; halve it when
        one takes longer, so a slow queue goes back to one job per step."""
        if seconds > BATCH_SECONDS:
            self.batch = max(1, self.batch // 2)
        elif taken == self.batch and seconds < BATCH_SECONDS / 2:
            self.batch = min(self.max_batch, self.batch * 2)
