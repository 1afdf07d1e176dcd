"""Moving due delayed jobs to their queues, and the resque-scheduler hooks run on the way.

This is the scheduler's hot path (``resque.scheduler.delayed`` holds the rest of the
delayed-queue API, which hands its moves to the ``Mover`` here). Each batch is one Lua script
(``lua/delayed_move.lua``) that (1) checks the master lock, (2) checks that the head of
``delayed:<ts>`` still holds exactly the items we read, (3) pushes them to their queues, trims
them off and cleans up an empty timestamp, then (4) reads the next batch. A batch is thus
moved entirely or not at all, and an item can only leave its list once. Python decodes the
items between two calls, since the JSON must be re-encoded byte for byte as Ruby does, which
Lua's cjson cannot.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from resque import jobs, layout, performing, scripts
from resque.errors import NoQueueError
from resque.layout import check_queue_name
from resque.settings import SchedulerSettings

if TYPE_CHECKING:
    from resque.client import Client
    from resque.scheduler.lock import MasterLock

log = logging.getLogger("resque.scheduler")

DEFAULT_BATCH_SIZE = SchedulerSettings.batch_size
MAX_BATCH_SIZE = SchedulerSettings.MAX_BATCH_SIZE

# The scripts, one file each in resque/lua/, whose headers give KEYS, ARGV, the reply and
# why each is atomic.
MOVE_SCRIPT = scripts.source("delayed_move")
ITEM_NOW_SCRIPT = scripts.compose("push_lib", "delayed_item_now")

NOT_MASTER = -2
CONFLICT = -1

When = _dt.datetime | int | float


def to_timestamp(when: When) -> int:
    """Whole Unix seconds of a datetime (naive means local time) or of epoch seconds."""
    if isinstance(when, _dt.datetime):
        return int(when.timestamp())
    if isinstance(when, bool) or not isinstance(when, (int, float)):
        raise TypeError(f"a delayed job's time must be a datetime or epoch seconds, not {when!r}")
    return int(when)


def raw_item(item: str | bytes) -> bytes:
    """An item's bytes, as they are spelled in its ``timestamps:`` key (odd bytes kept)."""
    return item.encode("utf-8", "surrogateescape") if isinstance(item, str) else item


def decoded_or_raw(raw: bytes | str) -> Any:
    """The JSON value of an item, or its text (odd bytes shown as escapes, never lost)."""
    try:
        return layout.decode(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (ValueError, UnicodeError):
        return layout.raw_text(raw)


@dataclass
class MoveResult:
    """What one ``move_due`` did. ``not_master`` means the lock was lost and it stopped."""

    moved: int = 0
    failed: int = 0
    dropped: int = 0
    conflicts: int = 0
    batches: int = 0
    not_master: bool = False


@dataclass
class _Batch:
    timestamp: str
    argv: list[Any] = field(default_factory=list)
    after: list[tuple[Any, list[Any]]] = field(default_factory=list)
    failed: int = 0
    dropped: int = 0

    @property
    def size(self) -> int:
        return len(self.argv) // 3


class Hooks:
    """resque-scheduler's job hooks (``before_schedule``, ``after_enqueue``...), looked up
    once per job class and kind."""

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, str], list[Callable[..., Any]]] = {}

    def _hooks(self, target: Any, kind: str) -> list[Callable[..., Any]]:
        key = (target, kind)
        if key not in self._cache:
            self._cache[key] = list(performing.hooks(target, kind))
        return self._cache[key]

    def run_before(self, target: Any, kind: str, args: Sequence[Any],
                   kwargs: Mapping[str, Any] | None = None) -> bool:
        """Run ``kind`` hooks in name order; False if one returned False. Without
        ``kwargs``, keywords are split off ``args`` as a payload carries them."""
        args, kwargs = _split(args, kwargs)
        results = [hook(*args, **kwargs) for hook in self._hooks(target, kind)]
        return all(result is not False for result in results)

    def run_after(self, target: Any, kind: str, args: Sequence[Any],
                  kwargs: Mapping[str, Any] | None = None) -> None:
        """Run ``kind`` hooks; one that raises is logged, the rest still run."""
        args, kwargs = _split(args, kwargs)
        for hook in self._hooks(target, kind):
            try:
                hook(*args, **kwargs)
            except Exception:
                log.exception("%s hook %r failed", kind, hook)

    def before_queueing(self, target: Any, args: Sequence[Any]) -> bool:
        """Ruby's hooks when a delayed or recurring job reaches its queue: ``before_schedule``
        and ``before_enqueue`` (False from either skips it), ``before_delayed_enqueue``."""
        if not self.run_before(target, "before_schedule", args):
            return False
        self.run_before(target, "before_delayed_enqueue", args)
        return self.run_before(target, "before_enqueue", args)

    def after_queueing(self, target: Any, args: Sequence[Any]) -> None:
        self.run_after(target, "after_enqueue", args)
        self.run_after(target, "after_schedule", args)


