"""``manage.py resque <verb>``: every ``resque`` verb on a task backend's Redis."""

from __future__ import annotations

from resque.contrib.django.cli import ResqueCommand


class Command(ResqueCommand):
    help = ("Any resque verb on the backend's Redis: stats, queues, failed, workers, pause, "
            "web... --backend ALIAS (default: default); 'resque --help' lists them.")
    verb = None
