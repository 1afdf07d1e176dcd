"""Exceptions a user can act on. Every one says what went wrong and what to check."""

from __future__ import annotations


class ResqueError(Exception):
    """Base class of every error this library raises on purpose."""


class RedisUnavailable(ResqueError, ConnectionError):
    """Redis could not be reached; the message names the address (never the password)."""


class BadRedisURL(ResqueError, ValueError):
    """A Redis URL or address that cannot be read; the message never shows a password."""


class BadLogFormat(ResqueError, ValueError):
    """A log format other than ``text`` or ``json`` (``--log-format``, ``RESQUE_LOG_FORMAT``)."""


class BadPayload(ResqueError, ValueError):
    """A queued item that is not a job payload. The raw item is kept, never dropped."""

    def __init__(self, queue: str, raw: str | bytes | None, reason: str) -> None:
        self.queue = queue
        self.raw = raw
        shown = raw if isinstance(raw, str) else (raw or b"").decode("utf-8", "backslashreplace")
        if len(shown) > 200:
            shown = shown[:200] + "..."
        super().__init__(f"bad item in queue {queue!r}: {reason}: {shown!r}")


class NoQueueError(ResqueError, ValueError):
    """A job or worker without a queue, or a queue name Resque cannot use."""


class JobNotFound(ResqueError, LookupError):
    """A payload's class names no registered or allowed job."""


class JobForbidden(JobNotFound):
    """A payload's class names a module outside the allowed prefixes; it is never imported."""


class DontPerform(ResqueError):
    """Raise from a ``before_perform`` hook to skip the job quietly (Ruby's DontPerform)."""


class DirtyExit(ResqueError):
    """The job's process died before the job finished (recorded as ``Resque::DirtyExit``)."""


class TermException(BaseException):
    """Raised inside a job when the worker is told to stop it (``TERM_CHILD``).

    A ``BaseException``, like ``KeyboardInterrupt`` (and Ruby's ``SignalException``), so a
    job's ``except Exception:`` does not swallow the stop."""


class JobTimeout(ResqueError):
    """The job ran past its timeout (``@resque.job(timeout=...)``, ``RESQUE_JOB_TIMEOUT``);
    recorded as ``Resque::JobTimeout``, and retried if its retry policy says so. An
    ``Exception``, as RQ's and Celery's are, so that a retry policy's default ``on`` covers it."""
