"""``concurrency=N``: up to N jobs at once on threads of the worker process.

Each thread takes the next job as soon as it is free: the worker reserves as many jobs as
there are free threads, and acknowledges each job when it ends (several in one step when they
end together), so a slow job never holds the others back. ``async def`` jobs share one event
loop on a thread of its own, so N of them can wait on I/O at once; a plain one is awaited there
directly and takes a place but no thread (``aio``). Ruby sees one worker with
one pid, working on its oldest running job.

A job on a thread cannot be interrupted. A stop (TERM) takes no more jobs and gives the
running ones ``term_timeout`` to finish; then (or at a second TERM) the process ends at once
and the jobs still running stay in the in-flight list, for a pruner (or ``resque recover``) to
requeue once this process is gone. QUIT waits for them as long as they take.

A job with a timeout (``policies/timeout.py``): an ``async def`` one is cancelled at its
deadline; a plain one runs on a thread of its own while its place waits for it, and at the
deadline it is recorded as timed out and abandoned there; the worker then takes no more jobs
and exits once the others end, so that a fresh process takes over and the abandoned thread
ends with this one.
"""

from __future__ import annotations

import contextvars
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from resque import layout, logs, performing
from resque.execution import aio
from resque.execution.base import Executor, Host
from resque.policies import timeout as timeouts
from resque.store import ACK_FAILED, Ack, Reserved
from resque.tasks import AsyncTask

log = logging.getLogger("resque.worker")

if TYPE_CHECKING:
    import asyncio


