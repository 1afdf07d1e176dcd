"""resque-scheduler 5.0's shapes: the delayed item and the master lock's value.

Contract: shared/compat/resque-scheduler-5.0-layout.md. Delayed items are part of key names
(``timestamps:<item>``), so they must be byte-identical to Ruby's ``Resque.encode``. The
scheduler's key names are in ``resque.layout.keys``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from resque import rubyjson
from resque.errors import BadPayload
from resque.layout.codec import encode
from resque.layout.payloads import JOB_ID, JOB_TRACK, encode_job


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


def scheduler_lock_value(hostname: str, pid: int) -> str:
    """The master lock's value, ``<host>:<pid>`` (host reverse-resolved, as Ruby does)."""
    return f"{hostname}:{pid}"


# A delayed item that cannot be queued is parked in ``failed`` under this exception name.
BAD_DELAYED_ITEM = "Resque::Scheduler::BadDelayedItem"
