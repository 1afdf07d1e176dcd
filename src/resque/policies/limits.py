"""Concurrency and rate limits: at most N jobs of a kind running at once across the farm, at
most M starts of them per period; per class, or per key the job computes (a customer).

``@resque.job(queue="api", limit=Limit(concurrency=2, rate=10, per=1.0))``. A worker asks for
a place as the job starts (``lua/limit_acquire.lua``: one round trip). A job refused one is
not run and not put back at the head of its queue (where the next worker would take it again
at once): it moves, atomically, from the worker's in-flight list to the delayed schedule
(``lua/limit_defer.lua``), due when the window has room again (a rate) or ``retry_in``
seconds later (a cap), and a scheduler (ours, or Ruby's resque-scheduler) queues it again
then. The queue's other jobs keep their order meanwhile.

A running job's place is a lease of ``lease`` seconds that its worker renews
(``policies/guard.py``); the job gives it back as it ends; a worker killed with SIGKILL stops
renewing, and the place is free again within ``lease``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from resque import layout, scripts
from resque.tasks import TaskBase

ACQUIRE_SCRIPT = scripts.source("limit_acquire")
HOLD_SCRIPT = scripts.source("limit_hold")
DEFER_SCRIPT = scripts.source("limit_defer")
AT_CAP = -1  # limit_acquire's reply when the jobs running are at the cap


@dataclass(frozen=True)
class Limit:
    """How many jobs of a kind may run. ``concurrency``: at most this many at once across
    every worker; ``rate``: at most this many starts per ``per`` seconds (a sliding window).
    ``key``: called with the job's arguments, a limit per value (``key=lambda customer, **_:
    str(customer)``). ``name``: the limit's name, shared by every job that gives it (default:
    the job's class name). ``lease``: seconds a running job's place outlives its worker's last
    renewal. ``retry_in``: seconds a job refused by the cap waits before it is queued again."""

    concurrency: int | None = None
    rate: int | None = None
    per: float = 1.0
    key: Callable[..., str] | None = None
    name: str | None = None
    lease: float = 60.0
    retry_in: float = 2.0

    def __post_init__(self) -> None:
        if self.concurrency is None and self.rate is None:
            raise ValueError("Limit needs concurrency=N, rate=M (per=seconds), or both")
        for field, value in (("concurrency", self.concurrency), ("rate", self.rate)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"Limit({field}={value!r}): expected a whole number >= 1")
        if not (self.per > 0 and self.lease > 0 and self.retry_in > 0):
            raise ValueError("Limit needs a positive per, lease and retry_in (seconds)")

    def limit_name(self, class_name: str, payload_args: list[Any]) -> str:
        """The name this job's places are counted under: ``name`` (or the class), then the
        key the job computes, if any."""
        base = self.name or class_name
        if self.key is None:
            return base
        args, kwargs = layout.split_kwargs(payload_args)
        value = self.key(*args, **kwargs)
        if not isinstance(value, str) or not value:
            raise TypeError(f"Limit key of {class_name} returned {value!r}: it must return a "
                            "non-empty string")
        return f"{base}:{value}"

    def arguments(self) -> list[Any]:
        """ARGV 2-5 of ``lua/limit_acquire.lua``."""
        return [self.concurrency or 0, ms(self.lease), self.rate or 0, ms(self.per)]


def declared(target: Any) -> Limit | None:
    """The ``Limit`` a job declared (``@resque.job(limit=...)``), or None."""
    if isinstance(target, TaskBase):
        return target.limit
    found = getattr(target, "__resque_limit__", None)
    return found if isinstance(found, Limit) else None


@dataclass(frozen=True)
class Place:
    """A running job's place under its limit, as its worker holds it."""

    key: str  # limits:<name>:running
    member: str
    lease_ms: int
    capped: bool  # False: a rate only, nothing to hold or give back


def ms(seconds: float) -> int:
    """Seconds as whole milliseconds, at least one (what PX and scores take)."""
    return max(1, int(seconds * 1000))


def wait_seconds(reply: int, limit: Limit) -> float:
    """How long a refused job waits: until the window has room, or ``retry_in``."""
    return limit.retry_in if reply == AT_CAP else reply / 1000
