"""Django's task framework, wherever this Django has it: ``django.tasks`` (Django 6, on
Python 3.12 and later) or the ``django-tasks`` package (``django_tasks``, the DEP 14 reference
implementation, for older Django). The two have the same API; only a few names differ."""

from __future__ import annotations

try:
    from django.tasks import (
        DEFAULT_TASK_QUEUE_NAME,
        TaskResultStatus,
        default_task_backend,
        task,
        task_backends,
    )
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import (
        DEFAULT_TASK_PRIORITY,
        Task,
        TaskContext,
        TaskError,
        TaskResult,
    )
    from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.json import normalize_json

    SOURCE = "django.tasks"
except ImportError:  # Django before 6: the same API from the django-tasks package
    from django_tasks import (
        DEFAULT_TASK_QUEUE_NAME,
        TaskResultStatus,
        default_task_backend,
        task,
        task_backends,
    )
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import (
        DEFAULT_TASK_PRIORITY,
        Task,
        TaskContext,
        TaskError,
        TaskResult,
    )
    from django_tasks.exceptions import (
        InvalidTaskError as InvalidTask,
    )
    from django_tasks.exceptions import TaskResultDoesNotExist
    from django_tasks.signals import (
        task_enqueued,
        task_finished,
        task_started,
    )
    from django_tasks.utils import normalize_json

    SOURCE = "django_tasks"

__all__ = [
    "DEFAULT_TASK_PRIORITY", "DEFAULT_TASK_QUEUE_NAME", "SOURCE", "BaseTaskBackend",
    "InvalidTask", "Task", "TaskContext", "TaskError", "TaskResult", "TaskResultDoesNotExist",
    "TaskResultStatus", "default_task_backend", "normalize_json", "task", "task_backends",
    "task_enqueued", "task_finished", "task_started",
]
