"""``resque.Job[R]``: the handle every enqueue returns.

A handle knows its job's id and exact payload bytes, so ``cancel()`` removes exactly that job
from its queue (``LREM`` of those bytes; a job id makes them unique). A job enqueued with a
status (``status=True``) can also be followed: ``status()``, ``info()`` (progress, timeline,
worker), and ``result(timeout=...)``, which blocks on pub/sub until the job ends. Any process
can rebuild the handle of a tracked job with ``Job.fetch(job_id)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from resque import layout
from resque.errors import ResqueError
from resque.status import JobStatus, StatusRecord

if TYPE_CHECKING:
    from resque.client import Client

R = TypeVar("R")


class JobFailed(ResqueError):
    """``result()`` of a job that failed: the message is its ``Exception: message``."""


class JobCancelled(ResqueError):
    """``result()`` of a job that was cancelled before it ran."""


class NotTracked(ResqueError):
    """Status or result asked of a job enqueued without ``status=True``."""


class Job(Generic[R]):
    """A job that was enqueued: its id, queue and payload; status and result if tracked."""

    __slots__ = ("client", "id", "queue", "class_name", "payload", "tracked", "due", "duplicate")

    def __init__(self, client: Client, job_id: str | None, queue: str, class_name: str,
                 payload: str, tracked: bool = False, due: int | None = None) -> None:
        self.client = client
        self.id = job_id  # None when the client writes Ruby's exact payloads (job_ids=False)
        self.queue = queue
        self.class_name = class_name
        self.payload = payload  # the exact bytes queued (a delayed job's once it is due)
        self.tracked = tracked
        self.due = due  # a delayed job's epoch second; None once queued
        self.duplicate = False  # a unique job's enqueue that queued nothing: the holder's handle

    @classmethod
    def fetch(cls, job_id: str, client: Client | None = None) -> Job[Any] | None:
        """The handle of a tracked job, from any process; None if there is no record (never
        tracked, or expired). ``client``: default ``resque.default_client()``."""
        if client is None:
            from resque.tasks import default_client

            found: Any = default_client()
            if not hasattr(found, "statuses"):  # the test plugin's fake has no Redis
                raise TypeError(f"Job.fetch needs a Redis client, and the default client is "
                                f"{found!r}: pass client=")
            client = found
        assert client is not None
        record = client.statuses.get(job_id)
        if record is None:
            return None
        return cls(client, job_id, record.queue or "", record.name or "", record.payload or "",
                   tracked=True, due=record.due)

    # --- what the payload says ----------------------------------------------------------

    @property
    def args(self) -> list[Any]:
        """The positional arguments, as a worker will see them (through JSON)."""
        return layout.split_kwargs(self._decoded()["args"])[0]

    @property
    def kwargs(self) -> dict[str, Any]:
        return layout.split_kwargs(self._decoded()["args"])[1]

    def _decoded(self) -> dict[str, Any]:
        return layout.decode_job(self.payload, self.queue)

    # --- status and result --------------------------------------------------------------

    def info(self) -> StatusRecord | None:
        """The job's status record (status, progress, timeline, worker, result, error);
        None if it expired. One round trip."""
        self._check_tracked()
        assert self.id is not None
        return self.client.statuses.get(self.id)

    def status(self) -> JobStatus | None:
        """Where the job is now; None if its record expired."""
        record = self.info()
        return record.status if record else None

    def result(self, timeout: float | None = None) -> R:
        """The job's return value, waiting up to ``timeout`` seconds (None: for ever) for it
        to end. Blocks on pub/sub; never polls. Raises ``JobFailed``, ``JobCancelled``,
        ``TimeoutError`` (not ended in time) or ``LookupError`` (no record: expired)."""
        self._check_tracked()
        assert self.id is not None
        record = self.client.statuses.wait(self.id, timeout)
        value: R = result_of(record, self.id, self.class_name, timeout)
        return value

    def cancel(self) -> bool:
        """Remove the job if it has not started: from its queue (exactly these bytes), or
        from the delayed schedule. A tracked job is marked cancelled. True if removed."""
        if self.tracked and self.id is not None:
            statuses = self.client.statuses
            ttl = layout.decode_job(self.payload, self.queue).get(layout.JOB_TRACK)
            ttl = ttl if type(ttl) is int else 1
            if statuses.cancel_queued(self.id, ttl, self.queue, self.payload):
                return True
            return self._cancel_delayed() and statuses.cancelled(self.id, ttl)
        if int(self.client.redis.lrem(self.client.keys.queue(self.queue), 1, self.payload)):
            return True
        return self._cancel_delayed()

    def _cancel_delayed(self) -> bool:
        if self.due is None:
            return False
        delayed = getattr(self.client, "delayed", None)  # resque.Resque's; a core Client has none
        if delayed is None:
            return False
        item = layout.delayed_item_of(self.payload, self.queue)
        return bool(delayed.remove_item_at(self.due, item))

    def _check_tracked(self) -> None:
        if not self.tracked or self.id is None:
            raise NotTracked(f"job {self.id or self.class_name} was enqueued without a status: "
                             "enqueue it with status=True (task.options(status=True).enqueue, "
                             "or @resque.job(status=True)) to follow it")

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.class_name} queue={self.queue!r}>"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Job) and self.payload == other.payload
                and self.queue == other.queue)

    def __hash__(self) -> int:
        return hash((self.queue, self.payload))


def result_of(record: StatusRecord | None, job_id: str, class_name: str,
              timeout: float | None) -> Any:
    """What ``result`` gives for the record a wait ended with (the sync and asyncio handles'):
    the job's return value, or the exception that says why there is none."""
    if record is None:
        raise LookupError(f"job {job_id} has no status record (it expired, or the "
                          "namespace differs)")
    if record.status is JobStatus.FINISHED:
        return record.result
    if record.status is JobStatus.FAILED:
        raise JobFailed(f"job {job_id} ({class_name}) failed: {record.error}")
    if record.status is JobStatus.CANCELLED:
        raise JobCancelled(f"job {job_id} ({class_name}) was cancelled")
    raise TimeoutError(f"job {job_id} did not end within {timeout} s (it is "
                       f"{record.status.name.lower() if record.status else 'unknown'})")