class ThreadExecutor(Executor):
    """Runs each job on the first free thread of ``concurrency``."""

    mode = "threads"
    concurrent = True

    def describe(self) -> str:
        return f"{self.size} jobs at once on threads"

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.size = host.settings.concurrency
        self.abandoned = False  # stopped for good: the running jobs are left in flight
        self._running: dict[str, tuple[Reserved, float]] = {}  # token -> job, reserved at
        self._tasks: queue.SimpleQueue[Reserved | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[tuple[Reserved, Ack]] = queue.SimpleQueue()
        self._pipe: tuple[int, int] | None = None
        self._poked = False  # the pipe holds an unread wake-up
        self._awaiting: set[asyncio.Future[Ack]] = set()  # the loop's tasks, held until they end
        self._threads: list[threading.Thread] = []
        self._shown = ("", "")  # token, worker record: the oldest job's, computed once
        self._loop: Any = None
        self._loop_thread: threading.Thread | None = None
        self._default_awaiter = performing.awaiter

    def start(self) -> None:
        import asyncio

        loop = self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=loop.run_forever, name="resque-loop",
                                             daemon=True)
        self._loop_thread.start()

        def on_loop(awaitable: Any) -> Any:
            coroutine = performing.as_coroutine(awaitable)
            limit = timeouts.current()  # policies: cancelled at its deadline
            if limit is not None:
                coroutine = timeouts.within(coroutine, limit)
            return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

        self._default_awaiter = performing.awaiter
        performing.awaiter = on_loop
        self._pipe = os.pipe()
        os.set_blocking(self._pipe[0], False)
        # Daemon threads: a job that hangs must not keep the process alive once it must end.
        self._threads = [threading.Thread(target=self._serve, name=f"resque-job-{i}",
                                          daemon=True) for i in range(self.size)]
        for thread in self._threads:
            thread.start()

    def _serve(self) -> None:
        while (job := self._tasks.get()) is not None:
            self._ended(job, self.perform(job))

    # --- what the worker asks -----------------------------------------------------------

    def room(self, left: int | None) -> int:
        free = self.size - len(self._running)
        return free if left is None else max(0, min(free, left - len(self._running)))

    @property
    def busy(self) -> int:
        return len(self._running)

    def fileno(self) -> int | None:
        return self._pipe[0] if self._pipe else None

    def run(self, batch: Sequence[Reserved]) -> list[Ack]:
        """Start each job on a free thread, or on the loop if it can be awaited there
        (``aio.direct``); their acknowledgements come from ``finished``."""
        now = time.time()
        self.ok_lines = logs.job_log.isEnabledFor(logging.INFO)
        awaited = []
        for job in batch:
            self._running[job.token] = (job, now)
            plan = aio.direct(self, job) if self._loop is not None else None
            if plan is None:
                self._tasks.put(job)
            else:
                awaited.append(plan)
        if awaited:
            aio.start(self, self._loop, awaited, self._ended, self._awaiting)
        return []

    def _ended(self, job: Reserved, ack: Ack) -> None:
        """A job ended, on a thread or on the loop: hand it to ``finished``."""
        self._done.put((job, ack))
        pipe = self._pipe
        if pipe is not None and not self._poked:  # one wake-up until the worker reads them
            self._poked = True
            try:
                os.write(pipe[1], b".")  # wakes the worker's wait
            except OSError:
                pass  # closed: the worker ended without waiting for this job

    def finished(self) -> list[tuple[Reserved, Ack]]:
        """The jobs that ended since the last call, with how they ended."""
        self._poked = False  # before draining: a job that ends after this pokes again
        if self._pipe is not None:
            try:
                os.read(self._pipe[0], 4096)
            except BlockingIOError:
                pass
        ended = []
        while not self._done.empty():
            job, ack = self._done.get()
            self._running.pop(job.token, None)
            ended.append((job, ack))
        return ended

    def running(self) -> list[Reserved]:
        """The jobs still running, oldest first (as the in-flight list has them)."""
        return [job for job, _ in self._running.values()]

    def shows(self) -> str:
        """The worker record for the oldest running job ('' when none runs), as the step
        script writes it for a job it reserves."""
        for job, since in self._running.values():
            if self._shown[0] != job.token:
                try:
                    readable = isinstance(layout.decode(job.raw), dict)
                    payload = job.raw.decode() if readable else layout.UNREADABLE_PAYLOAD
                except ValueError:
                    payload = layout.UNREADABLE_PAYLOAD
                self._shown = (job.token, layout.working_on(job.queue, payload, since))
            return self._shown[1]
        return ""

    def perform_job(self, job: Reserved, payload: dict[str, Any], target: Any) -> Ack:
        self.show_processing(job, payload)
        return self.perform_here(job, payload, target)

    def perform_job_by(self, job: Reserved, payload: dict[str, Any], target: Any,
                       limit: float) -> Ack:
        """An ``async def`` job: cancelled on the loop at its deadline (the awaiter reads
        ``timeouts.current``). A plain job: on a thread of its own that this one waits for
        until the deadline; then the job is recorded as timed out and left to run on,
        abandoned, and the worker winds down (``_recycle``)."""
        if isinstance(target, AsyncTask):
            return self.perform_job(job, payload, target)
        self.show_processing(job, payload)
        lock, outcome, abandoned = threading.Lock(), [], [False]
        context = contextvars.copy_context()  # its attempt, its log fields

        def run() -> None:
            ack = context.run(self.perform_here, job, payload, target)
            with lock:
                if not abandoned[0]:
                    outcome.append(ack)

        runner = threading.Thread(target=run, name=f"resque-job-{job.token}", daemon=True)
        runner.start()
        runner.join(limit)
        with lock:
            if outcome:
                return outcome[0]
            abandoned[0] = True
        self._recycle(job, limit)
        error = timeouts.expired(limit)
        performing.run_failure_hooks(target, error, payload["args"])
        return self.failure(ACK_FAILED, job, payload, error)

    def _recycle(self, job: Reserved, limit: float) -> None:
        """A thread cannot be stopped: take no more jobs, and exit once the others end."""
        if not self.host.stop.requested:
            log.warning("a job ran past its timeout of %g s on a thread, which cannot be "
                        "stopped: it is recorded as timed out and left running; this worker "
                        "takes no more jobs and exits once the others end, so that a fresh "
                        "process replaces it (%s)", limit, job.token)
        self.host.stop.requested = True

    # --- stopping -----------------------------------------------------------------------

    def stopping(self, again: bool) -> str:
        if again:
            return "ending now; jobs still running stay in flight for recovery"
        return (f"stopping: no new jobs; running jobs get {self.host.settings.term_timeout:g} "
                "s to finish, then the worker ends and leaves them in flight for recovery "
                "(a second TERM: at once)")

    def stop_job(self, force: bool) -> None:
        """Threads cannot be interrupted: a first stop gives them ``term_timeout``; then,
        or at a second stop, the worker ends and leaves them in flight."""
        if force:
            self.abandoned = True
        elif self._running:
            signal.setitimer(signal.ITIMER_REAL, max(self.host.settings.term_timeout, 0.001))

    def close(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for _ in self._threads:
            self._tasks.put(None)
        if not self.abandoned:  # idle by now, unless the worker stopped on an error
            for thread in self._threads:
                thread.join(self.host.settings.term_timeout)
        self._threads = []
        if self._pipe is not None:
            for fd in self._pipe:
                os.close(fd)
            self._pipe = None
        performing.awaiter = self._default_awaiter
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            # Closed once stopped (its selector and self-pipe, or an in-process worker leaks
            # them); left open if jobs abandoned on it keep it running.
            if self._loop_thread is not None and not self.abandoned:
                self._loop_thread.join(self.host.settings.term_timeout)
                if not self._loop_thread.is_alive():
                    self._loop.close()
            self._loop, self._loop_thread = None, None
