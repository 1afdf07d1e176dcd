"""Fake mode: enqueues recorded in memory, no Redis; ``drain()`` performs them here.

``FakeResque`` takes every enqueue a ``Resque`` takes (tasks' ``enqueue``, ``enqueue_in``,
``enqueue_at``, ``to``, ``options``; the client's ``enqueue``, ``enqueue_to``...) and checks it
exactly as the real client does: the job must be one a worker can find by name, its arguments
must survive JSON, and its enqueue hooks run. Then, instead of writing to Redis, it records the
call, so a test can assert what was enqueued (``assert_enqueued``). ``drain()`` performs the
recorded jobs as a worker would (through JSON, resolved by name, with their perform hooks;
failures recorded, not raised), including jobs they enqueue, until none is due on ``clock``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from resque import arguments, current, jobs, layout, performing
from resque.client import Prepared, prepare
from resque.handles import Job, JobCancelled, JobFailed
from resque.policies.unique import Unique
from resque.status import JobStatus, StatusRecord
from resque.tasks import Delay, When, seconds
from resque.testing.clock import Clock

FAKE_WORKER = "resque.testing:fake"  # the worker name a job sees in fake mode


@dataclasses.dataclass
class Enqueued:
    """One recorded enqueue: what a worker would receive (args through JSON)."""

    name: str
    queue: str
    args: list[Any]
    kwargs: dict[str, Any]
    payload: str
    due: float | None  # epoch seconds on the fake's clock; None: at once
    handle: FakeJob
    status: JobStatus = JobStatus.QUEUED
    result: Any = None
    error: BaseException | None = None
    enqueued_at: float = 0.0  # on the fake's clock (a unique window counts from it)

    def __repr__(self) -> str:
        call = ", ".join([*map(repr, self.args), *(f"{k}={v!r}" for k, v in self.kwargs.items())])
        due = f" due={self.due}" if self.due is not None else ""
        return f"<{self.name}({call}) on {self.queue}{due}: {self.status.name.lower()}>"


class FakeJob(Job[Any]):
    """The handle fake mode returns: status and result come from the fake, after ``drain``."""

    __slots__ = ("fake", "entry")

    def __init__(self, fake: FakeResque, prepared: Prepared, due: float | None) -> None:
        super().__init__(cast(Any, fake), prepared.job_id, prepared.queue, prepared.name,
                         prepared.payload, prepared.track is not None,
                         None if due is None else int(due))
        self.fake = fake
        self.entry: Enqueued | None = None

    def info(self) -> StatusRecord | None:
        self._check_tracked()
        entry = self.entry
        assert entry is not None
        return StatusRecord.from_json(str(self.id), {
            "status": entry.status.value, "name": entry.name, "queue": entry.queue,
            "payload": entry.payload, "error": _error(entry.error),
            "result": None if entry.status is not JobStatus.FINISHED else layout.encode(
                entry.result)})

    def result(self, timeout: float | None = None) -> Any:
        """The value once ``drain()`` performed the job; TimeoutError before (no waiting)."""
        self._check_tracked()
        entry = self.entry
        assert entry is not None
        if entry.status is JobStatus.FINISHED:
            return entry.result
        if entry.status is JobStatus.FAILED:
            raise JobFailed(f"job {self.id} ({self.class_name}) failed: {_error(entry.error)}")
        if entry.status is JobStatus.CANCELLED:
            raise JobCancelled(f"job {self.id} ({self.class_name}) was cancelled")
        raise TimeoutError(f"job {self.id} has not run: fake mode runs jobs in drain()")

    def cancel(self) -> bool:
        entry = self.entry
        if entry is None or entry.status is not JobStatus.QUEUED:
            return False
        entry.status = JobStatus.CANCELLED
        return True


class FakeResque:
    """Records enqueues instead of writing them to Redis; see the module's docstring."""

    def __init__(self, registry: jobs.Registry | None = None, *, clock: Clock | None = None,
                 job_ids: bool = True, result_ttl: int = 86400,
                 allowed_modules: Iterable[str] = ()) -> None:
        self.registry = registry or jobs.registry
        self.clock = clock or Clock()
        self.job_ids = job_ids
        self.result_ttl = result_ttl
        self.allowed_modules = list(allowed_modules)
        self.enqueued: list[Enqueued] = []  # every enqueue, in order, performed or not
        self.failures: list[Enqueued] = []  # jobs that raised in drain(), in order

    def __repr__(self) -> str:
        return f"<FakeResque {len(self.enqueued)} enqueued>"

    # --- enqueueing, as resque.Resque ------------------------------------------------------

    def enqueue_call(self, job: Any, args: Sequence[Any], kwargs: Mapping[str, Any], *,
                     queue: str | None = None, status: bool | None = None,
                     result_ttl: int | None = None, at: When | None = None,
                     delay: Delay | None = None, unique: Unique | None = None,
                     policies: Mapping[str, Any] | None = None) -> Job[Any] | None:
        prepared = prepare(self.registry, job, args, kwargs, queue, self.job_ids, status,
                           result_ttl, self.result_ttl, unique, policies)
        due = _due(self.clock, at, delay)
        hook = "before_schedule" if due is not None else "before_enqueue"
        for before in performing.hooks(prepared.target, hook):
            if before(*prepared.args, **prepared.kwargs) is False:
                return None
        handle = FakeJob(self, prepared, due)
        holder = self._unique_holder(prepared) if due is None else None
        if holder is not None:  # as the unique lock would refuse it: nothing recorded
            handle.id, handle.payload, handle.entry = holder.handle.id, holder.payload, holder
            handle.duplicate = True
            return handle
        positional, keywords = layout.split_kwargs(layout.decode_job(prepared.payload,
                                                                     prepared.queue)["args"])
        handle.entry = Enqueued(prepared.name, prepared.queue, positional, keywords,
                                prepared.payload, due, handle, enqueued_at=self.clock())
        self.enqueued.append(handle.entry)
        after = "after_schedule" if due is not None else "after_enqueue"
        for hook_call in performing.hooks(prepared.target, after):
            hook_call(*prepared.args, **prepared.kwargs)
        return handle

    def enqueue(self, job: Any, /, *args: Any, **kwargs: Any) -> Job[Any] | None:
        return self.enqueue_call(job, args, kwargs)

    def _unique_holder(self, prepared: Prepared) -> Enqueued | None:
        """The recorded job whose unique lock would refuse ``prepared``, as Redis's would:
        same queue and lock name, still queued (``until="start"``), queued or running
        (``"end"``), or enqueued less than ``ttl`` ago on the fake's clock (``"window"``)."""
        if prepared.unique is None:
            return None
        policy, name = prepared.unique
        for entry in self.enqueued:
            spec = layout.decode(entry.payload).get(layout.JOB_UNIQUE)
            if entry.queue != prepared.queue or not spec or spec[1] != name:
                continue
            if policy.until == "window":
                if self.clock() - entry.enqueued_at < policy.ttl:
                    return entry
            elif entry.status is JobStatus.QUEUED or (
                    policy.until == "end" and entry.status is JobStatus.STARTED):
                return entry
        return None

    def enqueue_to(self, queue: str, job: Any, /, *args: Any, **kwargs: Any) -> Job[Any] | None:
        return self.enqueue_call(job, args, kwargs, queue=queue)

    def enqueue_in(self, delay: Delay, job: Any, /, *args: Any,
                   **kwargs: Any) -> Job[Any] | None:
        return self.enqueue_call(job, args, kwargs, delay=delay)

    def enqueue_at(self, when: When, job: Any, /, *args: Any, **kwargs: Any) -> Job[Any] | None:
        return self.enqueue_call(job, args, kwargs, at=when)

    # --- what was enqueued ----------------------------------------------------------------

    def jobs(self, job: Any = None, *, queue: str | None = None,
             pending: bool = True) -> list[Enqueued]:
        """Recorded enqueues (of ``job`` — a task, class or name — on ``queue``); only those
        not yet performed unless ``pending=False``."""
        name = jobs.class_name(job) if job is not None else None
        return [entry for entry in self.enqueued
                if (name is None or entry.name == name)
                and (queue is None or entry.queue == queue)
                and (not pending or entry.status is JobStatus.QUEUED)]

    def assert_enqueued(self, job: Any, /, *args: Any, queue: str | None = None,
                        **kwargs: Any) -> Enqueued:
        """The pending enqueue of ``job(*args, **kwargs)`` (on ``queue``), compared as a
        worker would receive it (through JSON); AssertionError listing what there is."""
        wanted = layout.decode(layout.encode(arguments.pack(args, kwargs)))
        candidates = self.jobs(job, queue=queue)
        for entry in candidates:
            if layout.decode(entry.payload)["args"] == wanted:
                return entry
        shown = "\n  ".join(map(repr, self.jobs(pending=True))) or "(nothing)"
        where = f" on {queue}" if queue else ""
        raise AssertionError(f"{jobs.class_name(job)} was not enqueued with {args!r} "
                             f"{kwargs!r}{where}; pending:\n  {shown}")

    def assert_nothing_enqueued(self) -> None:
        pending = self.jobs(pending=True)
        assert not pending, f"expected nothing enqueued, found {pending!r}"

    # --- performing -----------------------------------------------------------------------

    def drain(self, *, max_jobs: int = 10_000) -> list[Enqueued]:
        """Perform every job due on the clock, oldest first, including jobs they enqueue,
        until none is left; what was performed. A job that raises is recorded
        (``failures``, its handle's ``result()`` raises ``JobFailed``), not raised."""
        performed: list[Enqueued] = []
        while len(performed) < max_jobs:
            entry = next((e for e in self.enqueued if e.status is JobStatus.QUEUED
                          and (e.due is None or e.due <= self.clock())), None)
            if entry is None:
                return performed
            self._perform(entry)
            performed.append(entry)
        raise RuntimeError(f"drain() performed {max_jobs} jobs and jobs are still due: a job "
                           "that enqueues itself for ever?")

    def _perform(self, entry: Enqueued) -> None:
        entry.status = JobStatus.STARTED
        payload = layout.decode_job(entry.payload, entry.queue)
        try:
            target = self.registry.resolve(payload["class"], self.allowed_modules)
            result = current.execute(target, payload, entry.queue, FAKE_WORKER)
            entry.result = None if result is performing.SKIPPED else result
            entry.status = JobStatus.FINISHED
        except Exception as exc:  # noqa: BLE001 - a worker records a failure and goes on
            entry.status, entry.error = JobStatus.FAILED, exc
            self.failures.append(entry)


def _due(clock: Clock, at: When | None, delay: Delay | None) -> float | None:
    if delay is not None:
        return clock() + seconds(delay)
    if at is None:
        return None
    return at.timestamp() if hasattr(at, "timestamp") else float(at)


def _error(exc: BaseException | None) -> str | None:
    return None if exc is None else f"{type(exc).__name__}: {exc}"

