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

from resque.errors import BadPayload, NoQueueError

# --- JSON -------------------------------------------------------------------------------------

# MultiJson/Oj output: compact, insertion order, raw UTF-8, "/" unescaped, no NaN.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_DECODER = json.JSONDecoder()


# Ruby's json gem writes a float as ``Float#to_s``: the same shortest digits as Python's repr,
# but ``1.0e-07`` where Python writes ``1e-07``, and ``1.0e+15`` for a whole number in [1e15,
# 1e16) where Python writes ``1000000000000000.0``. Output where this regex finds nothing has
# no such float (a match inside a string only costs the slow path).
_FLOAT_RUBY_WRITES_OTHERWISE = re.compile(r"[0-9]e[+-]|[0-9]{16}\.0")


def encode(value: Any) -> str:
    """Encode a value the way Ruby's ``Resque.encode`` does (byte-identical for JSON types):
    Ruby's ``Job.destroy`` and resque-scheduler's ``timestamps:<item>`` find jobs by bytes.

    Raises ``TypeError`` for values JSON cannot represent (sets, objects) and ``ValueError``
    for NaN and infinities.
    """
    text = _ENCODER.encode(value)
    return _encode_floats_as_ruby(value) if _may_hold_python_only_float(text) else text


def _may_hold_python_only_float(text: str) -> bool:
    # Substring tests first: a regex search costs more than encoding a small job.
    return ("e+" in text or "e-" in text or ".0" in text) and bool(
        _FLOAT_RUBY_WRITES_OTHERWISE.search(text))


