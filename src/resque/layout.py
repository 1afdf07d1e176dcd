"""The wire contract: every Redis key, JSON shape and time format that Ruby resque 3.0 uses.

This is the only module that spells a key name, a payload shape or a timestamp format.
Everything here is written exactly as Ruby writes it (see ``shared/compat`` in the steering
repository) and read tolerantly, so that Perl's key order and older time formats still parse.
Keys that only this project writes (the in-flight lists) are grouped at the end of ``Keys``;
Ruby and Perl never read them.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

from resque import rubyjson, rubytime
from resque.errors import BadPayload, NoQueueError

# --- JSON -------------------------------------------------------------------------------------
# Spelled as Ruby's MultiJson/json gem spells it, floats included (resque.rubyjson).

encode = rubyjson.encode
decode = rubyjson.decode


def canonical(value: Any) -> str:
    """JSON with sorted keys, to compare payloads written in any key order (Perl's)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def encode_job(
    class_name: str, args: Sequence[Any], job_id: str | None = None, track: int | None = None
) -> str:
    """The queued job payload: ``{"class":"X","args":[...]}``, key order class then args, as
    Ruby writes it; then our additions, which Ruby and Perl workers ignore: ``"id"`` (the
    job's id) and ``"track"`` (seconds its status and result are kept after it ends; only
    jobs that asked for a status have it). Without them the bytes are exactly Ruby's."""
    if not isinstance(args, (list, tuple)):
        raise TypeError(f"job args must be a list, not {type(args).__name__}")
    job: dict[str, Any] = {"class": class_name, "args": args}
    if job_id is not None:
        job[JOB_ID] = job_id
        if track is not None:
            job[JOB_TRACK] = track
    payload = encode(job)  # one C-encoder pass (floats spelled as Ruby's, resque.rubyjson)
    # Lone surrogates would only fail inside redis-py; refuse them here, before Redis.
    payload.encode("utf-8")
    return payload


def decode_job(raw: str | bytes | None, queue: str) -> dict[str, Any]:
    """Read a queued payload: any key order, a missing ``args`` means ``[]``; every value
    strict (no NaN, infinity, invalid UTF-8 or lone surrogate reaches a job).

    Raises ``BadPayload`` (naming the queue) when the item is not such a JSON object with a
    string ``class`` and an array ``args``; the raw item is kept on the exception.
    """
    if raw is None:
        raise BadPayload(queue, raw, "empty item")
    try:
        job = rubyjson.decode_strict(raw)
    except ValueError as exc:
        raise BadPayload(queue, raw, f"not valid JSON ({exc})") from None
    if not isinstance(job, dict):
        raise BadPayload(queue, raw, f"a JSON {type(job).__name__}, not an object")
    if not isinstance(job.get("class"), str) or not job["class"]:
        raise BadPayload(queue, raw, 'no "class" string')
    args = job.get("args")
    if args is None:
        job["args"] = []
    elif not isinstance(args, list):
        raise BadPayload(queue, raw, f'"args" is a JSON {type(args).__name__}, not an array')
    return job


# --- Our additions to the payload -------------------------------------------------------------
# Ruby and Perl workers read ``class`` and ``args`` and ignore any other key. Three places drop
# our keys: resque-web's retry (it pushes ``{"class","args"}``), Ruby's resque-scheduler moving a
# delayed job (``Job.create(queue, klass, *args)``), and Perl, which re-encodes in its own order.

JOB_ID = "id"  # the job's id, unique across processes and hosts (resque.ids)
JOB_TRACK = "track"  # seconds to keep the status and result: the worker tracks this job
KWARGS_MARKER = "__kwargs__"
"""Keyword arguments travel as the last element of ``args``: a JSON object whose first key is
``"__kwargs__": true``, then the keywords in call order. Ruby and Perl jobs see it as a trailing
options hash (``{"__kwargs__"=>true, "locale"=>"sv"}``)."""


def with_job_id(payload: str, job_id: str) -> str:
    """A payload of ``encode_job`` without an id, given one (a recurring tick's fixed bytes)."""
    return f'{payload[:-1]},"{JOB_ID}":{encode(job_id)}}}'


