"""``ResqueBackend``: Django's task framework on Resque.

A ``@task`` function is enqueued as a Resque job whose class is the task's dotted path
(``shop.tasks.send_receipt``), so Ruby's resque-web and our dashboard name it; our workers
perform it (``manage.py resque_work``), with a status record (the job-status store) from which
``get_result`` reads its status, times, errors and return value. ``run_after`` goes through
the delayed queue (``manage.py resque_scheduler`` moves it when due).

Priority: Resque orders work by queue, so a task's priority picks one of three Resque queues
beside its queue (``default``): ``default:high`` above 0, ``default`` at 0, ``default:low``
below. ``resque_work`` takes every ``:high`` queue first, then the plain ones, then ``:low``;
within one of them, first in, first out.

Settings, in the backend's ``OPTIONS``: ``REDIS`` (any form ``--redis`` takes, the namespace
included; default ``RESQUE_REDIS``, ``REDIS_URL``, localhost), ``RESULT_TTL`` (seconds a
result is kept, default the client's), ``ENQUEUE_ON_COMMIT`` (default True: a task enqueued
inside a transaction is pushed when it commits, and never if it rolls back).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from resque import jobs, layout
from resque.contrib.django import compat
from resque.contrib.django.results import result_of
from resque.current import current_job
from resque.facade import Resque
from resque.handles import Job
from resque.tasks import Task as ResqueTask

__all__ = ["ResqueBackend", "client_for", "resque_backend", "resque_queue", "worker_queues"]

HIGH, LOW = "high", "low"
BAND_SEPARATOR = ":"

_clients: dict[tuple[str, Any, Any], Resque] = {}
_clients_lock = threading.Lock()
# Task dotted path -> (the Django task, the Resque job that performs it).
_registered: dict[str, tuple[Any, ResqueTask[..., Any]]] = {}


def client_for(options: dict[str, Any]) -> Resque:
    """The client of a backend's ``OPTIONS``: one per Redis and result TTL, shared by every
    thread (Django builds a backend per thread; their clients share one connection pool)."""
    key = ("", options.get("REDIS"), options.get("RESULT_TTL"))
    found = _clients.get(key)
    if found is None:
        with _clients_lock:
            found = _clients.get(key)
            if found is None:
                found = _clients[key] = Resque(options.get("REDIS"),
                                               result_ttl=options.get("RESULT_TTL"))
    return found


def resque_queue(queue_name: str, priority: int) -> str:
    """The Resque queue of a task's queue and priority: ``q:high``, ``q`` or ``q:low``."""
    if priority > compat.DEFAULT_TASK_PRIORITY:
        return f"{queue_name}{BAND_SEPARATOR}{HIGH}"
    if priority < compat.DEFAULT_TASK_PRIORITY:
        return f"{queue_name}{BAND_SEPARATOR}{LOW}"
    return queue_name


def task_queue(resque_queue_name: str) -> str:
    """The Django queue name of a Resque queue (its band taken off)."""
    for band in (HIGH, LOW):
        suffix = BAND_SEPARATOR + band
        if resque_queue_name.endswith(suffix):
            return resque_queue_name[: -len(suffix)]
    return resque_queue_name


def worker_queues(queue_names: Sequence[str]) -> list[str]:
    """A worker's queue list in priority order: every ``:high`` queue, the plain ones, then
    every ``:low`` one (``resque_work``'s default ``-q``)."""
    return [resque_queue(name, priority) for priority in (1, 0, -1) for name in queue_names]