class Mover:
    """Moves delayed items to their queues: all that are due, one timestamp, or one item.
    Items that cannot be queued are parked in ``failed``, never lost."""

    def __init__(self, resque: Client, hooks: Hooks, clock: Callable[[], float]) -> None:
        self.resque = resque
        self.keys = resque.keys
        self.hooks = hooks
        self.clock = clock
        self._move = resque.redis.register_script(MOVE_SCRIPT)
        self._item_now = resque.redis.register_script(ITEM_NOW_SCRIPT)
        self.worker_name = "resque-scheduler"  # `worker` of the failure records we write

    def move_due(
        self,
        now: float | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        fence: MasterLock | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        only: int | None = None,
    ) -> MoveResult:
        """Move every item due at or before ``now`` (oldest first) to its queue.

        One round trip per batch (the move script commits the batch read by the previous
        call, then reads the next). With ``fence``, every call first checks that we still
        hold the master lock and renews it; without the lock nothing moves. When
        ``should_stop()`` turns true, the batch in hand is committed and the move returns.
        """
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be within 1..{MAX_BATCH_SIZE}, not {batch_size}")
        limit = int(self.clock() if now is None else now)
        keys = [self.keys.delayed_schedule, self.keys.queues, self.keys.failed,
                fence.key if fence else self.keys.scheduler_master_lock()]
        fixed: list[Any] = [
            fence.value if fence else "", fence.timeout if fence else 0, limit, 0,
            "" if only is None else only,
            # Keys.delayed(ts) is the namespace prefix + delayed_member(ts).
            self.keys.prefix + layout.DELAYED_MEMBER_PREFIX, layout.DELAYED_MEMBER_PREFIX,
            self.keys.timestamps(""), self.keys.queue(""), self.keys.wake_channel(""),
        ]
        result = MoveResult()
        pending: _Batch | None = None
        while True:
            stopping = should_stop()
            fixed[3] = 0 if stopping else batch_size
            commit: list[Any] = ["", 0]
            if pending is not None:
                commit = [pending.timestamp, pending.size, *pending.argv]
            reply = self._move(keys=keys, args=[*fixed, *commit])
            status = int(reply[0])
            if status == NOT_MASTER:
                result.not_master = True
                log.warning("lost the master lock; stopped moving delayed jobs")
                return result
            if pending is not None:
                self._account(pending, status, result)
            if stopping or len(reply) < 2:
                return result
            pending = self._prepare(layout.text(reply[1]), reply[2])

    def queue_now(self, when: When) -> MoveResult:
        """Move every job of one timestamp to its queue now, due or not (atomic batches)."""
        return self.move_due(only=to_timestamp(when))

    def queue_item_now(self, when: When, item: str | bytes) -> int:
        """Move every copy of one raw item at one timestamp to its queue now; returns how
        many. One round trip. An item that cannot be queued goes to ``failed`` instead."""
        timestamp = to_timestamp(when)
        raw = raw_item(item)
        queue, payload, _, _ = self._plan(raw, timestamp, run_hooks=False)
        target = self.keys.queue(queue) if queue else self.keys.failed
        return int(
            self._item_now(
                keys=[self.keys.delayed(timestamp), self.keys.timestamps("").encode() + raw,
                      self.keys.delayed_schedule, self.keys.queues, target],
                args=[raw, layout.delayed_member(timestamp), timestamp, payload, queue,
                      self.keys.wake_channel(queue)],
            )
        )

    def _account(self, batch: _Batch, status: int, result: MoveResult) -> None:
        if status == CONFLICT:
            result.conflicts += 1
            log.info("delayed:%s changed while we read it; reading it again", batch.timestamp)
            return
        result.batches += 1
        result.failed += batch.failed
        result.dropped += batch.dropped
        result.moved += batch.size - batch.failed - batch.dropped
        log.debug("moved %d delayed jobs of %s", batch.size, batch.timestamp)
        for target, args in batch.after:
            self.hooks.after_queueing(target, args)

    def _prepare(self, timestamp: str, raws: Sequence[bytes]) -> _Batch:
        batch = _Batch(timestamp)
        for item in raws:
            raw = raw_item(item)
            queue, payload, target, args = self._plan(raw, int(timestamp), run_hooks=True)
            batch.argv += (raw, queue, payload)
            if not queue:
                if payload:
                    batch.failed += 1
                else:
                    batch.dropped += 1
            elif target is not None:
                batch.after.append((target, args))
        return batch

    def _plan(
        self, raw: bytes, timestamp: int, *, run_hooks: bool
    ) -> tuple[str, str, Any, list[Any]]:
        """``(queue, payload, job, args)`` for one item: queue '' with a failure record parks
        it in ``failed``; queue '' and payload '' drops it (a hook said no)."""
        queue: str | None = None
        try:
            item = layout.decode_delayed_item(raw)
            target = self.resque.registry.get(item.class_name)
            queue = item.queue or (_declared_queue(target) if target is not None else None)
            if queue is None:
                raise NoQueueError(
                    f"job class {item.class_name!r} is not registered here and the item names "
                    "no queue; register the class (--app) or delay it with a queue"
                )
            check_queue_name(queue)
            hooks = self.hooks
            if run_hooks and target is not None and not hooks.before_queueing(target, item.args):
                return "", "", None, item.args
            return queue, item.payload, target, item.args
        except Exception as exc:  # noqa: BLE001 - a bad item is parked, never lost
            return "", self._failure(raw, timestamp, queue, exc), None, []

    def _failure(self, raw: bytes, timestamp: int, queue: str | None, exc: Exception) -> str:
        reason = f"delayed job due at {timestamp} cannot be queued: {exc}"
        log.error("%s; it is kept in the failed list", reason)
        return layout.failure_record(
            payload=decoded_or_raw(raw), exception=layout.BAD_DELAYED_ITEM, error=reason,
            backtrace=[], worker=self.worker_name, queue=queue or "",
        )


def _split(args: Sequence[Any], kwargs: Mapping[str, Any] | None
           ) -> tuple[Sequence[Any], Mapping[str, Any]]:
    return layout.split_kwargs(list(args)) if kwargs is None else (args, kwargs)


def _declared_queue(target: Any) -> str | None:
    try:
        return jobs.queue_of(target)
    except NoQueueError:
        return None
