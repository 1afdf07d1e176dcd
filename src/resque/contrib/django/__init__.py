"""resque in a Django project: a backend for Django's task framework, management commands,
and the dashboard behind Django's staff login.

* ``TASKS = {"default": {"BACKEND": "resque.contrib.django.ResqueBackend", "QUEUES":
  ["default"], "OPTIONS": {"REDIS": "redis://localhost:6379/0"}}}``: a ``@task`` function's
  ``enqueue()`` pushes a Resque job (when the transaction commits), our workers perform it,
  and ``get_result(id)`` reads its status and return value (``backend.py``).
* ``"resque.contrib.django"`` in ``INSTALLED_APPS``: ``manage.py resque_work`` (a worker on
  the backend's Redis and queues, with the project loaded), ``manage.py resque_scheduler``
  (moves ``run_after`` tasks when due) and ``manage.py resque <verb>`` (every ``resque``
  verb: ``stats``, ``failed``, ``queues``...).
* ``path("admin/resque/", include("resque.contrib.django.urls"))``: the dashboard, for staff.

Works with Django 6's ``django.tasks`` and, before it, the ``django-tasks`` package.
"""

from __future__ import annotations

from resque.contrib.django.backend import ResqueBackend

__all__ = ["ResqueBackend"]