def _encode_floats_as_ruby(value: Any) -> str:
    """``encode``'s slow path, for the rare value holding a float in exponent notation or a
    whole one in [1e15, 1e16); everything but floats is left to the C encoder."""
    if isinstance(value, float):
        return _ruby_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_encode_floats_as_ruby(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(
            f"{_ENCODER.encode(_json_key(key))}:{_encode_floats_as_ruby(item)}"
            for key, item in value.items()
        ) + "}"
    return _ENCODER.encode(value)


def _json_key(key: Any) -> str:
    """A non-string object key as JSON writes it (``true``, ``5``), floats as Ruby does."""
    if isinstance(key, str):
        return key
    return _ruby_float(key) if isinstance(key, float) else _ENCODER.encode(key)


def _ruby_float(value: float) -> str:
    """``Float#to_s`` of a finite float (``encode`` has refused NaN and infinities already)."""
    text = float.__repr__(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa if '.' in mantissa else mantissa + '.0'}e{exponent}"
    if not (1e15 <= abs(value) < 1e16 and text.endswith(".0")):
        return text
    sign, digits = ("-", text[1:-2]) if value < 0 else ("", text[:-2])
    digits = digits.rstrip("0")
    return f"{sign}{digits[0]}.{digits[1:] or '0'}e+15"


def decode(raw: str | bytes) -> Any:
    """Decode JSON written by Ruby, Perl or us."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="surrogateescape")
    try:
        return _DECODER.decode(raw)
    except RecursionError:  # deeper than the interpreter's stack: bad data, not a crash
        raise ValueError("JSON nested too deeply to decode") from None


def canonical(value: Any) -> str:
    """JSON with sorted keys, to compare payloads written in any key order (Perl's)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def encode_job(class_name: str, args: Sequence[Any]) -> str:
    """The queued job payload: ``{"class":"X","args":[...]}``, key order class then args."""
    if not isinstance(args, (list, tuple)):
        raise TypeError(f"job args must be a list, not {type(args).__name__}")
    payload = encode({"class": class_name, "args": args})  # one C-encoder pass, usually
    # Lone surrogates would only fail inside redis-py; refuse them here, before Redis.
    payload.encode("utf-8")
    return payload


def decode_job(raw: str | bytes | None, queue: str) -> dict[str, Any]:
    """Read a queued payload tolerantly: any key order, a missing ``args`` means ``[]``.

    Raises ``BadPayload`` (naming the queue) when the item is not a JSON object with a string
    ``class`` and an array ``args``; the raw item is kept on the exception.
    """
    if raw is None:
        raise BadPayload(queue, raw, "empty item")
    try:
        job = decode(raw)
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

_BAD_QUEUE = re.compile(r"\s")


def check_queue_name(queue: Any) -> str:
    """Refuse queue names Resque cannot use: empty, not a string, or with whitespace."""
    if not isinstance(queue, str) or not queue:
        raise NoQueueError(f"a queue name must be a non-empty string, not {queue!r}")
    if _BAD_QUEUE.search(queue):
        raise NoQueueError(f"queue name {queue!r} contains whitespace")
    return queue



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


_ZONES = {"UTC": "+0000", "GMT": "+0000", "Z": "+0000"}
_TIME_RE = re.compile(
    r"^\s*(\d{4})[-/](\d{1,2})[-/](\d{1,2})[T ](\d{1,2}):(\d{2}):(\d{2})(\.\d+)?\s*"
    r"(Z|[+-]\d{2}:?\d{2}|[A-Za-z]{1,5})?\s*$",
    re.ASCII,
)


def _from_epoch(seconds: float) -> _dt.datetime | None:
    try:
        return _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc)
    except (OverflowError, OSError, ValueError):  # NaN, infinity, out of time_t range
        return None


def parse_time(value: Any) -> _dt.datetime | None:
    """Parse any time format Ruby, Perl or older tools wrote; ``None`` if it cannot be read.

    Accepts iso8601 (``Z`` or an offset), ``2026/11/27 23:46:22 UTC``, the zone-less
    multi-queue form, ``2026-11-27 23:46:22 +0000`` and epoch seconds (pyres). A missing or
    unknown zone abbreviation is read as local time.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _from_epoch(value)
    if not isinstance(value, str):
        return None
    if re.fullmatch(r"\s*\d+(\.\d+)?\s*", value, re.ASCII):  # not "٠" (an Arabic zero)
        return _from_epoch(float(value))
    match = _TIME_RE.match(value)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = _dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            int(float(fraction) * 1_000_000) if fraction else 0,
        )
    except ValueError:
        return None
    offset = _ZONES.get(zone.upper(), zone) if zone else None
    if offset and offset[0] in "+-":
        digits = offset.replace(":", "")
        delta = _dt.timedelta(hours=int(digits[1:3]), minutes=int(digits[3:5]))
        tz = _dt.timezone(delta if digits[0] == "+" else -delta)
        return moment.replace(tzinfo=tz)
    return moment.astimezone()


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
    if not isinstance(args, (list, tuple)):
        raise TypeError(f"job args must be a list, not {type(args).__name__}")
    item = (
        f'{{"class":{_ENCODER.encode(class_name)},"args":{encode(args)},'
        f'"queue":{_ENCODER.encode(queue)}}}'
    )
    item.encode("utf-8")  # refuse lone surrogates before Redis does
    return item


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

    The payload to queue keeps only class and args (the ``queue`` and any other key are
    dropped). When the item has the canonical shape, the args bytes are copied verbatim, so
    numbers Ruby wrote (``1.0e+20``) reach the queue exactly as Ruby would push them.
    """
    where = "delayed"
    try:  # strict UTF-8: the payload is re-sent to Redis, where lone surrogates cannot go
        source = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        source.encode("utf-8")
        item = _DECODER.decode(source)
    except (ValueError, UnicodeError) as exc:
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
        payload = encode_job(class_name, args)
    return DelayedItem(class_name, args, queue, payload)


@functools.lru_cache(maxsize=1024)
def _item_frame(class_name: str, queue: str | None) -> tuple[str, str]:
    """The text around the args of a canonical item (and of its job payload's head)."""
    head = f'{{"class":{_ENCODER.encode(class_name)},"args":'
    return head, f',"queue":{_ENCODER.encode(queue)}}}'


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