def kwargs_argument(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The ``args`` element that carries keyword arguments: the marker, then the keywords."""
    return {KWARGS_MARKER: True, **kwargs}


def split_kwargs(args: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """``(positional, keywords)`` of a payload's args: the last element is the keywords when
    it is an object carrying the marker set to ``true``. Costs one type check per job."""
    if args:
        last = args[-1]
        if type(last) is dict and last.get(KWARGS_MARKER) is True:
            keywords = dict(last)
            del keywords[KWARGS_MARKER]
            return args[:-1], keywords
    return args, {}


def carries_kwargs_marker(value: Any) -> bool:
    """Is this a positional argument that a worker would take for the keywords?"""
    return type(value) is dict and KWARGS_MARKER in value


def text(value: str | bytes) -> str:
    """A name read from Redis (queue, worker id) as text; odd bytes survive a round trip."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def raw_text(raw: str | bytes | None) -> str:
    """A queued item as text, for error messages and failure records (never loses bytes)."""
    if raw is None:
        return ""
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="backslashreplace")
    return raw


# --- Queue names -----------------------------------------------------------------------------

# A worker's -q (and Ruby's QUEUES) splits on commas, strips whitespace, reads "!" first as an
# exclusion and these characters as a pattern: a name holding any of them no worker can select.
_GLOB_CHARACTERS = "*?[]{}"
_UNSELECTABLE = re.compile(r"[\s,*?\[\]{}]")
_SELECTABLE: set[str] = set()  # names accepted already: the per-enqueue check is one lookup


def check_queue_name(queue: Any) -> str:
    """Refuse a queue name no worker could take jobs from: empty, not a string, or a name a
    worker's ``-q`` reads as something else (a pattern, an exclusion, two names)."""
    if type(queue) is str and queue in _SELECTABLE:
        return queue
    if not isinstance(queue, str) or not queue:
        raise NoQueueError(f"a queue name must be a non-empty string, not {queue!r}")
    found = _UNSELECTABLE.search(queue)
    if found or queue.startswith("!"):
        raise NoQueueError(f"queue name {queue!r} {_unselectable_because(found)}")
    if len(_SELECTABLE) < 10_000:
        _SELECTABLE.add(queue)
    return queue


def _unselectable_because(found: re.Match[str] | None) -> str:
    if found is None:
        return "starts with '!', which makes a worker's -q exclude the name instead"
    if found.group() == ",":
        return "contains a comma, which separates queue names in a worker's -q"
    if found.group() in _GLOB_CHARACTERS:
        return (f"contains {found.group()!r}, which makes a worker's -q read it as a pattern "
                "matching other queues")
    return "contains whitespace, which a worker's -q strips or splits on"


# --- Time formats -----------------------------------------------------------------------------


def started_at(now: float | None = None) -> str:
    """``worker:<id>:started``: Ruby's ``Time.now.to_s``, e.g. ``2026-11-27 23:46:22 +0000``."""
    return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(now))


def run_at(now: float | None = None) -> str:
    """``run_at`` of the working-on record: ``Time.now.utc.iso8601``, e.g. ``...T23:46:22Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))


def heartbeat_at(redis_seconds: float) -> str:
    """Heartbeat value: Redis server time as local iso8601, e.g. ``...T23:46:22+00:00``."""
    moment = _dt.datetime.fromtimestamp(int(redis_seconds)).astimezone()
    return moment.isoformat(timespec="seconds")


def failed_at(now: float | None = None) -> str:
    """``failed_at`` and ``retried_at`` (redis backend): ``2026/11/27 23:46:22 UTC``."""
    return time.strftime("%Y/%m/%d %H:%M:%S %Z", time.localtime(now))


def retried_at_multi_queue(now: float | None = None) -> str:
    """``retried_at`` written by the redis_multi_queue backend: no zone, as in Ruby."""
    return time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(now))


# Reading them back (any zone Ruby or Perl writes, and pyres's epoch seconds) is
# resque.rubytime's job: ``parse_time`` gives the instant, ``is_time`` says whether a text
# is a time at all (one whose zone cannot be placed is shown as recorded).
parse_time = rubytime.parse_time
is_time = rubytime.is_time


# --- Worker ids and process titles ------------------------------------------------------------


def worker_id(hostname: str, pid: int, queues: Iterable[str]) -> str:
    """``host:pid:q1,q2``, queues as given (patterns included, ``!exclusions`` left out)."""
    return f"{hostname}:{pid}:{','.join(queues)}"


def parse_worker_id(worker: str) -> tuple[str, int | None, list[str]]:
    """Split a worker id like Ruby's ``split(':', 3)``; a malformed id gives pid ``None``."""
    parts = worker.split(":", 2)
    host = parts[0]
    # ASCII digits only: "²" or "٣" pass isdigit() but are no pid (and int() refuses "²").
    pid = int(parts[1]) if len(parts) > 1 and parts[1].isascii() and parts[1].isdigit() else None
    queues = parts[2].split(",") if len(parts) > 2 and parts[2] else []
    return host, pid, queues


