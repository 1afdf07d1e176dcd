"""The ``resque scheduler`` process: one loop, readable top to bottom.

Each pass (every ``interval`` seconds, sooner when a recurring tick is due):

1. take or renew the master lock (one round trip; contract §5);
2. on becoming master, say so in ``scheduler:master`` (whether it is dynamic; ``state.py``) and
   load the schedules (the YAML file or code, plus ``persistent_schedules``);
3. as master: move the due delayed jobs (one round trip per batch), pick up changed dynamic
   schedules, enqueue the due recurring ticks;
4. sleep until the next pass; TERM, INT and QUIT end the sleep at once.

A standby runs the same loop but only step 1, so it takes over within the lock's TTL (plus
one interval) after the master dies. On TERM/INT/QUIT the batch in hand is finished (each batch
is one atomic script, so there is no half-moved batch) and the lock is released.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import redis
import setproctitle

from resque import __version__
from resque import pidfile as pidfiles
from resque.client import Client
from resque.errors import RedisUnavailable
from resque.scheduler.delayed import Delayed
from resque.scheduler.lock import MasterLock
from resque.scheduler.recurring import Recurring, log_needs_extra
from resque.scheduler.schedule import (
    NeedsExtra,
    ScheduleError,
    Schedules,
    load_schedule_file,
    parse_entry,
    with_class_names,
)
from resque.scheduler.state import record_master
from resque.settings import SchedulerSettings

log = logging.getLogger("resque.scheduler")

_TRANSIENT = (redis.ConnectionError, redis.TimeoutError, RedisUnavailable)


class Scheduler:
    """A scheduler process's state: its lock, its schedules, and whether to stop.

    Configured by ``SchedulerSettings`` (``settings=``, or its fields as keyword arguments):
    ``schedule_file`` is a resque-scheduler YAML file (re-read on USR2), ``dynamic`` follows
    ``persistent_schedules`` while running, ``catch_up`` bounds how old a missed recurring
    tick may be and still be enqueued (once) when this process becomes master; by default, a
    failover's worth (TTL + 2 intervals). ``schedule`` maps names to configs, from code.
    """

    def __init__(
        self,
        resque: Client,
        *,
        settings: SchedulerSettings | None = None,
        schedule: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
        **options: Any,
    ) -> None:
        settings = dataclasses.replace(settings or SchedulerSettings(), **options)
        if settings.interval >= settings.lock_timeout:
            log.warning("interval %gs >= lock timeout %ds: the master lock will lapse between "
                        "polls and masters will alternate", settings.interval,
                        settings.lock_timeout)
        self.settings = settings
        self.resque = resque
        self.redis = resque.redis
        self.keys = resque.keys
        self.schedule_file = Path(settings.schedule_file) if settings.schedule_file else None
        self.local = with_class_names(schedule or {})
        if self.schedule_file:
            self.local.update(load_schedule_file(self.schedule_file))
        self.dynamic = settings.dynamic
        self.interval = float(settings.interval)
        self.batch_size = settings.batch_size
        self.clock = clock
        self.lock = MasterLock(self.redis, self.keys, timeout=settings.lock_timeout,
                               prefix=settings.lock_prefix)
        self.delayed = Delayed(resque)
        self.delayed.worker_name = f"{self.lock.value}:resque-scheduler"
        self.schedules = Schedules(resque)
        catch_up = settings.catch_up
        self.recurring = Recurring(
            resque, env=settings.env, fence=self.lock, clock=clock, delayed=self.delayed,
            catch_up=settings.lock_timeout + 2 * self.interval if catch_up is None else catch_up,
        )
        self.title_suffix = ((f"[{settings.app_name}]" if settings.app_name else "")
                             + (f"[{settings.env}]" if settings.env else ""))
        self.is_master: bool | None = None
        self._stop = threading.Event()
        self._reload = False

    # --- the loop -----------------------------------------------------------------------

    def run(self, *, pidfile: str | None = None) -> None:
        """Run until TERM, INT or QUIT; then release the lock. ``pidfile`` gets the pid once
        the signal handlers are in place."""
        self._title("Starting")
        self._install_signals()
        try:
            with pidfiles.held(pidfile):
                while not self._stop.is_set():
                    wake = self.run_once()
                    self._stop.wait(max(0.0, wake - self.clock()))
        finally:
            self._title("Shutting down")
            try:
                if self.lock.release():
                    log.info("released the master lock")
            except _TRANSIENT as exc:
                log.warning("could not release the master lock (it expires by itself): %s", exc)

    def run_once(self, now: float | None = None) -> float:
        """One pass of the loop; returns when the next pass is due. Never raises for Redis
        outages or bad data: they are logged and the next pass tries again."""
        now = self.clock() if now is None else now
        try:
            self._pass(now)
        except _TRANSIENT as exc:
            log.warning("Redis is unavailable (%s); trying again in %gs", exc, self.interval)
            self.is_master = None
            return now + self.interval
        except Exception:
            log.exception("scheduler pass failed; trying again in %gs", self.interval)
            return now + self.interval
        wake = now + self.interval
        following = self.recurring.next_wakeup() if self.is_master else None
        return min(wake, following) if following is not None else wake

    def _pass(self, now: float) -> None:
        master = self.lock.acquire()
        if master != self.is_master or self._reload:
            self._reload = False
            self._become(master, now)
        elif self.lock.record_missing:
            self._record()
        if not master:
            return
        moved = self.delayed.move_due(
            now, batch_size=self.batch_size, fence=self.lock, should_stop=self._stop.is_set
        )
        if moved.batches:
            log.info("moved %d delayed jobs (%d parked in failed)", moved.moved, moved.failed)
        if moved.not_master or self._stop.is_set():
            return
        if self.dynamic:
            self.update_schedules(now)
        if not self.recurring.fire_due(now):
            self.is_master = None  # lost the lock between two scripts; re-checked next pass

    def _become(self, master: bool, now: float) -> None:
        """Master: say so in ``scheduler:master`` (state.py) and load the schedules.
        Standby: fire nothing, but report bad local schedules once."""
        self._title("Master scheduler" if master else "Child scheduler")
        first = self.is_master is None
        self.is_master = master
        if master:
            self._record()
            self.load_schedules(now)
        else:
            self.recurring.clear()
            if first:
                self._check_local_schedules()

    def _record(self) -> None:
        record_master(self.resque, self.lock, dynamic=self.dynamic, interval=self.interval,
                      lock_prefix=self.settings.lock_prefix)

    # --- schedules ----------------------------------------------------------------------

    def load_schedules(self, now: float | None = None) -> None:
        """Load the local schedules and the stored ones (stored win, as in Ruby)."""
        self._title("Loading Schedule")
        if self.schedule_file:
            try:
                self.local = {**self.local, **load_schedule_file(self.schedule_file)}
            except ScheduleError as exc:
                log.error("%s; keeping the schedules loaded before", exc)
        stored = self.schedules.persistent()
        self.recurring.load({**self.local, **stored}, now)
        if self.dynamic:
            self.redis.delete(self.keys.schedules_changed)
        self._title("Schedules Loaded")

    def update_schedules(self, now: float) -> None:
        """Pick up ``set_schedule``/``remove_schedule`` from any process (Ruby's too)."""
        if not self.redis.scard(self.keys.schedules_changed):
            return
        self._title("Updating schedule")
        names: set[str] = set()
        while True:
            popped: Any = self.redis.spop(self.keys.schedules_changed, 1000)
            if not popped:
                break
            names.update(name.decode() if isinstance(name, bytes) else name for name in popped)
        stored = self.schedules.persistent()
        for name in sorted(names):
            self.recurring.update(name, stored.get(name, self.local.get(name)), now)
        self._title("Schedules Loaded")

    def _check_local_schedules(self) -> None:
        """Report bad local schedules on a standby too (a master reports them as it loads)."""
        unreadable = []
        for name, config in self.local.items():
            try:
                parse_entry(name, config, self.resque.registry)
            except NeedsExtra:
                unreadable.append(name)
            except ScheduleError as exc:
                log.error("%s; it will be skipped", exc)
        log_needs_extra(unreadable)

    # --- signals and titles -------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop after the batch in hand; safe to call from a signal handler."""
        self._stop.set()

    def _install_signals(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            log.info("got %s; shutting down", signal.Signals(signum).name)
            self.shutdown()

        def show(signum: int, frame: FrameType | None) -> None:
            for name, entry in sorted(self.recurring.entries.items()):
                log.warning("schedule %s: %s, next at %s", name, entry.trigger.describe(),
                            time.ctime(self.recurring.next_at.get(name, 0)))

        def reload(signum: int, frame: FrameType | None) -> None:
            self._reload = True  # the next pass reloads the schedules

        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(signum, stop)
        signal.signal(signal.SIGUSR1, show)
        signal.signal(signal.SIGUSR2, reload)

    def _title(self, state: str) -> None:
        log.info("%s", state)
        setproctitle.setproctitle(f"resque-scheduler-{__version__}{self.title_suffix}: {state}")
