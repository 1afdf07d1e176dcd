"""Is a scheduler running, does it follow stored schedules, and are delayed jobs late?

What ``resque delayed``, ``resque schedule``, ``resque stats`` and the dashboard warn about,
read from two keys:

* the master lock (Ruby's key, shared with resque-scheduler; ``lock.py``): its value is the
  master's ``<host>:<pid>``. No lock, no master: nothing moves delayed jobs or fires ticks.
* ``scheduler:master`` (ours, ``Keys.scheduler_master``): what our master says of itself
  when it takes the lock: ``{"lock":"<host>:<pid>","dynamic":true,"interval":5.0,...}``.
  It expires with the lock (the same TTL, renewed with it), and describes the master only
  while ``lock`` is the lock's value, so a stale record (a master stopped, a Ruby master
  since) says nothing. Ruby's resque-scheduler writes no such
  record and nothing else in Redis tells whether it runs with ``DYNAMIC_SCHEDULE`` (its
  process title and lock value do not say), so for a Ruby master ``dynamic`` is unknown.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from resque import __version__, layout
from resque.settings import SchedulerSettings

if TYPE_CHECKING:
    from resque.client import Client
    from resque.scheduler.lock import MasterLock

COUNT_LIMIT = 1000  # due timestamps whose jobs are counted (one LLEN each, one round trip)
START_HINT = "start `resque scheduler` (or Ruby's resque-scheduler) to move them"


def lock_prefix_from_env(environ: Mapping[str, str] | None = None) -> str:
    """The lock prefix ``resque scheduler`` would read from the environment (settings.py
    names the variable), so the verbs and the dashboard look at the same lock."""
    env = os.environ if environ is None else environ
    spec = next(spec for spec in fields(SchedulerSettings) if spec.name == "lock_prefix")
    return next((env[name] for name in spec.metadata["env"] if env.get(name)), "")


def record_master(resque: Client, lock: MasterLock, *, dynamic: bool, interval: float,
                  lock_prefix: str = "") -> None:
    """Say who we are as master; called when a scheduler takes the lock. One round trip.
    The record lives as long as the lock (``MasterLock.acquire`` renews both), so one left by
    a killed master lapses with its lock, as resque-scheduler's lock does (``LOCK_TIMEOUT``)."""
    record = {"lock": lock.value, "dynamic": dynamic, "interval": interval,
              "version": __version__, "since": int(time.time())}
    resque.redis.set(resque.keys.scheduler_master(lock_prefix), layout.encode(record),
                     ex=lock.timeout)


@dataclass(frozen=True)
class SchedulerState:
    """The master (``host:pid`` or None), our record of it if it is ours, and the delayed
    jobs due at ``now``: how many timestamps, the oldest, and (when no master runs to move
    them) how many jobs, counted over the first ``COUNT_LIMIT`` timestamps."""

    master: str | None
    record: dict[str, Any] | None
    due_timestamps: int
    oldest_due: int | None
    due_jobs: int | None
    now: float

    @property
    def dynamic(self) -> bool | None:
        """Whether the master follows stored schedules; None when no master or unknown."""
        return bool(self.record.get("dynamic")) if self.record is not None else None

    @property
    def overdue(self) -> bool:
        """Delayed jobs are due and no scheduler is master to move them."""
        return self.master is None and self.due_timestamps > 0

    @property
    def count_is_partial(self) -> bool:
        """More due timestamps than were counted: ``due_jobs`` is a lower bound."""
        return self.due_timestamps > COUNT_LIMIT

    def describe_master(self) -> str:
        """``host:pid (resque for Python, dynamic)``, ``none``, or a master of unknown kind."""
        if self.master is None:
            return "none"
        if self.record is None:
            return (f"{self.master} (not one of ours, e.g. Ruby's resque-scheduler: whether it "
                    "follows stored schedules is unknown)")
        follows = "dynamic" if self.dynamic else "not dynamic"
        return f"{self.master} (resque for Python, {follows})"

    def overdue_warning(self) -> str | None:
        """One line when due jobs wait and no master runs; None otherwise."""
        if not self.overdue:
            return None
        jobs = _plural(self.due_jobs or 0, "delayed job")
        if self.count_is_partial:
            jobs = f"at least {jobs}"
        since = f" (the oldest due {age(self.now - self.oldest_due)} ago)" \
            if self.oldest_due is not None else ""
        return f"{jobs} overdue{since} and no scheduler is running (no master lock): " \
               f"{START_HINT}"

    def schedule_change_note(self) -> tuple[bool, str]:
        """``(warning, text)`` after a stored schedule changed: who will pick it up, when."""
        if self.master is None:
            return True, ("no scheduler is running (no master lock): the change takes effect "
                          "when `resque scheduler` (or Ruby's resque-scheduler) starts")
        if self.record is None:
            return True, (f"the master scheduler {self.master} is not one of ours (Ruby's "
                          "resque-scheduler?): whether it follows stored schedules is unknown; "
                          "it does only with DYNAMIC_SCHEDULE=true, otherwise at its restart")
        if not self.dynamic:
            return True, (f"the master scheduler {self.master} runs without --dynamic: it reads "
                          "stored schedules only when it starts or gets USR2; run it with "
                          "--dynamic (DYNAMIC_SCHEDULE=true) to follow changes")
        interval = self.record.get("interval")
        within = f" within {interval:g} s" if isinstance(interval, (int, float)) else ""
        return False, f"the master scheduler {self.master} (--dynamic) picks it up{within}"


def read_state(resque: Client, lock_prefix: str = "", now: float | None = None
               ) -> SchedulerState:
    """The scheduler's state as Redis shows it. One round trip, plus one to count the due
    jobs when no master runs."""
    now = time.time() if now is None else now
    keys = resque.keys
    with resque.redis.pipeline(transaction=False) as pipe:
        pipe.get(keys.scheduler_master_lock(lock_prefix))
        pipe.get(keys.scheduler_master(lock_prefix))
        pipe.zcount(keys.delayed_schedule, "-inf", int(now))
        pipe.zrangebyscore(keys.delayed_schedule, "-inf", int(now), 0, COUNT_LIMIT)
        lock, raw_record, due, first_due = pipe.execute()
    master = layout.text(lock) if lock is not None else None
    record = _record_of(master, raw_record)
    due_jobs = None
    if master is None and first_due:
        with resque.redis.pipeline(transaction=False) as pipe:
            for timestamp in first_due:
                pipe.llen(keys.delayed(layout.text(timestamp)))
            due_jobs = sum(int(size) for size in pipe.execute())
    oldest = int(first_due[0]) if first_due else None
    return SchedulerState(master, record, int(due), oldest, due_jobs, now)


def _record_of(master: str | None, raw: bytes | None) -> dict[str, Any] | None:
    """Our record, if it describes the current master (a stale or foreign one does not)."""
    if master is None or raw is None:
        return None
    try:
        record = layout.decode(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) and record.get("lock") == master else None


def age(seconds: float) -> str:
    """``4 s``, ``3 min``, ``2 h``, ``5 d``: how long ago, as people say it."""
    seconds = max(0.0, seconds)
    for limit, unit, size in ((60, "s", 1), (3600, "min", 60), (86400, "h", 3600)):
        if seconds < limit:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds // 86400)} d"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'s are' if count != 1 else ' is'}"
