"""The interface every way of performing jobs implements, and what all of them share.

A worker hands its executor the batch a step reserved (``run``) and gets back one
acknowledgement per job it ran, in order. Turning a reserved job into a payload and a target,
and a job's outcome into an ``Ack``, is written once here; a mode only says where the job
runs (``perform_job``) and how a stop reaches it (``stop_job``, ``kill_child``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from resque import current, layout, status
from resque.errors import BadPayload, TermException
from resque.failure import Failure, FailureBackend, records, save_quietly
from resque.hooks import Hook
from resque.store import ACK_FAILED, ACK_OK, ACK_REQUEUE, Ack, Reserved

if TYPE_CHECKING:
    from resque.client import Client
    from resque.durations import DurationRecorder
    from resque.settings import WorkerSettings
    from resque.status import StatusStore


_TRACK = layout.JOB_TRACK  # looked up once per job: a global, not an attribute


@dataclass
class Stop:
    """What a worker was asked to stop: set by its signal handlers, read by its loop and its
    executor."""

    requested: bool = False  # take no more jobs (QUIT, TERM, INT)
    interrupt: bool = False  # stop the running job too (TERM, INT): it goes back to its queue


class Host(Protocol):
    """What an executor needs from the worker that owns it."""

    resque: Client
    settings: WorkerSettings
    failure: FailureBackend
    hooks: dict[str, list[Hook]]
    stop: Stop
    durations: DurationRecorder | None  # the farm's job-duration histograms, when asked for

    @property
    def id(self) -> str: ...

    def title(self, state: str) -> str: ...

    def set_title(self, state: str) -> None: ...


class Executor:
    """Performs the jobs a worker reserved. ``start`` once registered, ``run`` per batch,
    ``close`` at exit; ``stop_job`` and ``kill_child`` come from signal handlers."""

    batch = 1  # jobs reserved per step (see batch_size)

    def __init__(self, host: Host) -> None:
        self.host = host

    def start(self) -> None:
        """Get ready (processes, threads) before the first job."""

    def close(self) -> None:
        """Give back what ``start`` took."""

    def batch_size(self, left: int | None) -> int:
        """How many jobs the next step reserves; ``left``: jobs to go before ``max_jobs``."""
        return self.batch if left is None else max(1, min(self.batch, left))

    def ran(self, taken: int, seconds: float) -> None:
        """A batch of ``taken`` jobs took ``seconds``: a mode may size the next one by it."""

    def run(self, batch: Sequence[Reserved]) -> list[Ack]:
        """Perform the jobs in order, one ``Ack`` each. Once a stop is requested no other job
        starts: those stay in flight, and the worker requeues them as it unregisters."""
        acks: list[Ack] = []
        for job in batch:
            if acks and self.host.stop.requested:
                break
            acks.append(self.perform(job))
        return acks

    def perform(self, job: Reserved) -> Ack:
        """One job: decode it, find its code, perform it. Never raises.

        A tracked job (``track`` in its payload, so no round trip to find out) gets its
        status recorded: started and finished where it runs (``current.execute``), failed or
        requeued here, from its acknowledgement (``status.settle``)."""
        try:
            payload = layout.decode_job(job.raw, job.queue)
        except BadPayload as exc:
            return self.failure(ACK_FAILED, job, unreadable(job.raw), exc)
        resque = self.host.resque
        try:
            target = resque.registry.resolve(payload["class"], resque.allowed_modules)
        except Exception as exc:  # noqa: BLE001 - not found, forbidden, or an import failed
            ack = self.failure(ACK_FAILED, job, payload, exc)
        else:
            durations = self.host.durations
            if durations is None:
                ack = self.perform_job(job, payload, target)
            else:
                started = time.perf_counter()
                ack = self.perform_job(job, payload, target)
                if ack.mode != ACK_REQUEUE:  # a requeued job runs again: time it then
                    durations.observe(job.queue, payload["class"],
                                      time.perf_counter() - started, ack.mode != ACK_OK)
        if _TRACK in payload:
            status.settle(resque.statuses, payload, ack.mode, ack.failure, self.host.id)
        return ack

    def perform_job(self, job: Reserved, payload: dict[str, Any], target: Any) -> Ack:
        """Perform a decoded job wherever this mode runs jobs, and say how it ended."""
        raise NotImplementedError

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
            if self.host.stop.interrupt and isinstance(exc, TermException):
                return Ack(ACK_REQUEUE)  # stopped by a shutdown: it runs again elsewhere
            return self.failure(ACK_FAILED, job, payload, exc)

    def statuses(self, payload: dict[str, Any]) -> StatusStore | None:
        """Where a tracked job's status goes; None for the others."""
        return self.host.resque.statuses if _TRACK in payload else None

    def show_processing(self, job: Reserved, payload: dict[str, Any]) -> None:
        self.host.set_title(layout.title_processing(job.queue, int(time.time()),
                                                    payload["class"]))

    def failure(self, mode: str, job: Reserved, payload: Any, exc: BaseException) -> Ack:
        """The acknowledgement of a failed job, carrying its failure record; a backend that
        saves elsewhere (an error tracker) gets the live exception now."""
        record = records.from_exception(payload, exc, self.host.id, job.queue, job.raw)
        if self.host.failure.saves:
            save_quietly(self.host.failure, Failure(record, job.queue, payload, exc))
        return Ack(mode, record, job.queue)


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
