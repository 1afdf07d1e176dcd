"""A real client for tests: its own clock for delayed and recurring jobs, and ``drain()``.

``TestResque`` is a ``resque.Resque`` (real Redis, usually a namespace of its own) whose
delayed jobs and schedules follow a ``Clock`` that the test moves: ``clock.advance(...)``
fires the recurring schedules due by then and moves the delayed jobs due by then to their
queues, as a scheduler would. ``drain()`` then performs everything queued with a real worker
in this process (``fork=False``, burst): the worker's own code, so hooks, failure records,
statistics and (later) retries behave exactly as in production.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from resque import layout
from resque.facade import Resque
from resque.testing.clock import Clock

if TYPE_CHECKING:
    import redis

    from resque.scheduler.delayed import Delayed
    from resque.scheduler.recurring import Recurring

log = logging.getLogger("resque.testing")


@dataclasses.dataclass(frozen=True)
class Drained:
    """What one ``drain()`` did: jobs performed, and the failure records it added."""

    processed: int
    failures: list[dict[str, Any]]

    @property
    def failed(self) -> int:
        return len(self.failures)


class TestResque(Resque):
    """A ``Resque`` whose time is ``clock``, with ``drain()``; see the module's docstring."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(self, redis: redis.Redis | str | None = None, *, clock: Clock | None = None,
                 **options: Any) -> None:
        super().__init__(redis, **options)
        self.clock = clock or Clock()
        self.clock.on_advance(self._advanced)
        self._recurring: Recurring | None = None
        self._schedules: dict[str, Any] = {}

    @functools.cached_property
    def delayed(self) -> Delayed:
        from resque.scheduler.delayed import Delayed

        return Delayed(self, clock=self.clock)

    def drain(self, queues: Sequence[str] = ("*",), *, max_rounds: int = 100) -> Drained:
        """Perform every queued job (and those they enqueue, and delayed jobs due by now on
        the clock) with a real in-process worker on ``queues``, until the queues are empty."""
        processed_before = self.stat("processed")
        failures_before = int(self.redis.llen(self.keys.failed))
        for _ in range(max_rounds):
            self.catch_up()
            if not any(self.queue_sizes().values()):
                break
            self._work(queues)
        else:
            raise RuntimeError(f"drain() ran {max_rounds} rounds and jobs are still queued")
        raws: list[Any] = self.redis.lrange(self.keys.failed, failures_before, -1)
        return Drained(self.stat("processed") - processed_before,
                       [layout.decode(raw) for raw in raws])

    def catch_up(self) -> None:
        """Do what a scheduler would have done by the clock's time: fire the recurring
        schedules due (stored with ``schedules.set``) and move the due delayed jobs."""
        now = self.clock()
        recurring = self._recurring_at(now)
        if recurring is not None:
            recurring.fire_due(now)
        self.delayed.move_due(now)

    def flush(self) -> int:
        """Delete every key of this client's namespace; how many."""
        found = list(self.redis.scan_iter(match=layout.scan_pattern(self.keys), count=1000))
        return int(self.redis.delete(*found)) if found else 0

    # --- inside ---------------------------------------------------------------------------

    def _advanced(self, before: float, after: float) -> None:
        self._recurring_at(before)  # schedules set since the last look count from then
        self.catch_up()

    def _recurring_at(self, now: float) -> Recurring | None:
        """The schedules stored in Redis, (re)loaded as they change, timed from ``now``."""
        stored = self.schedules.persistent() if self.redis.exists(
            self.keys.persistent_schedules) else {}
        if not stored and self._recurring is None:
            return None
        if self._recurring is None:
            from resque.scheduler.recurring import Recurring

            self._recurring = Recurring(self, clock=self.clock, delayed=self.delayed)
        for name in set(self._schedules) | set(stored):
            if self._schedules.get(name) != stored.get(name):
                self._recurring.update(name, stored.get(name), now)
        self._schedules = stored
        return self._recurring

    def _work(self, queues: Sequence[str]) -> None:
        import setproctitle

        from resque.worker import Worker

        title = setproctitle.getproctitle()
        try:
            Worker(list(queues), resque=self, fork=False, burst=True, interval=0).work()
        finally:
            setproctitle.setproctitle(title)  # the worker titles the process as it goes
