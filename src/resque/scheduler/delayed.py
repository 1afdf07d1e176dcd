"""Delayed jobs in resque-scheduler's layout: enqueue them, inspect them, remove them; moving
the due ones to their queues is ``resque.scheduler.mover``'s (``Delayed.move_due`` hands over).

The layout is Ruby's (shared/compat/resque-scheduler-5.0-layout.md §1, §2, §6): a job due at
second ``ts`` is an item ``{"class":..,"args":..,"queue":..}`` in the list ``delayed:<ts>``;
``ts`` is in the zset ``delayed_queue_schedule``; the set ``timestamps:<item>`` lists where
the item waits. So jobs delayed by Ruby are moved by us, and the reverse.

No third-party dependency: delayed jobs work with the core install.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from resque import arguments, jobs, layout, scripts, tracing
from resque.errors import BadPayload
from resque.handles import Job
from resque.scheduler.mover import (
    CONFLICT,
    DEFAULT_BATCH_SIZE,
    ITEM_NOW_SCRIPT,
    MAX_BATCH_SIZE,
    MOVE_SCRIPT,
    NOT_MASTER,
    Hooks,
    Mover,
    MoveResult,
    When,
    decoded_or_raw,
    raw_item,
    to_timestamp,
)

if TYPE_CHECKING:
    from resque.client import Client, Prepared
    from resque.scheduler.lock import MasterLock

# The mover's names stay importable from here, where they were before it had a module.
__all__ = [
    "CONFLICT", "DEFAULT_BATCH_SIZE", "DELAY_SCRIPT", "ITEM_NOW_SCRIPT", "MAX_BATCH_SIZE",
    "MOVE_SCRIPT", "NOT_MASTER", "REMOVE_AT_SCRIPT", "REMOVE_SCRIPT", "Delayed",
    "DelayedTimestamp", "MoveResult", "When", "to_seconds", "to_timestamp",
]

# The scripts, one file each in resque/lua/, whose headers give KEYS, ARGV, the reply and
# why each is atomic.
DELAY_SCRIPT = scripts.source("delayed_add")
REMOVE_SCRIPT = scripts.source("delayed_remove")
REMOVE_AT_SCRIPT = scripts.source("delayed_remove_at")


def to_seconds(delay: float | _dt.timedelta) -> float:
    if isinstance(delay, _dt.timedelta):
        return delay.total_seconds()
    if isinstance(delay, bool) or not isinstance(delay, (int, float)):
        raise TypeError(f"enqueue_in takes a number of seconds or a timedelta, not {delay!r}")
    return float(delay)


@dataclass
class DelayedTimestamp:
    """One row of the dashboard's delayed tab: a due time, how many jobs, the first one."""

    timestamp: int
    size: int
    first: dict[str, Any] | None


