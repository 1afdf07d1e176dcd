"""Failed jobs reported to Sentry (the ``sentry`` extra), as a failure backend.

``FAILURE_BACKEND=redis,resque.contrib.sentry:SentryFailure resque work ...`` keeps Ruby's
``failed`` list (retry from the dashboard as before) and sends each failure to Sentry, with
the job's queue and class as tags and its arguments (keyword arguments apart), worker and job
id (when it has one: the Jobs tab's and ``current_job().id``) as context. The SDK must be
initialised in the worker: call ``sentry_sdk.init(...)`` in a module the worker imports
(``--app``); with no DSN (nor ``SENTRY_DSN``) the SDK is off and this backend does nothing.

It is also the example to copy for another error tracker: ``save`` gets the live exception,
in the process that caught it (the forked child for a job that raised), which exits right
after, so ``save`` flushes before it returns.
"""

from __future__ import annotations

from typing import Any

import sentry_sdk

from resque import layout
from resque.failure import Failure, FailureBackend

FLUSH_SECONDS = 2.0  # how long a failing job's child waits for Sentry before exiting


class SentryFailure(FailureBackend):
    """Reports each failed job to Sentry; writes no Redis list (combine it with ``redis``)."""

    name = "sentry"

    def save(self, failure: Failure) -> None:
        if failure.exception is None:
            return
        payload = failure.payload if isinstance(failure.payload, dict) else {}
        record = layout.decode(failure.record)
        args: Any = payload.get("args")
        kwargs: dict[str, Any] = {}
        if isinstance(args, list):
            args, kwargs = layout.split_kwargs(args)
        context: dict[str, Any] = {"queue": failure.queue, "class": failure.class_name,
                                   "args": args, "worker": record.get("worker")}
        if kwargs:
            context["kwargs"] = kwargs
        job_id = payload.get(layout.JOB_ID)
        if isinstance(job_id, str):
            context["id"] = job_id
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("resque.queue", failure.queue)
            scope.set_tag("resque.class", failure.class_name or "?")
            scope.set_context("resque job", context)
            scope.fingerprint = ["{{ default }}", failure.class_name or "?"]
            sentry_sdk.capture_exception(failure.exception)
        sentry_sdk.flush(timeout=FLUSH_SECONDS)
