"""Logging for the processes the ``resque`` command starts (worker, fork server, job children,
scheduler, pool, dashboard, admin verbs), and the worker's one line per job.

Library code only logs to named ``resque.<area>`` loggers; an application that embeds it
configures logging itself and never calls ``setup_logging``. The command line calls it once:
one handler on the ``resque`` logger, in text or JSON (one object per line, for log
shippers). A worker's fork server applies the worker's set-up (``apply``), and a job's child
inherits it, so every line of a worker, whichever process writes it, has the same format.

Lines written while a job runs carry the job's fields (queue, class, id): in text they are in
the message, in JSON they are keys of the object. Nothing here imports redis-py: the fork
server uses it.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from resque.errors import BadLogFormat

FORMAT = "%(asctime)s %(name)s[%(process)d] %(levelname)s: %(message)s"
FORMATS = ("text", "json")
JOB_LOGGER = "resque.worker.job"  # one line per job: ok at INFO, failed and requeued WARNING

job_log = logging.getLogger(JOB_LOGGER)
# (queue, payload) of the job this thread performs: lines logged meanwhile (by this thread,
# or by a child forked meanwhile) name it. Set and reset around each job, which is cheap:
# fields are built only for a line that is written.
current_job: contextvars.ContextVar[tuple[str, Any] | None] = contextvars.ContextVar(
    "resque_job", default=None)


@dataclass(frozen=True)
class LogSetup:
    """How the ``resque`` loggers are configured: what a fork server copies."""

    level: int = logging.WARNING  # the ``resque`` logger
    job_level: int = logging.WARNING  # the per-job lines (``JOB_LOGGER``)
    format: str = "text"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_current: LogSetup | None = None


def verbosity_from_env(environ: Mapping[str, str] | None = None) -> int:
    """Ruby's ``VVERBOSE`` (2, debug), ``VERBOSE`` or ``LOGGING`` (1, info), else 0."""
    env = os.environ if environ is None else environ
    if env.get("VVERBOSE"):
        return 2
    if env.get("VERBOSE") or env.get("LOGGING"):
        return 1
    return 0


def setup_logging(verbosity: int, log_format: str | None = None,
                  default: int = logging.WARNING) -> LogSetup:
    """Configure the ``resque`` logger only (never the application's root logger).

    Verbosity 0 logs at ``default`` (``resque work`` passes INFO, so its start-up banner
    shows), 1 at INFO with one line per job, 2 at DEBUG; the environment can raise it, never
    lower it. Failed and requeued jobs are logged at every verbosity. ``log_format`` is
    ``text`` or ``json`` (default: ``RESQUE_LOG_FORMAT``, else text).
    """
    verbosity = max(verbosity, verbosity_from_env())
    level = {0: default, 1: min(default, logging.INFO)}.get(verbosity, logging.DEBUG)
    source = "the log format" if log_format else "RESQUE_LOG_FORMAT"
    log_format = log_format or os.environ.get("RESQUE_LOG_FORMAT") or "text"
    if log_format not in FORMATS:
        raise BadLogFormat(f"{source} is one of {', '.join(FORMATS)}, not {log_format!r}")
    job_level = logging.INFO if verbosity >= 1 else logging.WARNING
    setup = LogSetup(level, job_level, log_format)
    apply(setup)
    return setup


def apply(setup: LogSetup) -> None:
    """Configure the ``resque`` loggers as ``setup`` says, replacing a handler an earlier
    call added (a fork server applies its worker's set-up this way)."""
    global _current
    logger = logging.getLogger("resque")
    logger.setLevel(setup.level)
    job_log.setLevel(setup.job_level)
    for handler in [h for h in logger.handlers if getattr(h, "resque_handler", False)]:
        logger.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.resque_handler = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if setup.format == "json" else TextFormatter(FORMAT))
    handler.addFilter(_add_job_fields)
    logger.addHandler(handler)
    _current = setup


def current() -> LogSetup:
    """The set-up ``setup_logging`` made, else one with the levels the loggers have now (an
    embedding application's), so that a fork server logs what the worker would."""
    if _current is not None:
        return _current
    return LogSetup(logging.getLogger("resque").getEffectiveLevel(),
                    job_log.getEffectiveLevel())


# --- the fields of the job a line is about ------------------------------------------------------


def job_fields(queue: str, payload: Any) -> dict[str, Any]:
    """What identifies a job in a log line: its queue, class and id (when it has one)."""
    fields: dict[str, Any] = {"queue": queue, "class": None}
    if isinstance(payload, dict):
        fields["class"] = payload.get("class")
        job_id = payload.get("id")
        if job_id is not None:
            fields["id"] = job_id
    return fields


def set_job(queue: str, payload: Any) -> None:
    """For a forked child that performs one job and exits: its lines are about the job."""
    current_job.set((queue, payload))


def _add_job_fields(record: logging.LogRecord) -> bool:
    job = current_job.get()
    if job is not None and not hasattr(record, "fields"):
        record.fields = job_fields(*job)
    return True


def describe_job(fields: Mapping[str, Any]) -> str:
    """``Class (id 42) from queue``, as text lines name a job."""
    job_id = f" (id {fields['id']})" if fields.get("id") is not None else ""
    return f"{fields.get('class')}{job_id} from {fields.get('queue')}"


def duration(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def job_done(queue: str, payload: Any, seconds: float, outcome: str, error: str = "") -> None:
    """The one line per job: ``ok`` and ``deferred`` (by its limit) at INFO (shown with
    ``-v``); ``failed`` (with ``error``, the exception's first line) and ``requeued`` at
    WARNING, always shown."""
    level = logging.INFO if outcome in ("ok", "deferred") else logging.WARNING
    if not job_log.isEnabledFor(level):
        return
    fields = job_fields(queue, payload)
    line = {**fields, "duration": round(seconds, 6), "outcome": outcome}
    if outcome == "failed":
        line["error"] = error
    took = duration(seconds)
    what = {"ok": f"ok in {took}", "failed": f"failed in {took}: {line.get('error')}",
            "requeued": f"stopped by the shutdown after {took}, requeued at the head of its "
                        "queue",
            "deferred": "deferred: its limit is full, so it waits in the delayed schedule"
            }.get(outcome, outcome)
    job_log.log(level, "job %s: %s", describe_job(fields), what, extra={"fields": line})


def first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0][:500]


# --- formats ------------------------------------------------------------------------------------


class TextFormatter(logging.Formatter):
    """``FORMAT``; a line about a job that does not name it yet gets ``[Class from queue]``."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and "class" in fields and "outcome" not in fields:
            text += f" [{describe_job(fields)}]"
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``pid``,
    ``message``, then the line's fields (a job's queue, class, id, duration, outcome), and
    ``traceback`` when an exception is logged."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
                    .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            data.update((k, v) for k, v in fields.items() if k not in data)
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)
