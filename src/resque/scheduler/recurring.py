"""The master's side of recurring schedules: when each one fires next, and firing a tick.

A tick is enqueued by one script (``lua/schedule_fire.lua``) that checks the master lock and
records the tick, so that a tick is enqueued at most once however many schedulers (ours) run,
and missed ticks are coalesced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from resque import ids, layout, scripts
from resque.scheduler.delayed import Delayed
from resque.scheduler.schedule import (
    Entry,
    NeedsExtra,
    ScheduleError,
    env_matches,
    last_run,
    parse_entry,
)
from resque.scheduler.triggers import CRON_NEEDS, Cron

if TYPE_CHECKING:
    from resque.client import Client
    from resque.scheduler.lock import MasterLock

log = logging.getLogger("resque.scheduler")

FIRE_SCRIPT = scripts.compose("push_lib", "schedule_fire")

FIRED, ALREADY, LOST = 1, 0, -2


def log_needs_extra(names: list[str]) -> None:
    """One line for every cron schedule this install cannot run, rather than one each."""
    if names:
        log.error("not running schedules %s: %s", ", ".join(sorted(names)), CRON_NEEDS)


class Recurring:
    """The schedules a master fires: each one's next time, and firing a tick at most once.

    Missed ticks (downtime, failover) are coalesced: a master that takes over fires each
    schedule at most once for what it missed since its last recorded run, and only if that
    run is within ``catch_up`` seconds; older misses are skipped, as cron and Ruby do.
    """

    def __init__(
        self,
        resque: Client,
        *,
        env: str | None = None,
        catch_up: float = 0.0,
        fence: MasterLock | None = None,
        clock: Callable[[], float] = time.time,
        delayed: Delayed | None = None,
    ) -> None:
        self.resque = resque
        self.keys = resque.keys
        self.delayed = delayed or Delayed(resque)  # for its hooks, the same as delayed jobs'
        self.env = env
        self.catch_up = catch_up
        self.fence = fence
        self.clock = clock
        self.entries: dict[str, Entry] = {}
        self.next_at: dict[str, float] = {}
        self._fire = resque.redis.register_script(FIRE_SCRIPT)

    def load(self, configs: Mapping[str, Any], now: float | None = None) -> None:
        """Replace every schedule, resuming from the runs recorded in Redis (one round trip).
        A bad schedule is logged and skipped; the others load. Cron schedules on an install
        without croniter are named in one line that says what to install."""
        now = self.clock() if now is None else now
        self.entries.clear()
        self.next_at.clear()
        with self.resque.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.schedule_last_tick)
            pipe.hgetall(self.keys.last_enqueued_at)
            ticks, texts = pipe.execute()
        unreadable = []
        for name, config in configs.items():
            key = name.encode()
            try:
                self._add(name, config, now, last_run(ticks.get(key), texts.get(key)))
            except NeedsExtra:
                unreadable.append(name)
        log_needs_extra(unreadable)
        log.info("schedules loaded: %s", ", ".join(sorted(self.entries)) or "none")

    def clear(self) -> None:
        """Forget every schedule (a standby fires nothing)."""
        self.entries.clear()
        self.next_at.clear()

    def update(self, name: str, config: Any | None, now: float | None = None) -> None:
        """A dynamic change: (re)schedule ``name`` from now, or unschedule it (None)."""
        now = self.clock() if now is None else now
        old = self.entries.get(name)
        if config is not None and old is not None and old.config == config:
            return  # flagged but unchanged: keep its cadence
        if old is not None:
            log.info("removing schedule %s", name)
            del self.entries[name]
            self.next_at.pop(name, None)
        if config is not None:
            try:
                self._add(name, config, now, None)
            except NeedsExtra as exc:
                log.error("%s; skipped", exc)

    def _add(self, name: str, config: Any, now: float, last: float | None) -> None:
        """Schedule one entry; a bad one is logged and skipped (``NeedsExtra`` is raised for
        the caller to report once)."""
        if isinstance(config, Mapping) and not env_matches(config, self.env):
            log.info("skipping schedule %s: its env does not include %r", name, self.env)
            return
        try:
            entry = parse_entry(name, config, self.resque.registry)
        except NeedsExtra:
            raise
        except ScheduleError as exc:
            log.error("%s; skipped", exc)
            return
        if entry.target is None:
            log.info("schedule %s: class %s is not registered here; it is queued on %s for "
                     "whichever worker knows it", name, entry.class_name, entry.queue)
        self.entries[name] = entry
        self.next_at[name] = self._first_time(entry, now, last)
        log.info("scheduling %s (%s)", name, entry.trigger.describe())

    def _first_time(self, entry: Entry, now: float, last: float | None) -> float:
        trigger = entry.trigger
        if isinstance(trigger, Cron):
            if last is not None:
                missed = trigger.next_after(last)
                if missed <= now and now - missed <= self.catch_up:
                    return missed
            return trigger.next_after(now)
        if last is not None:
            following = last + trigger.seconds
            if following > now or now - following <= self.catch_up:
                return following
        first = trigger.first_in if trigger.first_in is not None else trigger.seconds
        return now + first

    def next_wakeup(self) -> float | None:
        return min(self.next_at.values(), default=None)

    def fire_due(self, now: float | None = None) -> bool:
        """Enqueue every schedule due at ``now``, once each; False if we lost the lock."""
        now = self.clock() if now is None else now
        for name in sorted(self.next_at, key=self.next_at.__getitem__):
            if self.next_at[name] > now:
                break
            if self._fire_one(self.entries[name], now) == LOST:
                return False
        return True

    def _fire_one(self, entry: Entry, now: float) -> int:
        trigger = entry.trigger
        due = self.next_at[entry.name]
        if isinstance(trigger, Cron):
            tick = trigger.last_at_or_before(due, now)
            self.next_at[entry.name] = trigger.next_after(now)
        else:
            tick = due
            following = due + trigger.seconds
            self.next_at[entry.name] = following if following > now else now + trigger.seconds
        try:
            return self._enqueue(entry, int(tick), now)
        except Exception:  # a failing hook or a bad value: report, keep the other schedules
            log.exception("schedule %s could not be enqueued", entry.name)
            return ALREADY

    def _payload(self, entry: Entry) -> str:
        """The tick's job: the schedule's payload, with an id of its own (unless the client
        writes Ruby's exact payloads)."""
        if not getattr(self.resque, "job_ids", False):
            return entry.payload
        return layout.with_job_id(entry.payload, ids.new_id())

    def _enqueue(self, entry: Entry, tick: int, now: float) -> int:
        delayed = self.delayed
        target, args = entry.target, entry.args
        if target is not None and not delayed.before_queueing(target, args):
            log.info("schedule %s: a hook declined this tick", entry.name)
            return ALREADY
        result = int(self._fire(
            keys=[self.fence.key if self.fence else self.keys.scheduler_master_lock(),
                  self.keys.schedule_last_tick, self.keys.last_enqueued_at, self.keys.queues,
                  self.keys.queue(entry.queue)],
            args=[self.fence.value if self.fence else "", entry.name, tick,
                  layout.last_enqueued_at(now), entry.queue, self._payload(entry),
                  self.keys.wake_channel(entry.queue)],
        ))
        if result == FIRED:
            log.info("queueing %s (%s)", entry.class_name, entry.name)
            if target is not None:
                delayed.after_queueing(target, args)
        elif result == ALREADY:
            log.info("schedule %s: tick %d was already enqueued", entry.name, tick)
        else:
            log.warning("schedule %s not enqueued: this process is no longer master", entry.name)
        return result
