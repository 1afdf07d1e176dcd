"""The workloads as Celery tasks, on ``BENCH_REDIS`` (``celery -A celery_app worker``);
results are not stored (``task_ignore_result``), as for the other frameworks."""

from __future__ import annotations

import os

import jobs
from celery import Celery

app = Celery("bench", broker=os.environ["BENCH_REDIS"])
app.conf.update(task_ignore_result=True, task_default_queue="bench",
                worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)
tasks = {name: app.task(function, name=f"load.{name}") for name, function in jobs.KINDS.items()
         if not name.startswith("aio_")}