def process_title(version: str, state: str, prefix: str = "") -> str:
    """``resque-<version>: <state>``; Ruby and Perl pruning look for ``resque-<digit>``."""
    return f"{prefix}resque-{version}: {state}"


STARTING_TITLE = "resque: Starting"


def title_waiting(queues: Sequence[str]) -> str:
    return f"Waiting for {','.join(queues)}"


def title_processing(queue: str, since: int, class_name: str) -> str:
    return f"Processing {queue} since {since} [{class_name}]"


def title_forked(pid: int, since: int) -> str:
    return f"Forked {pid} at {since}"


TITLE_PAUSED = "Paused"


# --- Records ----------------------------------------------------------------------------------


def working_on(queue: str, payload_json: str, now: float | None = None) -> str:
    """The ``worker:<id>`` value: ``{"queue":..,"run_at":..,"payload":{..}}``, in that order."""
    return WORKING_ON_TEMPLATE % (encode(queue), encode(run_at(now)), payload_json)


# ``%s`` slots: JSON queue name, JSON run_at, payload JSON. The reserve script fills it in
# Redis with string.format, so the shape is still spelled only here.
WORKING_ON_TEMPLATE = '{"queue":%s,"run_at":%s,"payload":%s}'

# The payload shown in the working-on record for an item that is not a JSON object (the raw
# bytes are kept in the in-flight list and in the failure record).
UNREADABLE_PAYLOAD = '{"class":"Resque::BadPayload","args":[]}'


def unreadable_payload(raw: str | bytes | None) -> dict[str, Any]:
    """The payload recorded in a failure for an item that is not a usable job: its bytes
    kept whole, as the one argument of ``Resque::BadPayload``."""
    return {"class": "Resque::BadPayload", "args": [raw_text(raw)]}


def failure_record(
    *,
    payload: Any,
    exception: str,
    error: str,
    backtrace: Sequence[str],
    worker: str,
    queue: str,
    now: float | None = None,
) -> str:
    """A ``failed`` list element, keys in Ruby's order (``failure/redis.rb``)."""
    return encode(
        {
            "failed_at": failed_at(now),
            "payload": payload,
            "exception": exception,
            "error": error,
            "backtrace": list(backtrace),
            "worker": worker,
            "queue": queue,
        }
    )


# Synthetic failure classes and messages, as Ruby writes them (§2.4 of the contract).
DIRTY_EXIT = "Resque::DirtyExit"
PRUNE_DIRTY_EXIT = "Resque::PruneDeadWorkerDirtyExit"
TERM_EXCEPTION = "Resque::TermException"
STILL_PROCESSING = "Job still being processed"


def child_signal_message(pid: int, signal_name: str, signum: int) -> str:
    return f"Child process received unhandled signal pid {pid} {signal_name} (signal {signum})"


def repeat_offender_message(worker: str, requeued: int) -> str:
    return (
        f"Worker {worker} died while processing this job, which had already been requeued "
        f"{requeued} times after other workers died under it; not requeued again"
    )


def stopped_too_often_message(times: int, limit: int) -> str:
    return (
        f"Stopped by a worker shutdown {times} times without finishing within the grace "
        f"period (requeued {times - 1} times, the limit, RESQUE_STOP_REQUEUE_LIMIT={limit}); "
        "failed instead of requeued, so that it no longer blocks its queue at every restart"
    )


def prune_message(worker: str, class_name: str | None) -> str:
    job = class_name or "<Unknown Job>"
    return f"Worker {worker} did not gracefully exit while processing {job}"


# --- Keys -------------------------------------------------------------------------------------

PAUSE_VALUE = "true"  # pause-all-workers pauses when its value, stripped and lowered, is this


