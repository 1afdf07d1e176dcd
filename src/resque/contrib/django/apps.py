"""The Django app: listed in ``INSTALLED_APPS`` for its management commands."""

from __future__ import annotations

from django.apps import AppConfig


class ResqueConfig(AppConfig):
    name = "resque.contrib.django"
    label = "resque"
    verbose_name = "Resque"
