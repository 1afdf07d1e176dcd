"""The interface every way of performing jobs implements, and what all of them share.

A worker hands its executor the batch a step reserved (``run``) and gets back one
acknowledgement per job it ran, in order. Turning a reserved job into a payload and a target,
and a job's outcome into an ``Ack``, is written once here; a mode only says where the job
runs (``perform_job``) and how a stop reaches it (``stop_job``, ``kill_child``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import redis

from resque import current, layout, logs, status
from resque.errors import BadPayload, TermException
from resque.failure import Failure, FailureBackend, records, save_quietly
from resque.hooks import Hook
from resque.policies import guard, memory, retry
from resque.policies import timeout as timeouts
from resque.store import (
    ACK_DEFERRED,
    ACK_DIRTY,
    ACK_FAILED,
    ACK_OK,
    ACK_REQUEUE,
    ACK_SETTLED,
    Ack,
    Reserved,
)

if TYPE_CHECKING:
    from resque.client import Client
    from resque.durations import DurationRecorder
    from resque.outages import Retries
    from resque.policies.retry_store import RetryStore
    from resque.settings import WorkerSettings
    from resque.status import StatusStore
    from resque.store import WorkerStore


_TRACK = layout.JOB_TRACK  # looked up once per job: a global, not an attribute
_RETRY, _TIMEOUT = layout.JOB_RETRY, layout.JOB_TIMEOUT  # one call's policies (payload keys)


@dataclass
class Stop:
    """What a worker was asked to stop: set by its signal handlers, read by its loop and its
    executor."""

    requested: bool = False  # take no more jobs (QUIT, TERM, INT)
    interrupt: bool = False  # stop the running job too (TERM, INT): it goes back to its queue
    recycle: bool = False  # ending to be replaced (--max-memory), not shut down: no hooks


class Host(Protocol):
    """What an executor needs from the worker that owns it."""

    resque: Client
    settings: WorkerSettings
    failure: FailureBackend
    hooks: dict[str, list[Hook]]
    stop: Stop
    store: WorkerStore
    retries: Retries  # Redis calls that wait out an outage
    durations: DurationRecorder | None  # the farm's job-duration histograms, when asked for

    @property
    def id(self) -> str: ...

    def title(self, state: str) -> str: ...

    def set_title(self, state: str) -> None: ...


class Executor:
    """Performs the jobs a worker reserved. ``start`` once registered, ``run`` per batch,
    ``close`` at exit; ``stop_job`` and ``kill_child`` come from signal handlers.

    A mode either performs a batch within ``run`` and returns how each job ended, or
    (``concurrent``) starts the jobs and reports each one's end through ``finished``, in any
    order, waking the worker through ``fileno``.
    """

    batch = 1  # jobs reserved per step (see room)
    mode = ""  # how jobs run, as the start-up banner says it
    concurrent = False  # jobs end in any order and are acknowledged by token
    abandoned = False  # told to end at once with jobs still running (they stay in flight)

    def describe(self) -> str:
        """The mode in words, for the banner."""
        return self.mode

    def __init__(self, host: Host) -> None:
        self.host = host
        self.preload = host.settings.preload  # modules the application named: importable
        self.ok_lines = False  # whether a job that went well gets its line (-v)
        self._guard: guard.Guard | None = None  # policies: made for the first job with one
        self.max_memory = host.settings.max_memory  # policies: MB, checked after each job
        self._guard_lock = threading.Lock()
        self._retry_store: RetryStore | None = None
        self.job_timeout = host.settings.job_timeout  # for jobs that declare none

    def start(self) -> None:
        """Get ready (processes, threads) before the first job."""

    def close(self) -> None:
        """Give back what ``start`` took."""

    def room(self, left: int | None) -> int:
        """How many jobs the next step reserves (0: none now, every thread is busy); ``left``:
        jobs to go before ``max_jobs``."""
        return self.batch if left is None else max(1, min(self.batch, left))

    @property
    def busy(self) -> int:
        """Jobs started and not yet reported by ``finished``."""
        return 0

    def fileno(self) -> int | None:
        """A file descriptor readable when a job has ended (concurrent modes)."""
        return None

    def finished(self) -> list[tuple[Reserved, Ack]]:
        """Concurrent modes: the jobs that ended since the last call."""
        return []

    def running(self) -> list[Reserved]:
        """Concurrent modes: the jobs still running, oldest first."""
        return []

    def shows(self) -> str:
        """Concurrent modes: the worker record for the oldest running job, or ''."""
        return ""

    def ran(self, taken: int, seconds: float) -> None:
        """A batch of ``taken`` jobs took ``seconds``: a mode may size the next one by it."""

    def run(self, batch: Sequence[Reserved]) -> list[Ack]:
        """Perform the jobs in order, one ``Ack`` each. Once a stop is requested no other job
        starts: those stay in flight, and the worker requeues them as it unregisters."""
        self.ok_lines = logs.job_log.isEnabledFor(logging.INFO)  # once a batch, not a job
        acks: list[Ack] = []
        for job in batch:
            if acks and self.host.stop.requested:
                break
            acks.append(self.perform(job))
        return acks

    def perform(self, job: Reserved) -> Ack:
        """One job: decode it, find its code, perform it, log its line. Never raises.

        The hot path of every mode: what it adds to the job itself is kept to a clock read
        and a context variable (lines logged meanwhile name the job).

        A tracked job (``track`` in its payload, so no round trip to find out) gets its
        status recorded: started and finished where it runs (``current.execute``), failed or
        requeued here, from its acknowledgement (``status.settle``), once the stop limit
        has said whether a stopped job goes back to its queue or fails."""
        started = time.monotonic()
        tracked = performed = False
        held: guard.Admission | None = None
        try:
            payload = layout.decode_job(job.raw, job.queue)
        except BadPayload as exc:
            payload = unreadable(job.raw)
            ack = self.failure(ACK_FAILED, job, payload, exc)
        else:
            tracked = _TRACK in payload
            context = logs.current_job.set((job.queue, payload))
            try:
                resque = self.host.resque
                try:
                    target = resque.registry.resolve(payload["class"], resque.allowed_modules,
                                                     self.preload)
                except Exception as exc:  # noqa: BLE001 - not found, forbidden, or its import failed
                    ack = self.failure(ACK_FAILED, job, payload, exc)
                else:
                    refused: Ack | None = None
                    if guard.applies(payload, target):  # policies: a lookup for most jobs
                        held, refused = self.admit(job, payload, target)
                    if refused is not None:
                        ack = refused
                    elif (target in _WITHOUT_POLICIES and self.job_timeout is None
                            and _RETRY not in payload and _TIMEOUT not in payload):
                        ack = self.perform_job(job, payload, target)  # policies: 3 lookups
                        performed = True
                    else:
                        ack = self._perform_with_policies(job, payload, target)
                        performed = True
            finally:
                logs.current_job.reset(context)
        ack = self.settle(job, payload, ack, started, performed=performed, tracked=tracked)
        if held is not None:
            self.guard.leave(held, ack.mode)
        return ack

    def admit(self, job: Reserved, payload: dict[str, Any], target: Any
              ) -> tuple[guard.Admission | None, Ack | None]:
        """Policies (``policies/guard.py``): what the job holds while it runs (its place
        under its limit, its unique lock), and None; or, when it must not run, nothing held
        and its acknowledgement: ``ACK_DEFERRED`` (its limit sent it to the delayed
        schedule), or a failure (a key function of the job's raised)."""
        try:
            held = self.guard.admit(job, payload, target)
        except Exception as exc:  # noqa: BLE001 - the job's own key function raised
            return None, self.failure(ACK_FAILED, job, payload, exc)
        if held is not None and held.deferred:
            return None, Ack(ACK_DEFERRED)
        return held, None

    @property
    def guard(self) -> guard.Guard:
        """The worker's side of unique jobs and limits (``policies/guard.py``)."""
        if self._guard is None:
            with self._guard_lock:
                if self._guard is None:
                    resque = self.host.resque
                    self._guard = guard.Guard(resque.redis, resque.keys, self.host.id)
        return self._guard

    def settle(self, job: Reserved, payload: Any, ack: Ack, started: float, *,
               performed: bool, tracked: bool) -> Ack:
        """After a job: its line, its timing, its status; the acknowledgement to give
        (a job stopped too often is failed rather than requeued)."""
        durations = self.host.durations
        if ack.mode != ACK_OK or self.ok_lines or durations is not None:
            seconds = time.monotonic() - started
            if ack.mode != ACK_OK or self.ok_lines:
                ack = self._report(job, payload, ack, seconds)  # may fail a stopped job
            # A requeued job runs again: it is timed then (one the stop limit failed is done).
            if performed and durations is not None and ack.mode != ACK_REQUEUE:
                durations.observe(job.queue, payload["class"], seconds, ack.mode != ACK_OK)
        if tracked and ack.mode != ACK_SETTLED:  # a retried job's status says retrying
            status.settle(self.host.resque.statuses, payload, ack.mode, ack.failure,
                          self.host.id)
        if self.max_memory is not None:  # policies: --max-memory ends the worker after this job
            memory.check(self.host.stop, self.max_memory, self.host.id)
        return ack

    def _report(self, job: Reserved, payload: Any, ack: Ack, seconds: float) -> Ack:
        """The job's line; a job a shutdown stopped is requeued, or failed if it was
        stopped too often."""
        if ack.mode == ACK_SETTLED:  # its line said when its retry is due, as it was queued
            return ack
        if ack.mode == ACK_REQUEUE:
            ack = self._requeue_or_fail(job, payload, ack)
        logs.job_done(job.queue, payload, seconds, OUTCOMES[ack.mode],
                      error_line(ack) if ack.failure else "")
        return ack

    def _requeue_or_fail(self, job: Reserved, payload: dict[str, Any], ack: Ack) -> Ack:
        """A job stopped by a shutdown goes back to its queue, unless shutdowns stopped it
        ``stop_requeue_limit`` times already: a job that hangs would otherwise come back
        first at every restart, for ever, and the jobs behind it never run."""
        limit = self.host.settings.stop_requeue_limit
        try:
            stopped = self.host.store.times_stopped(job.raw)
            if stopped < limit:
                return ack
            self.host.store.forget_stops(job.raw)  # a retry of the failure starts afresh
        except redis.RedisError:
            return ack  # Redis is away: requeue; the step waits for it anyway
        error = TermException(layout.stopped_too_often_message(stopped + 1, limit))
        return self.failure(ACK_FAILED, job, payload, error)

    def perform_job(self, job: Reserved, payload: dict[str, Any], target: Any) -> Ack:
        """Perform a decoded job wherever this mode runs jobs, and say how it ended."""
        raise NotImplementedError

    def _perform_with_policies(self, job: Reserved, payload: dict[str, Any],
                               target: Any) -> Ack:
        """``perform_job`` for a job with a retry policy (counted, and retried if it fails:
        ``policies/retry_store.py``) or a timeout (the mode's ``perform_job`` reads it from
        ``timeouts.current()`` and ends the job at its deadline)."""
        policy = retry.policy_of(target, payload)
        limit = timeouts.of(target, self.job_timeout, payload)
        if policy is None and limit is None:
            if len(_WITHOUT_POLICIES) < 10_000 and _RETRY not in payload and \
                    _TIMEOUT not in payload:  # a job's own policies are fixed once registered
                _WITHOUT_POLICIES.add(target)
            return self.perform_job(job, payload, target)
        token = timeouts.begin(limit) if limit is not None else None
        try:
            if policy is None:
                return self.perform_limited(job, payload, target)
            from resque.policies import retry_store  # only workers that meet such a job load it

            return retry_store.perform(self, job, payload, target, policy)
        finally:
            if token is not None:
                timeouts.end(token)

    def perform_limited(self, job: Reserved, payload: dict[str, Any], target: Any) -> Ack:
        """``perform_job`` under this job's timeout, if it has one (``timeouts.current``)."""
        limit = timeouts.current()
        if limit is None:
            return self.perform_job(job, payload, target)
        return self.perform_job_by(job, payload, target, limit)

    def perform_job_by(self, job: Reserved, payload: dict[str, Any], target: Any,
                       limit: float) -> Ack:
        """``perform_job``, ending the job ``limit`` seconds on: each mode says how."""
        raise NotImplementedError

    def retry_store(self) -> RetryStore:
        if self._retry_store is None:
            from resque.policies.retry_store import RetryStore

            resque = self.host.resque
            self._retry_store = RetryStore(resque.redis, resque.keys, self.host.id)
        return self._retry_store

    def stopping(self, again: bool) -> str:
        """What a stop (TERM) does in this mode, for the log; ``again``: a second one."""
        if again:
            return "stopping the running job now; it goes back to the head of its queue"
        settings = self.host.settings
        return (f"stopping: no new jobs; the running job gets {settings.term_timeout:g} s "
                f"to end{', and TERM at once' if settings.term_child else ''}, then is "
                "stopped and goes back to the head of its queue")

    def stop_job(self, force: bool) -> None:
        """Stop the running job: after ``term_timeout`` (sooner with ``term_child``), or now."""

    def kill_child(self) -> None:
        """Kill the running job's child process, in a mode that has one (USR1)."""

    # --- shared by the modes ----------------------------------------------------------------

    def perform_here(self, job: Reserved, payload: dict[str, Any], target: Any) -> Ack:
        """Perform the job in this process and turn its outcome into an ``Ack``."""
        try:
            current.execute(target, payload, job.queue, self.host,
                            self.host.resque.statuses if _TRACK in payload else None)
            return Ack(ACK_OK)
        except BaseException as exc:  # noqa: BLE001 - a job may raise anything, SystemExit too
            return self.ended_by(job, payload, exc)

    def ended_by(self, job: Reserved, payload: dict[str, Any], exc: BaseException) -> Ack:
        """The acknowledgement of a job its code ended by raising ``exc``."""
        # Stopped by a shutdown: it runs again elsewhere (threads are never stopped so: a job
        # of theirs that raises TermException itself is a failure like any other).
        if self.host.stop.interrupt and isinstance(exc, TermException) and not self.concurrent:
            return Ack(ACK_REQUEUE)
        return self.failure(ACK_FAILED, job, payload, exc)

    def statuses(self, payload: dict[str, Any]) -> StatusStore | None:
        """Where a tracked job's status goes; None for the others."""
        return self.host.resque.statuses if _TRACK in payload else None

    def show_processing(self, job: Reserved, payload: dict[str, Any]) -> None:
        self.host.set_title(layout.title_processing(job.queue, int(time.time()),
                                                    payload["class"]))

    def failure(self, mode: str, job: Reserved, payload: Any, exc: BaseException) -> Ack:
        """The acknowledgement of a failed job, carrying its failure record; a backend that
        saves elsewhere (an error tracker) gets the live exception now, unless the job's
        retry policy plans another attempt (and records only the last)."""
        record = records.from_exception(payload, exc, self.host.id, job.queue, job.raw)
        retrying = retry.ruling(exc, payload) == retry.RETRY  # kept on the attempt
        if self.host.failure.saves and retry.reported(retrying):
            save_quietly(self.host.failure, Failure(record, job.queue, payload, exc))
        return Ack(mode, record, job.queue)


# Job targets seen to have no policy (retry, timeout): the per-job check is one set lookup.
_WITHOUT_POLICIES: set[Any] = set()

OUTCOMES = {ACK_OK: "ok", ACK_FAILED: "failed", ACK_DIRTY: "failed", ACK_REQUEUE: "requeued",
            ACK_DEFERRED: "deferred", ACK_SETTLED: "retrying"}


def error_line(ack: Ack) -> str:
    """``Exception: first line of its message``, read back from a failure record."""
    try:
        record = layout.decode(ack.failure)
        return f"{record.get('exception')}: {logs.first_line(str(record.get('error')))}"
    except (ValueError, AttributeError):
        return "(no failure record)"


def unreadable(raw: bytes) -> Any:
    """The payload to record for an item that is not a job: a JSON object as it is, anything
    else kept whole as the argument of ``Resque::BadPayload``."""
    try:
        value = layout.decode(raw)
        if isinstance(value, dict):
            return value
    except ValueError:
        pass
    return layout.unreadable_payload(raw)