class Keys:
    """Redis key names under a namespace, applied as redis-namespace does (``ns:key``)."""

    __slots__ = ("namespace", "prefix")

    def __init__(self, namespace: str = "resque") -> None:
        self.namespace = namespace
        self.prefix = f"{namespace}:" if namespace else ""

    # Ruby resque 3.0's keys.
    @property
    def queues(self) -> str:
        return self.prefix + "queues"

    def queue(self, name: str) -> str:
        return f"{self.prefix}queue:{name}"

    def queue_name(self, key: str) -> str:
        """The queue name of a ``queue:<q>`` key."""
        return key[len(self.prefix) + len("queue:") :]

    @property
    def workers(self) -> str:
        return self.prefix + "workers"

    def worker(self, worker: str) -> str:
        return f"{self.prefix}worker:{worker}"

    def worker_started(self, worker: str) -> str:
        return f"{self.prefix}worker:{worker}:started"

    @property
    def heartbeat(self) -> str:
        return self.prefix + "workers:heartbeat"

    @property
    def prune_lock(self) -> str:
        return self.prefix + "pruning_dead_workers_in_progress"

    def stat(self, name: str) -> str:
        return f"{self.prefix}stat:{name}"

    def worker_stat(self, name: str, worker: str) -> str:
        return f"{self.prefix}stat:{name}:{worker}"

    @property
    def failed(self) -> str:
        return self.prefix + "failed"

    def failed_queue(self, queue: str) -> str:
        """The redis_multi_queue failure list of a job queue: ``<q>_failed``."""
        return f"{self.prefix}{queue}_failed"

    @property
    def failed_queues(self) -> str:
        return self.prefix + "failed_queues"

    @property
    def pause(self) -> str:
        return self.prefix + "pause-all-workers"

    def failure_list(self, name: str) -> str:
        """The key of a failure list named as in ``failed_queues``: ``failed`` or ``<q>_failed``."""
        return self.prefix + name

    # Additional keys, ours only; Ruby and Perl ignore them.
    def inflight(self, worker: str) -> str:
        """List of ``[queue, payload]`` JSON pairs this worker has reserved and not finished."""
        return f"{self.prefix}inflight:{worker}"

    @property
    def recovered(self) -> str:
        """Hash: payload digest -> how often a dead worker's in-flight job was requeued."""
        return self.prefix + "recovered"

    @property
    def stopped(self) -> str:
        """Ours: payload digest -> times a job was requeued because a shutdown stopped it."""
        return self.prefix + "stopped"

    @property
    def inflight_workers(self) -> str:
        """Set of worker ids that may own an in-flight list (so recovery needs no SCAN)."""
        return self.prefix + "inflight"

    def wake_channel(self, queue: str) -> str:
        """Pub/sub channel our enqueuers publish to after a push, so idle workers wake at once."""
        return f"{self.prefix}wake:{queue}"

    @property
    def wake_pattern(self) -> str:
        return self.prefix + "wake:*"

    # resque-status's keys (github.com/quirkey/resque-status), for jobs that asked for a status.
    def status(self, job_id: str) -> str:
        """The status record of a tracked job: JSON (``status_fields``), expiring."""
        return f"{self.prefix}status:{job_id}"

    @property
    def statuses(self) -> str:
        """Zset of tracked job ids scored by the time of their last status write."""
        return self.prefix + "_statuses"

    def status_channel(self, job_id: str) -> str:
        """Pub/sub channel (ours) told each new status of a job, for ``result()`` waiters."""
        return f"{self.prefix}status-changed:{job_id}"

    @staticmethod
    def keyspace_channel(db: int, key: str) -> str:
        """Redis's own keyspace-notification channel for a key (if the server has them on)."""
        return f"__keyspace@{db}__:{key}"

    # --- resque-scheduler 5.0's keys (shared/compat/resque-scheduler-5.0-layout.md §1) -----

    @property
    def delayed_schedule(self) -> str:
        """Zset of due times: member = score = whole Unix seconds, e.g. ``"1795825807"``."""
        return self.prefix + "delayed_queue_schedule"

    def delayed(self, timestamp: int | str) -> str:
        """List of the delayed items (``delayed_item`` JSON) due at a timestamp."""
        return f"{self.prefix}{delayed_member(timestamp)}"

    def timestamps(self, item: str) -> str:
        """Set of ``delayed:<ts>`` members (no namespace) where this exact item JSON waits.

        The item's bytes are part of the key name; ``timestamps("")`` is the prefix that the
        move script puts before raw items.
        """
        return f"{self.prefix}timestamps:{item}"

    @property
    def persistent_schedules(self) -> str:
        """Hash: schedule name -> config JSON, as the caller ordered it, ``persist`` dropped."""
        return self.prefix + "persistent_schedules"

    @property
    def schedules_changed(self) -> str:
        """Set of schedule names set or removed since the master last looked."""
        return self.prefix + "schedules_changed"

    @property
    def last_enqueued_at(self) -> str:
        """Hash: schedule name -> ``last_enqueued_at`` time (shares ``delayed:``, not a ts)."""
        return self.prefix + "delayed:last_enqueued_at"

    def scheduler_master_lock(self, lock_prefix: str = "") -> str:
        """The master lock. Ruby puts the namespace in the name *and* namespaces it again:
        ``resque:resque:resque_scheduler_master_lock`` (``MyApp`` prefix:
        ``resque:resque:MyApp:resque_scheduler_master_lock``)."""
        middle = f"{lock_prefix}:" if lock_prefix else ""
        return f"{self.prefix}{self.namespace}:{middle}resque_scheduler_master_lock"

    # Scheduler keys that only we write; Ruby ignores them.
    @property
    def schedule_last_tick(self) -> str:
        """Hash: schedule name -> the Unix second of the last tick enqueued (our de-dup)."""
        return self.prefix + "scheduler:last_tick"

    def scheduler_master(self, lock_prefix: str = "") -> str:
        """String: what our master scheduler says of itself (``{"lock":"<host>:<pid>",
        "dynamic":..}`` JSON), true only while ``lock`` is the master lock's value. One per
        lock prefix: ``resque:scheduler:master`` (``MyApp``: ``resque:scheduler:MyApp:master``)."""
        middle = f"{lock_prefix}:" if lock_prefix else ""
        return f"{self.prefix}scheduler:{middle}master"


