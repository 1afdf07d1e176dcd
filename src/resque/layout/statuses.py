"""The status record of a tracked job: resque-status's layout (its resque-web tab reads it),
plus fields only we read.
"""

from __future__ import annotations

from typing import Any

from resque.layout.codec import decode, encode

# ``status:<id>`` holds one JSON object. resque-status's fields: ``uuid``, ``status`` (one of
# the values below), ``time`` (epoch seconds of the last write), ``name`` (the job class),
# ``message``, ``num``, ``total``. Ours, which its tab ignores: ``queue``, ``payload`` (the
# queued bytes, to cancel by), ``due`` (a delayed job's epoch second), ``enqueued_at``,
# ``started_at``, ``ended_at`` (epoch seconds), ``worker``, ``result`` (the return value as
# JSON text), ``error`` (``Exception: message``). The record is merged by ``lua/status_lib.lua``.

STATUS_QUEUED = "queued"
STATUS_WORKING = "working"  # ours: started
STATUS_COMPLETED = "completed"  # ours: finished
STATUS_FAILED = "failed"
STATUS_KILLED = "killed"  # ours: cancelled
STATUS_RETRYING = "retrying"  # not resque-status's: failed, and another attempt is planned
STATUS_FIELDS = frozenset({
    "status", "name", "message", "num", "total", "queue", "payload", "due", "enqueued_at",
    "started_at", "ended_at", "worker", "result", "error",
})


def status_fields(**fields: Any) -> str:
    """The JSON object of fields a status write merges into the record (names checked)."""
    unknown = set(fields) - STATUS_FIELDS
    if unknown:
        raise ValueError(f"not status record fields: {sorted(unknown)}")
    return encode(fields)


def decode_status(raw: str | bytes | None) -> dict[str, Any] | None:
    """A status record; None when missing or not a JSON object (never raises)."""
    if raw is None:
        return None
    try:
        record = decode(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
