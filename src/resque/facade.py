"""``resque.Resque``, the class users know: the core ``Client`` plus delayed jobs, recurring
schedules and ``worker()``.

It sits above the client, the scheduler and the worker, which depend on ``Client`` only and
never on this module, so the imports go one way, down. The scheduler's and the worker's code
is imported on first use: a process that only enqueues loads neither.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from resque.client import Client, Performs
from resque.connection import translate_errors
from resque.handles import Job
from resque.policies.unique import Unique
from resque.tasks import Delay, TaskBase, seconds

if TYPE_CHECKING:
    from resque.scheduler.delayed import Delayed, When
    from resque.scheduler.schedule import Schedules
    from resque.worker import Worker

P = ParamSpec("P")
R = TypeVar("R")


class Resque(Client):
    """A connection to one Resque farm, with everything the Ruby ``Resque`` module offers.

    The delayed-job methods are resque-scheduler's (``enqueue_at``, ``enqueue_in``,
    ``remove_delayed``...); each is the same-named method of ``self.delayed``.
    """

    def worker(self, queues: Sequence[str] = (), **options: Any) -> Worker:
        """A worker on this connection (Perl's ``$resque->worker``); add queues, then work()."""
        from resque.worker import Worker

        return Worker(list(queues), resque=self, **options)

    @functools.cached_property
    def delayed(self) -> Delayed:
        """The delayed-job API: ``enqueue_at``, ``move_due``, the dashboard's ``page``..."""
        from resque.scheduler.delayed import Delayed

        return Delayed(self)

    @functools.cached_property
    def schedules(self) -> Schedules:
        """Recurring schedules stored in Redis (needs ``pip install resque[scheduler]``)."""
        from resque.scheduler.schedule import Schedules

        return Schedules(self)

    # --- delayed jobs (resque-scheduler's layout; see resque/scheduler/delayed.py) --------

    @translate_errors
    def enqueue_call(self, job: Any, args: Sequence[Any], kwargs: Mapping[str, Any], *,
                     queue: str | None = None, status: bool | None = None,
                     result_ttl: int | None = None, at: When | None = None,
                     delay: Delay | None = None,
                     unique: Unique | None = None,
                     policies: Mapping[str, Any] | None = None) -> Job[Any] | None:
        """``enqueue`` with its options spelled out (what tasks call); ``at`` or ``delay``:
        when it is due (``self.delayed.clock`` tells the time); ``policies``: this call's
        retry and timeout, as payload keys. A delayed unique job takes no lock until it is
        queued (``docs/guides/limits.md``)."""
        prepared = self.prepare(job, args, kwargs, queue=queue, status=status,
                                result_ttl=result_ttl, unique=unique, policies=policies)
        if delay is not None:
            at = self.delayed.clock() + seconds(delay)
        if at is None:
            return self.submit(prepared)
        return self.delayed.enqueue_prepared(prepared, at)

    @overload
    def enqueue_at(self, when: When, job: TaskBase[P, R], /, *args: P.args,
                   **kwargs: P.kwargs) -> Job[R] | None: ...
    @overload
    def enqueue_at(self, when: When, job: type[Performs[P, R]], /, *args: P.args,
                   **kwargs: P.kwargs) -> Job[R] | None: ...
    @overload
    def enqueue_at(self, when: When, job: str, /, *args: Any,
                   **kwargs: Any) -> Job[Any] | None: ...
    def enqueue_at(self, when: When, job: Any, /, *args: Any, **kwargs: Any) -> Job[Any] | None:
        """Enqueue ``job(*args, **kwargs)`` on its queue at ``when`` (a datetime or epoch
        seconds); its handle, or None if a ``before_schedule`` hook said no."""
        return self.enqueue_call(job, args, kwargs, at=when)

    @translate_errors
    def enqueue_at_with_queue(self, queue: str, when: When, job: Any, /, *args: Any,
                              **kwargs: Any) -> Job[Any] | None:
        return self.enqueue_call(job, args, kwargs, queue=queue, at=when)

    @overload
    def enqueue_in(self, seconds: Delay, job: TaskBase[P, R], /, *args: P.args,
                   **kwargs: P.kwargs) -> Job[R] | None: ...
    @overload
    def enqueue_in(self, seconds: Delay, job: type[Performs[P, R]], /, *args: P.args,
                   **kwargs: P.kwargs) -> Job[R] | None: ...
    @overload
    def enqueue_in(self, seconds: Delay, job: str, /, *args: Any,
                   **kwargs: Any) -> Job[Any] | None: ...
    @translate_errors
    def enqueue_in(self, seconds: Delay, job: Any, /, *args: Any,
                   **kwargs: Any) -> Job[Any] | None:
        """Enqueue ``job(*args, **kwargs)`` on its queue ``seconds`` from now."""
        return self.delayed.enqueue_in(seconds, job, *args, **kwargs)

    @translate_errors
    def enqueue_in_with_queue(self, queue: str, seconds: Delay, job: Any, /, *args: Any,
                              **kwargs: Any) -> Job[Any] | None:
        return self.delayed.enqueue_in_with_queue(queue, seconds, job, *args, **kwargs)

    @translate_errors
    def remove_delayed(self, job: Any, *args: Any, **kwargs: Any) -> int:
        """Remove every delayed ``job(*args)`` (on the job's queue); returns how many."""
        return self.delayed.remove_delayed(job, *args, **kwargs)

    @translate_errors
    def remove_delayed_in_queue(self, job: Any, queue: str, *args: Any, **kwargs: Any) -> int:
        return self.delayed.remove_delayed_in_queue(job, queue, *args, **kwargs)

    @translate_errors
    def remove_delayed_selection(
        self, predicate: Callable[[list[Any]], bool], job: Any = None
    ) -> int:
        """Remove delayed jobs (of ``job``, or any class) whose args satisfy ``predicate``."""
        return self.delayed.remove_delayed_selection(predicate, job)

    @translate_errors
    def delayed_queue_peek(self, start: int, count: int) -> list[int]:
        return self.delayed.delayed_queue_peek(start, count)

    @translate_errors
    def delayed_queue_schedule_size(self) -> int:
        return self.delayed.delayed_queue_schedule_size()

    @translate_errors
    def delayed_timestamp_size(self, when: When) -> int:
        return self.delayed.delayed_timestamp_size(when)

    @translate_errors
    def scheduled_at(self, job: Any, *args: Any, **kwargs: Any) -> list[int]:
        return self.delayed.scheduled_at(job, *args, **kwargs)

    @translate_errors
    def count_all_scheduled_jobs(self) -> int:
        return self.delayed.count_all_scheduled_jobs()