# --- Status records of tracked jobs (resque-status's layout, plus our fields) -----------------
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


# --- Failure administration (additions for resque.failure and resque.admin) -------------------

FAILED_LIST = "failed"  # the redis backend's list, also the first list every reader shows
FAILED_QUEUE_SUFFIX = "_failed"  # redis_multi_queue: the list of job queue q is ``q_failed``


def failure_list_of_queue(queue: str) -> str:
    """The redis_multi_queue list name (no namespace) of a job queue: ``<q>_failed``."""
    return queue + FAILED_QUEUE_SUFFIX


def queue_of_failure_list(name: str) -> str | None:
    """Ruby's ``Failure.job_queue_name``: the job queue of ``<q>_failed``; None for ``failed``."""
    if name != FAILED_LIST and name.endswith(FAILED_QUEUE_SUFFIX):
        return name[: -len(FAILED_QUEUE_SUFFIX)]
    return None


def retried_at_for(list_name: str, now: float | None = None) -> str:
    """``retried_at`` as Ruby's backend owning that list writes it (zone only for ``failed``)."""
    if list_name == FAILED_LIST:
        return failed_at(now)
    return retried_at_multi_queue(now)


def with_retried_at(raw: bytes, record: dict[str, Any], when: str) -> bytes:
    """The failure record marked as retried, as Ruby's ``requeue`` rewrites it in place.

    Ruby re-encodes the parsed hash with ``retried_at`` set: a new key goes last and an
    existing one keeps its position. When the key is new we splice it in before the closing
    brace, so every other byte (Perl's key order, its 64-bit integers) stays exactly as written.
    ``record`` is ``raw`` decoded (a non-empty JSON object).
    """
    if "retried_at" not in record:
        body = raw.rstrip()
        if body.endswith(b"}") and record:
            return body[:-1] + b',"retried_at":' + encode(when).encode("utf-8") + b"}"
    updated = dict(record)
    updated["retried_at"] = when
    return encode(updated).encode("utf-8", "surrogateescape")


# --- resque-scheduler 5.0: shapes and formats -------------------------------------------------
# Contract: shared/compat/resque-scheduler-5.0-layout.md. Delayed items are part of key names
# (``timestamps:<item>``), so they must be byte-identical to Ruby's ``Resque.encode``.

DELAYED_MEMBER_PREFIX = "delayed:"


def delayed_member(timestamp: int | str) -> str:
    """``delayed:<ts>``: a ``timestamps:`` set member and, namespaced, the list's key."""
    return f"{DELAYED_MEMBER_PREFIX}{int(timestamp)}"


def delayed_member_timestamp(member: str | bytes) -> int | None:
    """The timestamp of a ``delayed:<ts>`` member; ``None`` for anything else."""
    suffix = text(member)[len(DELAYED_MEMBER_PREFIX) :]
    if not text(member).startswith(DELAYED_MEMBER_PREFIX) or not suffix.isdigit():
        return None
    return int(suffix)


