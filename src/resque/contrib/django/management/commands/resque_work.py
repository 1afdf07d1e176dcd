"""``manage.py resque_work``: ``resque work`` on a task backend's Redis and queues."""

from __future__ import annotations

from resque.contrib.django.cli import ResqueCommand


class Command(ResqueCommand):
    help = ("A worker performing the project's tasks (resque work): on the backend's Redis, "
            "its queues in priority order unless -q is given. --backend ALIAS (default: "
            "default); resque_work --help for the worker's options.")
    verb = "work"