class ResqueBackend(compat.BaseTaskBackend):
    """Django tasks as Resque jobs: ``TASKS = {"default": {"BACKEND":
    "resque.contrib.django.ResqueBackend", "QUEUES": [...], "OPTIONS": {...}}}``."""

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        # Django keeps QUEUES as a set; a worker takes them in the order they are listed.
        self.queue_order: list[str] = list(dict.fromkeys(
            params.get("QUEUES", [compat.DEFAULT_TASK_QUEUE_NAME])))
        self.enqueue_on_commit = bool(self.options.get("ENQUEUE_ON_COMMIT", True))

    @property
    def client(self) -> Resque:
        """The ``resque.Resque`` client of this backend's ``OPTIONS``."""
        return client_for(self.options)

    def validate_task(self, task: Any) -> None:
        """Django's checks, then ours: each of its Resque queues is a name a worker can
        select. A valid task is registered as a job, so a worker that imported it can
        perform it by its dotted path."""
        super().validate_task(task)
        try:
            for priority in (1, 0, -1):
                layout.check_queue_name(resque_queue(task.queue_name, priority))
        except ValueError as exc:
            raise compat.InvalidTask(str(exc)) from None
        register(task)

    def enqueue(self, task: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        """Push the task now, or when the current transaction commits (``on_commit``); its
        ``TaskResult`` is ready at once, with the job's id."""
        self.validate_task(task)
        args, kwargs = compat.normalize_json(list(args)), compat.normalize_json(dict(kwargs))
        client = self.client
        _, job = _registered[task.module_path]
        prepared = client.prepare(job, args, kwargs,
                                  queue=resque_queue(task.queue_name, task.priority),
                                  status=True)
        assert prepared.job_id is not None
        result = compat.TaskResult(
            task=task, id=prepared.job_id, status=compat.TaskResultStatus.READY,
            enqueued_at=None, started_at=None, finished_at=None, last_attempted_at=None,
            args=args, kwargs=kwargs, backend=self.alias, errors=[], worker_ids=[])

        def push() -> None:
            handle: Job[Any] | None
            if task.run_after is None:
                handle = client.submit(prepared)
            else:
                handle = client.delayed.enqueue_prepared(prepared, task.run_after)
            if handle is not None:
                object.__setattr__(result, "enqueued_at", timezone.now())
                compat.task_enqueued.send(type(self), task_result=result)

        if self.enqueue_on_commit and settings.DATABASES:
            transaction.on_commit(push)  # at once when no transaction is open
        else:
            push()
        return result

    def get_result(self, result_id: str) -> Any:
        """The task's result as its status record says: ``TaskResultDoesNotExist`` if there
        is none (never enqueued, not committed yet, expired, or not a Django task)."""
        record = self.client.statuses.get(str(result_id))
        found = None if record is None or record.name is None else task_named(record.name)
        if record is None or found is None:
            raise compat.TaskResultDoesNotExist(result_id)
        task = found if found.backend == self.alias else found.using(backend=self.alias)
        queue = task_queue(record.queue or task.queue_name)
        if queue != task.queue_name:
            task = task.using(queue_name=queue)
        return result_of(record, task, self.alias)


def resque_backend(alias: str) -> ResqueBackend:
    """The ``ResqueBackend`` configured as ``alias`` in ``TASKS`` (``ImproperlyConfigured``
    if there is none)."""
    from django.core.exceptions import ImproperlyConfigured

    try:
        backend = compat.task_backends[alias]
    except Exception as exc:  # Django's own error names the problem
        raise ImproperlyConfigured(f"no task backend {alias!r}: {exc}") from exc
    if not isinstance(backend, ResqueBackend):
        raise ImproperlyConfigured(
            f"task backend {alias!r} is {type(backend).__name__}, not "
            "resque.contrib.django.ResqueBackend (choose another with --backend)")
    return backend


def register(task: Any) -> None:
    """Make ``task`` a Resque job named by its dotted path (once per function)."""
    path = task.module_path
    known = _registered.get(path)
    if known is not None and known[0].func is task.func:
        return
    job = jobs.registry.register(_performer(task), name=path)
    _registered[path] = (task, job)


def task_named(path: str) -> Any | None:
    """The Django task a job's class names, or None: one registered in this process, or
    one in a module of an installed app, imported now (never a module outside the apps:
    the name comes from Redis)."""
    known = _registered.get(path)
    if known is None and _in_installed_app(path):
        try:
            importlib.import_module(path.rpartition(".")[0])
        except ImportError:
            return None
        known = _registered.get(path)
    return None if known is None else known[0]


def _in_installed_app(path: str) -> bool:
    from django.apps import apps

    module = path.rpartition(".")[0]
    return any(module.startswith(config.name + ".") for config in apps.get_app_configs())


def _performer(task: Any) -> Callable[..., Any]:
    def perform(*args: Any, **kwargs: Any) -> Any:
        return perform_task(task, args, kwargs)

    perform.__qualname__ = perform.__name__ = task.func.__qualname__
    perform.__module__ = task.func.__module__
    return perform


def perform_task(task: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """Run a Django task in a worker as Django runs one: with fresh database connections, the
    task's signals, its context if it takes one, and its return value made JSON (one that
    cannot be fails the task, as in Django's own backends)."""
    close_old_connections()
    result = _running_result(task, args, kwargs)
    compat.task_started.send(ResqueBackend, task_result=result)
    try:
        if task.takes_context:
            value = task.call(compat.TaskContext(task_result=result), *args, **kwargs)
        else:
            value = task.call(*args, **kwargs)
        value = compat.normalize_json(value)
    except BaseException as exc:
        _finish(result, compat.TaskResultStatus.FAILED, error=exc)
        raise
    finally:
        close_old_connections()
    _finish(result, compat.TaskResultStatus.SUCCESSFUL, value=value)
    return value


def _running_result(task: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    job = current_job()
    now = timezone.now()
    return compat.TaskResult(
        task=task, id=job.id or "", status=compat.TaskResultStatus.RUNNING, enqueued_at=None,
        started_at=now, finished_at=None, last_attempted_at=now, args=list(args),
        kwargs=dict(kwargs), backend=task.backend, errors=[], worker_ids=[job.worker])


def _finish(result: Any, status: Any, *, value: Any = None,
            error: BaseException | None = None) -> None:
    object.__setattr__(result, "status", status)
    object.__setattr__(result, "finished_at", timezone.now())
    if error is not None:
        import traceback

        result.errors.append(compat.TaskError(
            exception_class_path=f"{type(error).__module__}.{type(error).__qualname__}",
            traceback="".join(traceback.format_exception(error))))
    else:
        object.__setattr__(result, "_return_value", value)
    compat.task_finished.send(ResqueBackend, task_result=result)