def delayed_item(class_name: str, args: Sequence[Any], queue: str) -> str:
    """A delayed item: ``{"class":..,"args":[..],"queue":..}``, in exactly that key order."""
    return delayed_item_of(encode_job(class_name, args), queue)


def delayed_item_of(payload: str, queue: str) -> str:
    """The delayed item of a job payload: the payload with ``"queue"`` added last. Our keys
    (``id``, ``track``) sit between ``args`` and ``queue``, so that the due job's payload is
    the item's text up to ``queue`` (``decode_delayed_item``): they survive our scheduler's
    move, while Ruby's resque-scheduler rebuilds the job from class and args only."""
    return f'{payload[:-1]},"queue":{encode(queue)}}}'


def job_params(args: Any) -> list[Any]:
    """Ruby's ``Array(args)`` with a Hash kept whole: a list stays, ``null`` is ``[]``, an
    object or a scalar becomes ``[it]``. How both delayed items and schedules pass args."""
    if args is None:
        return []
    if isinstance(args, (list, tuple)):
        return list(args)
    return [args]


class DelayedItem:
    """A decoded delayed item and the job payload it becomes when it falls due."""

    __slots__ = ("class_name", "args", "queue", "payload")

    def __init__(
        self, class_name: str, args: list[Any], queue: str | None, payload: str
    ) -> None:
        self.class_name = class_name
        self.args = args
        self.queue = queue
        self.payload = payload

    def __repr__(self) -> str:
        return f"DelayedItem({self.class_name!r}, {self.args!r}, queue={self.queue!r})"


def decode_delayed_item(raw: str | bytes) -> DelayedItem:
    """Read a delayed item written by Ruby, Perl or us; ``BadPayload`` if it is not one.

    The payload to queue is the item without its ``queue``. When the item has the canonical
    shape (``delayed_item_of``), the text before ``queue`` is copied verbatim, so numbers Ruby
    wrote (``1.0e+20``) reach the queue exactly as Ruby would push them, and our ``id`` and
    ``track`` come along; otherwise the payload is re-encoded from class, args and those two.
    """
    where = "delayed"
    try:  # strict: the payload is re-sent to Redis, where lone surrogates cannot go
        source = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        item = rubyjson.decode_strict(source)
    except ValueError as exc:
        raise BadPayload(where, raw, f"not valid JSON ({exc})") from None
    if not isinstance(item, dict):
        raise BadPayload(where, raw, f"a JSON {type(item).__name__}, not an object")
    class_name = item.get("class")
    if not isinstance(class_name, str) or not class_name:
        raise BadPayload(where, raw, 'no "class" string')
    queue = item.get("queue")
    if queue is not None and (not isinstance(queue, str) or not queue):
        raise BadPayload(where, raw, f'"queue" is {queue!r}, not a queue name')
    raw_args = item.get("args")
    args = job_params(raw_args)
    payload: str | None = None
    if isinstance(raw_args, list):
        head, tail = _item_frame(class_name, queue)
        if source.startswith(head) and source.endswith(tail) and len(source) > len(head + tail):
            payload = f"{head}{source[len(head) : -len(tail)]}}}"
    if payload is None:
        job_id, track = item.get(JOB_ID), item.get(JOB_TRACK)
        payload = encode_job(class_name, args, job_id if isinstance(job_id, str) else None,
                             track if type(track) is int else None)
    return DelayedItem(class_name, args, queue, payload)


@functools.lru_cache(maxsize=1024)
def _item_frame(class_name: str, queue: str | None) -> tuple[str, str]:
    """The text around the args of a canonical item (and of its job payload's head)."""
    head = f'{{"class":{encode(class_name)},"args":'
    return head, f',"queue":{encode(queue)}}}'


def last_enqueued_at(now: float | None = None) -> str:
    """``delayed:last_enqueued_at`` values: Ruby's local ``Time#to_s``, as ``started_at``."""
    return started_at(now)


def scheduler_lock_value(hostname: str, pid: int) -> str:
    """The master lock's value, ``<host>:<pid>`` (host reverse-resolved, as Ruby does)."""
    return f"{hostname}:{pid}"


# A delayed item that cannot be queued is parked in ``failed`` under this exception name.
BAD_DELAYED_ITEM = "Resque::Scheduler::BadDelayedItem"


