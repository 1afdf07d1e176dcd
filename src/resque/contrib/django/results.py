"""A ``TaskResult`` read from a job's status record (``resque.status``): what Django's
``get_result`` and ``refresh`` return for a task enqueued through ``ResqueBackend``."""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings

from resque import layout
from resque.contrib.django import compat
from resque.status import JobStatus, StatusRecord

# Our statuses as Django's: a job waiting (or waiting again) is READY; a cancelled one FAILED.
STATUSES = {
    JobStatus.QUEUED: "READY",
    JobStatus.RETRYING: "READY",
    JobStatus.STARTED: "RUNNING",
    JobStatus.FINISHED: "SUCCESSFUL",
    JobStatus.FAILED: "FAILED",
    JobStatus.CANCELLED: "FAILED",
}


def result_of(record: StatusRecord, task: Any, alias: str) -> Any:
    """The ``TaskResult`` of a status record (``task``: the Django task it names)."""
    status = compat.TaskResultStatus[STATUSES.get(record.status or JobStatus.QUEUED, "READY")]
    args, kwargs = _arguments(record)
    started = as_datetime(record.started_at)
    result = compat.TaskResult(
        task=task, id=record.id, status=status, enqueued_at=as_datetime(record.enqueued_at),
        started_at=started, finished_at=as_datetime(record.ended_at),
        last_attempted_at=started, args=args, kwargs=kwargs, backend=alias,
        errors=_errors(record), worker_ids=[record.worker] if record.worker else [])
    if record.status is JobStatus.FINISHED:
        object.__setattr__(result, "_return_value", record.result)
    return result


def _arguments(record: StatusRecord) -> tuple[list[Any], dict[str, Any]]:
    if not record.payload:
        return [], {}
    try:
        payload = layout.decode_job(record.payload, record.queue or "")
    except ValueError:
        return [], {}
    return layout.split_kwargs(payload["args"])


def _errors(record: StatusRecord) -> list[Any]:
    """The failure as Django's ``TaskError``: the exception's class path and, for its
    traceback, the ``Exception: message`` line the record keeps (the whole backtrace is in
    the failure record, on the dashboard's Failed tab)."""
    if record.status is JobStatus.CANCELLED:
        return [compat.TaskError(exception_class_path="resque.handles.JobCancelled",
                                 traceback=f"JobCancelled: {record.message or 'cancelled'}\n")]
    if record.status is not JobStatus.FAILED:
        return []
    error = record.error or "Exception: failed"
    return [compat.TaskError(exception_class_path=exception_path(error.partition(":")[0]),
                             traceback=error + "\n")]


def exception_path(name: str) -> str:
    """An importable path of the exception a failure record names: builtins have no module
    there, our errors are spelled Ruby's way (``Resque::DirtyExit``)."""
    if name.startswith("Resque::"):
        return "resque.errors." + name.removeprefix("Resque::")
    return name if "." in name else f"builtins.{name}"


def as_datetime(epoch: float | None) -> datetime.datetime | None:
    """An epoch time as ``timezone.now()`` gives times: aware (UTC) with ``USE_TZ``, naive
    local time without."""
    if epoch is None:
        return None
    if settings.USE_TZ:
        return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return datetime.datetime.fromtimestamp(epoch)
