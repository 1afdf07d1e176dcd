"""Tasks for tests/test_contrib_django.py, as Django's own backend tests define theirs
(tests/tasks/tasks.py in Django), and the settings they need: Django is configured on import,
the Redis given per test (``override_settings``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        INSTALLED_APPS=["resque.contrib.django"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        TASKS={"default": {"BACKEND": "resque.contrib.django.ResqueBackend",
                           "QUEUES": ["default", "queue_1"]}},
        USE_TZ=True,
    )
    django.setup()

from resque.contrib.django import compat  # after the setup
from resque.contrib.django.compat import TaskContext


def task(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """Django's ``@task()``, typed for mypy (Django ships no types)."""
    decorator: Callable[[Callable[..., Any]], Any] = compat.task(**options)
    return decorator


@task()
def noop_task(*args: Any, **kwargs: Any) -> None:
    return None


@task()
async def noop_task_async(*args: Any, **kwargs: Any) -> None:
    return None


@task()
def calculate_meaning_of_life() -> int:
    return 42


@task()
async def calculate_meaning_of_life_async() -> int:
    return 42


@task()
def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


@task()
def failing_task_value_error() -> None:
    raise ValueError("This task failed due to ValueError")


@task()
def complex_return_value() -> Any:
    return {"set": {1, 2}}  # not JSON: the task fails, as with Django's own backends


@task(takes_context=True)
def get_task_id(context: TaskContext) -> str:
    return str(context.task_result.id)


@task(takes_context=True)
def attempt_of(context: TaskContext) -> int:
    return int(context.attempt)