# --- Dashboard metrics (resque.metrics, resque.web): ours only; Ruby and Perl never read them ---
# Two sorted sets of samples, one per resolution. Score: the start of the sample's time bucket
# (Unix seconds), so one bucket holds at most one sample whoever writes it. Member: one JSON
# object of cumulative counters and gauges, filled in Redis by ``string.format`` from the
# template below. Each key expires (and is trimmed) after its retention, so a farm that stops
# sampling leaves nothing behind.


def metrics_key(keys: Keys, tier: str) -> str:
    """The sample set of one resolution tier (``recent`` or ``history``)."""
    return f"{keys.prefix}metrics:{tier}"


# ``%d`` slots: time, stat:processed, stat:failed, entries in every failure list, jobs pending
# in every queue, registered workers, working workers; ``%s``: the busiest queues as a JSON
# array of ``[name, length]`` pairs, longest first.
METRICS_SAMPLE_TEMPLATE = (
    '{"t":%d,"processed":%d,"failed":%d,"failures":%d,"pending":%d,'
    '"workers":%d,"working":%d,"queues":%s}'
)


def decode_metrics_sample(raw: str | bytes) -> dict[str, Any] | None:
    """A sample as written from the template; None for anything else (never raises)."""
    try:
        sample = decode(raw)
    except ValueError:
        return None
    if not isinstance(sample, dict) or not isinstance(sample.get("t"), int):
        return None
    queues = sample.get("queues")
    sample["queues"] = [
        (text(pair[0]), int(pair[1]))
        for pair in (queues if isinstance(queues, list) else [])
        if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], (int, float))
    ]
    for name in ("processed", "failed", "failures", "pending", "workers", "working"):
        if not isinstance(sample.get(name), (int, float)):
            sample[name] = 0
    return sample


def scan_pattern(keys: Keys) -> str:
    """A ``SCAN MATCH`` pattern for every key under the namespace (glob characters escaped)."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", keys.prefix) + "*"


# --- Job durations and queue marks (resque.durations, resque.prometheus): ours only -------------
# ``metrics:durations`` is a hash of cumulative counters, one field per (slot, queue, class):
# the field is ``<slot> <JSON [queue, class]>``; a slot is ``b:<le>`` (jobs whose duration was
# at most ``le`` seconds and more than the bound below it, Prometheus's ``le`` text: ``0.005``,
# ``+Inf``), ``sum_us`` (their total duration in microseconds, an integer so HINCRBY never
# rounds) or ``failed`` (how many of them failed). Workers only ever add to it.
# ``metrics:queue_marks`` is a hash: queue name -> JSON array of ``[seen, item, position]``
# marks, the jobs a scrape saw at the tail (or head) of that queue, oldest first.

DURATION_SLOT_PREFIX = "b:"
DURATION_SUM = "sum_us"
DURATION_FAILED = "failed"


def job_durations_key(keys: Keys) -> str:
    """The hash of job duration histograms by queue and class."""
    return f"{keys.prefix}metrics:durations"


def queue_marks_key(keys: Keys) -> str:
    """The hash of each queue's marks, from which the age of its oldest job is estimated."""
    return f"{keys.prefix}metrics:queue_marks"


def duration_field(slot: str, queue: str, class_name: str) -> str:
    """A field of ``metrics:durations``: ``b:0.25 ["mail","Mailer::Welcome"]``."""
    return f"{slot} {encode([queue, class_name])}"


def parse_duration_field(field: str | bytes) -> tuple[str, str, str] | None:
    """``(slot, queue, class)`` of a ``metrics:durations`` field; None if it is not one."""
    slot, _, series = text(field).partition(" ")
    try:
        names = decode(series)
    except ValueError:
        return None
    if not (isinstance(names, list) and len(names) == 2 and all(isinstance(n, str) for n in names)):
        return None
    return slot, names[0], names[1]


# --- policies: retries and timeouts -------------------------------------------------------------
# resque-retry's keys, so that a Ruby shop running resque-retry (and its resque-web tab) sees the
# same state: ``resque-retry:<class>:<sha1 of the args joined by '-'>`` holds the 0-based number
# of the attempt last started (absent before a first failure), and ``failure-<that key>`` the
# failure record of the attempt that failed last, while a retry is pending. Our own index of
# pending retries, ``retries:due``, scores each retry key by the time its next attempt is due.

