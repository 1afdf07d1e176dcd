"""``manage.py resque_scheduler``: ``resque scheduler`` on a task backend's Redis."""

from __future__ import annotations

from resque.contrib.django.cli import ResqueCommand


class Command(ResqueCommand):
    help = ("The scheduler (resque scheduler): queues run_after tasks when due, and recurring "
            "jobs. --backend ALIAS (default: default).")
    verb = "scheduler"
