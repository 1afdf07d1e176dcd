"""Failure records: how one is built from an exception, and how one is read back.

A record is Ruby's ``failed`` list element (``layout.failure_record`` spells its JSON).
``from_exception`` builds it where the exception was caught (the forked child, or the worker
for in-process jobs). ``FailureEntry`` reads a record that Ruby, Perl or we wrote, tolerantly,
and says what is wrong with it; ``FailureId`` names an entry by index and content (see
``resque.failure.operations``). Nothing here imports redis-py: the fork server loads it.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import re
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resque import layout
from resque.errors import NoQueueError, ResqueError

DIGEST_LENGTH = 12
ERROR_LIMIT = 8 * 1024  # characters of an exception's message a record keeps
_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)


class FailureNotFound(ResqueError, LookupError):
    """No entry has this id any more: someone removed or retried it. List again."""


class NotAFailureList(ResqueError, ValueError):
    """A list name that is neither ``failed`` nor in ``failed_queues``: never touched, since
    ids may come from URLs and any other list in the namespace (a job queue) is not ours."""


class NotRequeueable(ResqueError, ValueError):
    """The entry has no job to push back (not JSON, no class, no queue); it can be removed."""



def from_exception(payload: Any, exc: BaseException, worker: str, queue: str, raw: bytes) -> str:
    """The failure record (JSON, Ruby's shape) of a job that raised ``exc``.

    A payload JSON cannot carry back (NaN, lone surrogates, nesting too deep for the encoder)
    is recorded as its queued bytes ``raw`` instead, as for an item that is not JSON.
    """
    # Bounded: a message may quote the job's input (a 5 MB class name, 50 MB of args), and the
    # record already holds that input once, in its payload.
    error = clipped(error_text(exc), ERROR_LIMIT)
    fields: dict[str, Any] = {
        "exception": exception_name(exc),
        "error": error,
        "backtrace": backtrace(exc),
        "worker": worker,
        "queue": queue,
        "now": time.time(),
    }
    try:
        record = layout.failure_record(payload=payload, **fields)
        record.encode("utf-8")
    except (ValueError, RecursionError):
        payload = layout.unreadable_payload(raw)
        fields = {k: _utf8(v) if isinstance(v, str) else v for k, v in fields.items()}
        fields["backtrace"] = [_utf8(line) for line in fields["backtrace"]]
        record = layout.failure_record(payload=payload, **fields)
    return record


def clipped(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, followed by ``... (N bytes)``, N its whole size."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text.encode('utf-8', 'surrogatepass')):,} bytes)"


def _utf8(text: str) -> str:
    """Text that encodes as UTF-8: lone surrogates become ``\\udcff`` escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_text(exc: BaseException) -> str:
    try:
        return str(exc) or type(exc).__name__
    except Exception:  # noqa: BLE001 - a job's exception whose __str__ itself fails
        return type(exc).__name__


def exception_name(exc: BaseException) -> str:
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    if cls.__module__ == "resque.errors":
        return f"Resque::{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def backtrace(exc: BaseException) -> list[str]:
    """Innermost frame first, as Ruby lists them; frames of this package left out."""
    frames = traceback.extract_tb(exc.__traceback__)
    lines = [
        f"{frame.filename}:{frame.lineno}:in `{frame.name}'"
        for frame in frames
        if not frame.filename.startswith(_PACKAGE_DIR)
    ]
    return lines[::-1]


def digest(raw: bytes) -> str:
    """The content half of an entry id."""
    return hashlib.sha1(raw).hexdigest()[:DIGEST_LENGTH]


_ID_RE = re.compile(rf"^(?:(?P<list>.+):)?(?P<index>\d+)-(?P<digest>[0-9a-f]{{{DIGEST_LENGTH}}})$")


@dataclass(frozen=True, order=True)
class FailureId:
    """Where an entry was seen (list, index) and what it held (digest of its bytes)."""

    list_name: str
    index: int
    digest: str

    def __str__(self) -> str:
        where = "" if self.list_name == layout.FAILED_LIST else f"{self.list_name}:"
        return f"{where}{self.index}-{self.digest}"

    @classmethod
    def parse(cls, text: str | FailureId) -> FailureId:
        """Read ``12-0123456789ab`` or ``low_failed:12-0123456789ab``."""
        if isinstance(text, FailureId):
            return text
        match = _ID_RE.match(text.strip())
        if not match:
            raise ValueError(
                f"{text!r} is not a failure id: expected <index>-<12 hex digits>, e.g. "
                "'12-0123456789ab', optionally after '<list>:' (as 'resque failed list' shows)"
            )
        return cls(match["list"] or layout.FAILED_LIST, int(match["index"]), match["digest"])


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class FailureEntry:
    """One entry of a failure list, readable or not; ``problems`` says what is wrong with it.

    Records from Ruby, Perl (``backtrace`` null, any key order) and us read alike. A record
    with problems is still shown, and can always be removed.
    """

    id: FailureId
    raw: bytes
    record: dict[str, Any] | None  # None when the entry is not a JSON object
    unreadable: str | None = None  # why ``record`` is None

    @classmethod
    def from_raw(cls, list_name: str, index: int, raw: bytes) -> FailureEntry:
        fid = FailureId(list_name, index, digest(raw))
        try:
            record = layout.decode(raw)
        except ValueError as exc:
            return cls(fid, raw, None, f"not JSON ({exc})")
        if not isinstance(record, dict):
            return cls(fid, raw, None, f"a JSON {type(record).__name__}, not an object")
        return cls(fid, raw, record)

    @functools.cached_property
    def problems(self) -> tuple[str, ...]:
        """What would make resque-web fail on this entry, or a retry impossible (lazily:
        listings that do not show it skip the time parsing)."""
        if self.record is None:
            return (self.unreadable or "unreadable",)
        return tuple(_problems(self.record))

    # --- the record's fields, read tolerantly -------------------------------------------

    @property
    def payload(self) -> dict[str, Any] | None:
        payload = (self.record or {}).get("payload")
        return payload if isinstance(payload, dict) else None

    @property
    def class_name(self) -> str | None:
        return _text((self.payload or {}).get("class"))

    @property
    def args(self) -> list[Any] | None:
        """The job's args (``[]`` when missing, as Ruby and Perl run it); None if unreadable."""
        if self.payload is None:
            return None
        args = self.payload.get("args")
        if args is None:
            return []
        return args if isinstance(args, list) else None

    @property
    def queue(self) -> str | None:
        """The queue a retry pushes to: the record's, else that of its ``<q>_failed`` list."""
        queue = _text((self.record or {}).get("queue"))
        return queue or layout.queue_of_failure_list(self.id.list_name)

    @property
    def exception(self) -> str | None:
        return _text((self.record or {}).get("exception"))

    @property
    def error(self) -> str | None:
        error = (self.record or {}).get("error")
        return error if error is None or isinstance(error, str) else layout.encode(error)

    @property
    def backtrace(self) -> list[str]:
        """Perl writes ``null`` for no backtrace; anything not a list reads as empty."""
        trace = (self.record or {}).get("backtrace")
        return [str(line) for line in trace] if isinstance(trace, list) else []

    @property
    def worker(self) -> str | None:
        return _text((self.record or {}).get("worker"))

    @property
    def failed_at_text(self) -> str | None:
        return _text((self.record or {}).get("failed_at"))

    @property
    def retried_at_text(self) -> str | None:
        return _text((self.record or {}).get("retried_at"))

    @property
    def failed_at(self) -> _dt.datetime | None:
        return layout.parse_time(self.failed_at_text)

    @property
    def retried_at(self) -> _dt.datetime | None:
        return layout.parse_time(self.retried_at_text)

    @property
    def retried(self) -> bool:
        return bool((self.record or {}).get("retried_at"))

    @property
    def malformed(self) -> bool:
        return bool(self.problems)

    def requeue_problem(self) -> str | None:
        """Why this entry cannot be retried, or None if it can."""
        if self.record is None:
            return self.problems[0]
        if self.class_name is None:
            return "its payload has no class"
        if self.args is None:
            return 'its payload "args" is not an array'
        if not self.queue:
            return "it names no queue"
        try:
            layout.check_queue_name(self.queue)
        except NoQueueError as exc:
            return str(exc)
        return None

    def job_payload(self) -> str:
        """What a retry pushes: ``{"class","args"}`` only, as Ruby's retry does."""
        problem = self.requeue_problem()
        if problem:
            raise NotRequeueable(f"failure {self.id} cannot be retried: {problem}")
        return layout.encode_job(self.class_name or "", self.args or [])

    def to_json(self) -> dict[str, Any]:
        """A plain dict for ``--json`` and the dashboard (raw text only when unreadable)."""
        data: dict[str, Any] = {
            "id": str(self.id),
            "list": self.id.list_name,
            "index": self.id.index,
            "queue": self.queue,
            "class": self.class_name,
            "args": self.args,
            "exception": self.exception,
            "error": self.error,
            "backtrace": self.backtrace,
            "worker": self.worker,
            "failed_at": self.failed_at_text,
            "retried_at": self.retried_at_text,
            "problems": list(self.problems),
        }
        if self.record is None:
            data["raw"] = layout.raw_text(self.raw)
        return data


def _problems(record: dict[str, Any]) -> Iterator[str]:
    """What would make resque-web fail on this record, or a retry impossible."""
    payload = record.get("payload")
    if not isinstance(payload, dict):
        yield "no payload object"
    else:
        if not isinstance(payload.get("class"), str) or not payload["class"]:
            yield "no payload class"
        if payload.get("args") is not None and not isinstance(payload.get("args"), list):
            yield 'payload "args" is not an array'
    if not layout.is_time(record.get("failed_at")):  # a zone we cannot place is fine
        yield "no readable failed_at"
    if not isinstance(record.get("queue"), str):
        yield "no queue"
    if not isinstance(record.get("worker"), str):
        yield "no worker"
    if record.get("backtrace") is not None and not isinstance(record.get("backtrace"), list):
        yield "backtrace is not an array"