class Delayed:
    """The delayed-job API of one client (also reachable as thin methods on ``resque.Resque``:
    ``enqueue_at``, ``enqueue_in``, ``remove_delayed``...)."""

    def __init__(self, resque: Client, *, clock: Callable[[], float] = time.time) -> None:
        self.resque = resque
        self.redis = resque.redis
        self.keys = resque.keys
        self.clock = clock
        self._delay = self.redis.register_script(DELAY_SCRIPT)
        self._remove = self.redis.register_script(REMOVE_SCRIPT)
        self._remove_at = self.redis.register_script(REMOVE_AT_SCRIPT)
        self.hooks = Hooks()
        self.mover = Mover(resque, self.hooks, clock)

    # --- enqueueing ---------------------------------------------------------------------

    def enqueue_at(self, when: When, job: Any, /, *args: Any, **kwargs: Any) -> Job[Any] | None:
        """Enqueue ``job`` on its own queue at ``when``; its handle, or None if a
        ``before_schedule`` hook said no. A time already past enqueues at once, as Ruby does."""
        return self.enqueue_at_with_queue(self._queue_of(job), when, job, *args, **kwargs)

    def enqueue_at_with_queue(self, queue: str, when: When, job: Any, /, *args: Any,
                              **kwargs: Any) -> Job[Any] | None:
        """Like ``enqueue_at``, on a named queue."""
        return self.enqueue_prepared(self.resque.prepare(job, args, kwargs, queue=queue), when)

    def enqueue_prepared(self, prepared: Prepared, when: When) -> Job[Any] | None:
        """Delay a call the client prepared (its payload encoded, with our id and track keys
        between ``args`` and ``queue`` in the item). One round trip: a script doing Ruby's
        RPUSH delayed:<ts> + SADD timestamps:<item> + ZADD delayed_queue_schedule, pipelined
        after the status record of a tracked job."""
        if tracing.tracer is not None:
            with tracing.tracer.sending(prepared, self.resque):
                return self._enqueue_prepared(prepared, when)
        return self._enqueue_prepared(prepared, when)

    def _enqueue_prepared(self, prepared: Prepared, when: When) -> Job[Any] | None:
        timestamp = to_timestamp(when)
        target, args, kwargs = prepared.target, prepared.args, prepared.kwargs
        if not self.run_before_hooks(target, "before_schedule", args, kwargs):
            return None
        if self.resque.inline or timestamp <= int(self.clock()):
            handle = self.resque.submit(prepared)
        else:
            item = layout.delayed_item_of(prepared.payload, prepared.queue)
            with self.redis.pipeline(transaction=False) as pipe:
                if prepared.job_id is not None and prepared.track is not None:
                    self.resque.statuses.queued(
                        prepared.job_id, prepared.track, name=prepared.name,
                        queue=prepared.queue, payload=prepared.payload, due=timestamp,
                        client=pipe)
                self._delay(
                    keys=[self.keys.delayed(timestamp), self.keys.timestamps(item),
                          self.keys.delayed_schedule],
                    args=[item, layout.delayed_member(timestamp), timestamp], client=pipe)
                pipe.execute()
            handle = Job(self.resque, prepared.job_id, prepared.queue, prepared.name,
                         prepared.payload, prepared.track is not None, due=timestamp)
        self.run_after_hooks(target, "after_schedule", args, kwargs)
        return handle

    def enqueue_in(self, delay: float | _dt.timedelta, job: Any, /, *args: Any,
                   **kwargs: Any) -> Job[Any] | None:
        """Enqueue ``job`` on its own queue ``delay`` seconds from now."""
        return self.enqueue_at(self.clock() + to_seconds(delay), job, *args, **kwargs)

    def enqueue_in_with_queue(self, queue: str, delay: float | _dt.timedelta, job: Any, /,
                              *args: Any, **kwargs: Any) -> Job[Any] | None:
        return self.enqueue_at_with_queue(queue, self.clock() + to_seconds(delay), job, *args,
                                          **kwargs)

    # --- removing -----------------------------------------------------------------------

    def remove_delayed(self, job: Any, *args: Any, **kwargs: Any) -> int:
        """Remove every delayed copy of ``job(*args)`` on the job's own queue; returns how
        many. Items delayed to another queue need ``remove_delayed_in_queue`` (they are
        different bytes, hence a different ``timestamps:`` set), as in Ruby.

        Ruby finds the item by its exact bytes, in one round trip, and so misses items that
        carry our job id; with ``job_ids`` on, those are found by reading the schedule
        (``find_delayed_selection``). A handle's ``cancel()`` removes one job in one trip."""
        return self.remove_delayed_in_queue(job, self._queue_of(job), *args, **kwargs)

    def remove_delayed_in_queue(self, job: Any, queue: str, *args: Any, **kwargs: Any) -> int:
        return sum(self.remove_item(raw) for raw in self._items_of(job, queue, args, kwargs))

    def _items_of(self, job: Any, queue: str, args: Sequence[Any],
                  kwargs: Mapping[str, Any]) -> list[bytes]:
        """The raw items of ``job(*args, **kwargs)`` on ``queue``: Ruby's exact bytes, and
        (client with ``job_ids``) the copies whose bytes differ by our id."""
        name, packed = jobs.class_name(job), arguments.pack(args, kwargs)
        exact = raw_item(layout.delayed_item(name, packed, queue))
        if not self.resque.job_ids:
            return [exact]
        wanted = layout.canonical(packed)

        def same(item: layout.DelayedItem) -> bool:
            return item.queue == queue and layout.canonical(item.args) == wanted

        return [exact, *(raw for raw in self._find(name, same) if raw != exact)]

    def remove_item(self, item: str | bytes) -> int:
        """Remove every copy of one raw item from every timestamp; returns how many."""
        raw = raw_item(item)
        return int(self._remove(keys=[self._timestamps_key(raw)], args=[raw, self.keys.prefix]))

    def _timestamps_key(self, raw: bytes) -> bytes:
        # The item's exact bytes are part of the key name, even when they are not UTF-8.
        return self.keys.timestamps("").encode() + raw

    def remove_delayed_selection(
        self, predicate: Callable[[list[Any]], bool], job: Any = None
    ) -> int:
        """Remove delayed jobs (of ``job``'s class, or any) whose args satisfy ``predicate``."""
        found = set(self.find_delayed_selection(predicate, job))
        return sum(self.remove_item(raw) for raw in found)

    def find_delayed_selection(
        self, predicate: Callable[[list[Any]], bool], job: Any = None
    ) -> list[bytes]:
        """Raw items (of ``job``'s class, or any) whose args satisfy ``predicate``.

        Reads every timestamp: pipelined LRANGEs, 100 timestamps per round trip.
        """
        wanted = jobs.class_name(job) if job is not None else None
        return self._find(wanted, lambda item: predicate(item.args))

    def _find(self, name: str | None, keep: Callable[[layout.DelayedItem], bool]) -> list[bytes]:
        found: list[bytes] = []
        for raw in self._all_items():
            try:
                item = layout.decode_delayed_item(raw)
            except BadPayload:
                continue
            if (name is None or item.class_name == name) and keep(item):
                found.append(raw)
        return found

    def remove_delayed_job_from_timestamp(self, when: When, job: Any, *args: Any,
                                          **kwargs: Any) -> int:
        """Remove ``job(*args)`` (on the job's queue) from one timestamp only."""
        items = self._items_of(job, self._queue_of(job), args, kwargs)
        return sum(self.remove_item_at(when, raw) for raw in items)

    def remove_item_at(self, when: When, item: str | bytes) -> int:
        """Remove every copy of one raw item from one timestamp; one round trip."""
        timestamp, raw = to_timestamp(when), raw_item(item)
        return int(
            self._remove_at(
                keys=[self.keys.delayed(timestamp), self._timestamps_key(raw),
                      self.keys.delayed_schedule],
                args=[raw, layout.delayed_member(timestamp), timestamp],
            )
        )

    def reset_delayed_queue(self) -> None:
        """Delete every delayed job (Ruby's ``reset_delayed_queue``)."""
        found: Any = self.redis.zrange(self.keys.delayed_schedule, 0, -1)
        for timestamp in found:
            key = self.keys.delayed(layout.text(timestamp))
            items = self.redis.lrange(key, 0, -1)
            self.redis.delete(key, *(self._timestamps_key(raw_item(raw)) for raw in set(items)))
        self.redis.delete(self.keys.delayed_schedule)

    # --- reading ------------------------------------------------------------------------

    def delayed_queue_peek(self, start: int, count: int) -> list[int]:
        """Timestamps in order, ``count`` from ``start``."""
        found: Any = self.redis.zrange(self.keys.delayed_schedule, start, start + count - 1)
        return [int(ts) for ts in found]

    def delayed_queue_schedule_size(self) -> int:
        """How many timestamps (not jobs) are scheduled."""
        return int(self.redis.zcard(self.keys.delayed_schedule))

    def delayed_timestamp_size(self, when: When) -> int:
        return int(self.redis.llen(self.keys.delayed(to_timestamp(when))))

    def delayed_timestamp_peek(self, when: When, start: int = 0, count: int = 1) -> list[Any]:
        """Decoded items at one timestamp (a raw string where an item is not JSON)."""
        raws = self.redis.lrange(self.keys.delayed(to_timestamp(when)), start, start + count - 1)
        return [decoded_or_raw(raw) for raw in raws]

    def next_delayed_timestamp(self, now: float | None = None) -> int | None:
        """The oldest timestamp due at ``now`` (default: the clock), or None."""
        limit = int(self.clock() if now is None else now)
        found: Any = self.redis.zrangebyscore(self.keys.delayed_schedule, "-inf", limit, 0, 1)
        return int(found[0]) if found else None

    def scheduled_at(self, job: Any, *args: Any, queue: str | None = None,
                     **kwargs: Any) -> list[int]:
        """The timestamps where ``job(*args)`` waits (on ``queue``, default the job's own)."""
        queue = queue or self._queue_of(job)
        found: set[int] = set()
        for raw in self._items_of(job, queue, args, kwargs):
            members: Any = self.redis.smembers(self._timestamps_key(raw))
            found.update(ts for ts in map(layout.delayed_member_timestamp, members)
                         if ts is not None)
        return sorted(found)

    def is_delayed(self, job: Any, *args: Any, queue: str | None = None, **kwargs: Any) -> bool:
        """Ruby's ``delayed?``."""
        return bool(self.scheduled_at(job, *args, queue=queue, **kwargs))

    def count_all_scheduled_jobs(self) -> int:
        """Delayed jobs in all. One ZRANGE, then LLENs pipelined 1000 per round trip."""
        total = 0
        for chunk in self._timestamp_chunks(1000):
            with self.redis.pipeline(transaction=False) as pipe:
                for timestamp in chunk:
                    pipe.llen(self.keys.delayed(timestamp))
                total += sum(int(n) for n in pipe.execute())
        return total

    def _timestamp_chunks(self, size: int) -> Iterable[list[str]]:
        found: Any = self.redis.zrange(self.keys.delayed_schedule, 0, -1)
        timestamps = [layout.text(ts) for ts in found]
        for start in range(0, len(timestamps), size):
            yield timestamps[start : start + size]

    def _all_items(self) -> Iterable[bytes]:
        for chunk in self._timestamp_chunks(100):
            with self.redis.pipeline(transaction=False) as pipe:
                for timestamp in chunk:
                    pipe.lrange(self.keys.delayed(timestamp), 0, -1)
                for items in pipe.execute():
                    yield from items

    # --- the dashboard's delayed tab ----------------------------------------------------

    def page(self, start: int = 0, count: int = 20) -> tuple[int, list[DelayedTimestamp]]:
        """``(timestamps in all, rows)``: one page of the delayed tab, oldest first.

        Two round trips: ZCARD + ZRANGE, then LLEN + LINDEX 0 of each row, pipelined.
        """
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self.keys.delayed_schedule)
            pipe.zrange(self.keys.delayed_schedule, start, start + count - 1)
            total, found = pipe.execute()
        timestamps = [int(ts) for ts in found]
        with self.redis.pipeline(transaction=False) as pipe:
            for timestamp in timestamps:
                pipe.llen(self.keys.delayed(timestamp))
                pipe.lindex(self.keys.delayed(timestamp), 0)
            replies = pipe.execute()
        rows = []
        for index, timestamp in enumerate(timestamps):
            size, first = int(replies[2 * index]), replies[2 * index + 1]
            shown = decoded_or_raw(first) if first is not None else None
            first_job = shown if isinstance(shown, dict) else None
            rows.append(DelayedTimestamp(timestamp, size, first_job))
        return int(total), rows

    # --- moving due jobs (resque.scheduler.mover) -----------------------------------------

    def move_due(
        self,
        now: float | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        fence: MasterLock | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        only: int | None = None,
    ) -> MoveResult:
        """Move every item due at or before ``now`` (oldest first) to its queue: one round
        trip per batch, each batch atomic; with ``fence``, only while we hold the master
        lock (``Mover.move_due``)."""
        return self.mover.move_due(now, batch_size=batch_size, fence=fence,
                                   should_stop=should_stop, only=only)

    def queue_now(self, when: When) -> MoveResult:
        """Move every job of one timestamp to its queue now, due or not (atomic batches)."""
        return self.mover.queue_now(when)

    def queue_item_now(self, when: When, item: str | bytes) -> int:
        """Move every copy of one raw item at one timestamp to its queue now; returns how
        many. One round trip. An item that cannot be queued goes to ``failed`` instead."""
        return self.mover.queue_item_now(when, item)

    @property
    def worker_name(self) -> str:
        """The ``worker`` of the failure records written for items that cannot be queued."""
        return self.mover.worker_name

    @worker_name.setter
    def worker_name(self, name: str) -> None:
        self.mover.worker_name = name

    # --- hooks (resque.scheduler.mover.Hooks) --------------------------------------------

    def run_before_hooks(self, target: Any, kind: str, args: Sequence[Any],
                         kwargs: Mapping[str, Any] | None = None) -> bool:
        """Run ``kind`` hooks in name order; False if one returned False."""
        return self.hooks.run_before(target, kind, args, kwargs)

    def run_after_hooks(self, target: Any, kind: str, args: Sequence[Any],
                        kwargs: Mapping[str, Any] | None = None) -> None:
        self.hooks.run_after(target, kind, args, kwargs)

    def before_queueing(self, target: Any, args: Sequence[Any]) -> bool:
        """Ruby's hooks when a delayed or recurring job reaches its queue (False: skip it)."""
        return self.hooks.before_queueing(target, args)

    def after_queueing(self, target: Any, args: Sequence[Any]) -> None:
        self.hooks.after_queueing(target, args)

    def _queue_of(self, job: Any) -> str:
        return jobs.queue_of(job, self.resque.registry)