RETRY_KEY_PREFIX = "resque-retry"
RETRY_FAILURE_PREFIX = "failure-"
RETRY_KEY_GRACE = 7 * 24 * 3600  # a retry key outlives its next attempt's due time by this
_RUBY_SPACE = re.compile(r"[ \t\r\n\f\v]")  # Ruby's /\s/: ASCII whitespace only
_INSPECT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r",
                    "\f": "\\f", "\v": "\\v", "\b": "\\b", "\a": "\\a", "\x1b": "\\e"}


def ruby_join(values: Sequence[Any], separator: str) -> str:
    """Ruby's ``Array#join`` of JSON values: nested arrays joined in place, ``nil`` as '',
    a float as ``Float#to_s``, an object as Ruby 3.1's ``Hash#inspect``."""
    return separator.join(_join_part(value, separator) for value in values)


def _join_part(value: Any, separator: str) -> str:
    if isinstance(value, list):
        return ruby_join(value, separator)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return _ruby_inspect(value)


def _ruby_inspect(value: Any) -> str:
    if value is None:
        return "nil"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float):
        return rubyjson.ruby_float(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + "".join(_inspect_char(value, i) for i in range(len(value))) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_ruby_inspect(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_ruby_inspect(k)}=>{_ruby_inspect(v)}"
                               for k, v in value.items()) + "}"
    return str(value)


def _inspect_char(text_value: str, i: int) -> str:
    char = text_value[i]
    if char in _INSPECT_ESCAPES:
        return _INSPECT_ESCAPES[char]
    if char == "#" and text_value[i + 1 : i + 2] in ("{", "$", "@"):
        return "\\#"
    if char < " " or char == "\x7f":
        return f"\\x{ord(char):02X}"
    return char


def retry_identifier(args: Sequence[Any]) -> str | None:
    """resque-retry's ``retry_identifier``: SHA1 of the args joined by ``-``; None for none."""
    import hashlib

    joined = ruby_join(args, "-")
    return hashlib.sha1(joined.encode("utf-8", "surrogatepass")).hexdigest() if joined else None


def retry_key(keys: Keys, class_name: str, args: Sequence[Any]) -> str:
    """resque-retry's ``redis_retry_key``, namespaced: ``resque:resque-retry:<class>:<sha1>``
    (whitespace removed, as Ruby's ``gsub(/\\s/, '')``)."""
    parts = [RETRY_KEY_PREFIX, class_name, retry_identifier(args)]
    return keys.prefix + _RUBY_SPACE.sub("", ":".join(p for p in parts if p is not None))


def retry_failure_key(keys: Keys, key: str) -> str:
    """``failure-<retry key>`` (MultipleWithRetrySuppression's), namespaced like it."""
    return keys.prefix + RETRY_FAILURE_PREFIX + key[len(keys.prefix) :]


def retry_class_of(keys: Keys, key: str) -> str:
    """The job class named in a retry key (its digest, when there is one, is 40 hex digits)."""
    body = key[len(keys.prefix) + len(RETRY_KEY_PREFIX) + 1 :]
    head, _, tail = body.rpartition(":")
    return head if head and len(tail) == 40 else body


def retries_due_key(keys: Keys) -> str:
    """Ours: the sorted set of pending retries, retry key scored by its due time."""
    return f"{keys.prefix}retries:due"


def with_attempt(record: str, attempt: int, attempts: int) -> str:
    """A failure record that says which attempt failed, ``"attempt":2,"max_attempts":5``
    added last (Ruby, Perl and resque-web ignore keys they do not know)."""
    return f'{record[:-1]},"attempt":{int(attempt)},"max_attempts":{int(attempts)}}}'


def timeout_message(seconds: float) -> str:
    """The error of a job that ran past its timeout (``Resque::JobTimeout``)."""
    return f"the job ran past its timeout of {seconds:g} s"


JOB_RETRY = "retry"  # payload key: one call's retry policy (task.options(retry=...)), as JSON
JOB_TIMEOUT = "timeout"  # payload key: one call's timeout in seconds (task.options(timeout=))


def with_policies(payload: str, policies: dict[str, Any]) -> str:
    """A payload with one call's policies added last (after ``id`` and ``track``), where Ruby
    and Perl workers ignore them; resque-scheduler's mover drops them, as it drops ``id``."""
    if not policies:
        return payload
    return f"{payload[:-1]},{encode(policies)[1:]}"
