"""Tasks: functions registered as jobs, typed so that a type checker checks every call.

``@resque.job(queue="mail")`` turns a function into a ``Task[P, R]`` (an ``async def``
function into an ``AsyncTask[P, R]``) whose parameters ``P`` and return type ``R`` type
checkers see::

    send_welcome(42)                        # runs here and now, returns R
    send_welcome.enqueue(42)                # queued; a handle, resque.Job[R]
    send_welcome.enqueue_in(timedelta(minutes=5), 42)
    send_welcome.to("urgent").enqueue(42)   # another queue, this call only
    send_welcome.options(status=True).enqueue(42)   # track status and result, this call only
    send_welcome.options(retry=Retry(max_attempts=5), timeout=30).enqueue(42)  # policies

Which client a task uses: the one given with ``.options(client=...)``; else the
application's default, set once with ``resque.set_default_client(client)`` (the test plugin
sets it per test); else the task's own ``client``, which an integration that owns one sets
(``resque.contrib.flask``: the app's); else one built on first use from the environment
(``RESQUE_REDIS``, then ``REDIS_URL``, then ``localhost:6379``), as ``resque.Resque()``
builds it.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar, cast

from resque import layout

if TYPE_CHECKING:
    from resque.handles import Job
    from resque.policies.limits import Limit
    from resque.policies.retry import Retry
    from resque.policies.unique import Unique

P = ParamSpec("P")
R = TypeVar("R")

HOOK_KINDS = (
    "before_enqueue",
    "after_enqueue",
    "before_dequeue",
    "after_dequeue",
    "before_perform",
    "around_perform",
    "after_perform",
    "on_failure",
    # resque-scheduler's, run when a delayed or recurring job is scheduled or queued
    "before_schedule",
    "after_schedule",
    "before_delayed_enqueue",
)

Delay = float | datetime.timedelta
When = datetime.datetime | int | float

# --- the default client -------------------------------------------------------------------------


class Enqueuer(Protocol):
    """What a task needs of a client: ``resque.Resque``, or the test plugin's fake."""

    def enqueue_call(self, job: Any, args: Sequence[Any], kwargs: Mapping[str, Any], *,
                     queue: str | None = None, status: bool | None = None,
                     result_ttl: int | None = None, at: When | None = None,
                     delay: Delay | None = None,
                     unique: Unique | None = None) -> Job[Any] | None: ...
    # This package's clients also take ``policies=`` (a call's retry and timeout, which
    # ``Call`` passes only when a call has some): an Enqueuer of one's own need not.


_default: Enqueuer | None = None
_default_lock = threading.Lock()


def set_default_client(client: Enqueuer | None) -> None:
    """The client that tasks use when a call names none (``None``: back to the environment's).

    Set it once where the application starts, e.g. ``resque.set_default_client(
    resque.Resque("redis://queue-host:6379/0"))``; the pytest plugin sets it per test.
    """
    global _default
    _default = client


def swap_default_client(client: Enqueuer | None) -> Enqueuer | None:
    """Set the default client and return the one it replaces (the test plugin's fixtures)."""
    global _default
    previous, _default = _default, client
    return previous


def default_client() -> Enqueuer:
    """The application's default client, or one built from the environment on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                # By name: this module sits below the facade (the worker imports it, and must
                # not load the facade unless a job enqueues through the default client).
                built: Enqueuer = importlib.import_module("resque.facade").Resque()
                _default = built
    return _default


# --- tasks ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CallOptions:
    """Options of one call or a family of calls; None means the task's own setting."""

    queue: str | None = None
    status: bool | None = None
    result_ttl: int | None = None
    client: Enqueuer | None = None
    unique: Unique | None = None  # policies (resque.policies): this call's unique lock
    # policies: this call's, carried in its payload (``layout.with_policies``)
    retry: Retry | None = None
    timeout: float | None = None

    def policies(self) -> dict[str, Any]:
        """The payload keys of this call's retry and timeout ({} without any)."""
        found: dict[str, Any] = {}
        if self.retry is not None:
            found[layout.JOB_RETRY] = self.retry.spec()
        if self.timeout is not None:
            found[layout.JOB_TIMEOUT] = self.timeout
        return found

    def enqueue_options(self) -> dict[str, Any]:
        """The policy options set, as keywords for ``enqueue_call``: none for a call without,
        so that an ``Enqueuer`` that knows no policies still takes it."""
        found: dict[str, Any] = {"unique": self.unique} if self.unique is not None else {}
        policies = self.policies()
        if policies:
            found["policies"] = policies
        return found

    def merged(self, other: CallOptions) -> CallOptions:
        """These options with ``other``'s set fields taking precedence."""
        changes = {f.name: getattr(other, f.name) for f in dataclasses.fields(other)
                   if getattr(other, f.name) is not None}
        return dataclasses.replace(self, **changes)


class TaskBase(Generic[P, R]):
    """What every task has: a name, a queue, hooks, and the typed ways to enqueue it."""

    def __init__(self, func: Callable[..., Any], name: str, queue: str | None, *,
                 status: bool = False, result_ttl: int | None = None,
                 unique: Unique | None = None, limit: Limit | None = None) -> None:
        self.func = func
        self.name = name
        self.queue = queue
        self.status = status
        self.result_ttl = result_ttl
        # Policies (resque.policies): None costs a worker nothing per job.
        self.unique = unique
        self.limit = limit
        # policies: how a failed attempt retries (policies/retry.py); None: it fails at once
        self.retry: Retry | None = None
        # policies: seconds it may run (policies/timeout.py); None: the worker's job_timeout
        self.timeout: float | None = None
        self.hooks: dict[str, list[Callable[..., Any]]] = {}
        # Why a worker could not import it by its dotted name (a lambda, a nested function,
        # __main__), set when registered without an explicit name: enqueueing raises this.
        self.unreachable: str | None = None
        # The client its calls use when neither the call nor the application names one (a
        # Flask app's, set by resque.contrib.flask): before the one built from the environment.
        self.client: Enqueuer | None = None
        self.__doc__ = func.__doc__
        self.__wrapped__ = func
        self.__module__ = getattr(func, "__module__", __name__)
        self.__qualname__ = getattr(func, "__qualname__", name)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job[R] | None:
        """Queue a call on the task's queue; None if a ``before_enqueue`` hook said no."""
        return Call(self, CallOptions()).enqueue(*args, **kwargs)

    def enqueue_in(self, delay: Delay, /, *args: P.args, **kwargs: P.kwargs) -> Job[R] | None:
        """Queue a call ``delay`` (seconds or a timedelta) from now (resque-scheduler's
        layout: a scheduler process moves it when due)."""
        return Call(self, CallOptions()).enqueue_in(delay, *args, **kwargs)

    def enqueue_at(self, when: When, /, *args: P.args, **kwargs: P.kwargs) -> Job[R] | None:
        """Queue a call at ``when`` (a datetime, naive meaning local time, or epoch seconds)."""
        return Call(self, CallOptions()).enqueue_at(when, *args, **kwargs)

    def to(self, queue: str) -> Call[P, R]:
        """This task on another queue, for the calls made through the result."""
        return Call(self, CallOptions(queue=queue))

    def options(self, *, queue: str | None = None, status: bool | None = None,
                result_ttl: int | None = None, client: Enqueuer | None = None,
                unique: Unique | None = None, retry: Retry | None = None,
                timeout: float | None = None) -> Call[P, R]:
        """This task with options for the calls made through the result: ``status=True``
        tracks status, progress and result (kept ``result_ttl`` seconds after the end);
        ``unique``, ``retry`` and ``timeout`` replace the task's own policies for these
        calls."""
        return Call(self, _call_options(queue, status, result_ttl, client, unique, retry,
                                        timeout))

    def hook(self, kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator adding a hook, e.g. ``@send_mail.hook("on_failure")``."""
        if kind not in HOOK_KINDS:
            raise ValueError(f"unknown hook kind {kind!r}; expected one of {HOOK_KINDS}")

        def add(hook: Callable[..., Any]) -> Callable[..., Any]:
            self.hooks.setdefault(kind, []).append(hook)
            return hook

        return add

    def perform(self, *args: Any, **kwargs: Any) -> Any:
        """Ruby's entry point: run the function (a worker calls ``func`` directly)."""
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<job {self.name} queue={self.queue!r}>"


class Task(TaskBase[P, R]):
    """A function registered as a job. Calling it runs the function here and now."""

    func: Callable[P, R]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)


class AsyncTask(TaskBase[P, R]):
    """An ``async def`` function registered as a job: calling it returns the coroutine, and
    its handles' ``result()`` is what the coroutine returns."""

    func: Callable[P, Coroutine[Any, Any, R]]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        return self.func(*args, **kwargs)


class Call(Generic[P, R]):
    """A task with options (queue, status, client) for the calls made through it."""

    def __init__(self, task: TaskBase[P, R], options: CallOptions) -> None:
        self.task = task
        self.call_options = options

    def _client(self) -> Enqueuer:
        return self.call_options.client or _default or self.task.client or default_client()

    def _enqueue(self, args: Sequence[Any], kwargs: Mapping[str, Any], **when: Any
                 ) -> Job[R] | None:
        options, client = self.call_options, self._client()
        extra = options.enqueue_options()
        if "policies" in extra:  # this package's clients take them (Enqueuer's note)
            client = cast(Any, client)
        return client.enqueue_call(self.task, args, kwargs, queue=options.queue,
                                   status=options.status, result_ttl=options.result_ttl,
                                   **when, **extra)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job[R] | None:
        """Queue a call; None if a ``before_enqueue`` hook said no."""
        return self._enqueue(args, kwargs)

    def enqueue_in(self, delay: Delay, /, *args: P.args, **kwargs: P.kwargs) -> Job[R] | None:
        """Queue a call ``delay`` from now (the client's clock)."""
        return self._enqueue(args, kwargs, delay=delay)

    def enqueue_at(self, when: When, /, *args: P.args, **kwargs: P.kwargs) -> Job[R] | None:
        """Queue a call at ``when``; None if a ``before_schedule`` hook said no."""
        return self._enqueue(args, kwargs, at=when)

    def to(self, queue: str) -> Call[P, R]:
        return Call(self.task, self.call_options.merged(CallOptions(queue=queue)))

    def options(self, *, queue: str | None = None, status: bool | None = None,
                result_ttl: int | None = None, client: Enqueuer | None = None,
                unique: Unique | None = None, retry: Retry | None = None,
                timeout: float | None = None) -> Call[P, R]:
        return Call(self.task, self.call_options.merged(
            _call_options(queue, status, result_ttl, client, unique, retry, timeout)))

    def __repr__(self) -> str:
        return f"<call of {self.task.name} {self.call_options}>"


def _call_options(queue: str | None, status: bool | None, result_ttl: int | None,
                  client: Enqueuer | None, unique: Unique | None, retry: Retry | None,
                  timeout: float | None) -> CallOptions:
    """Options as given to ``options()``; a policy that cannot travel in a payload is
    refused now (``Retry.spec``), not when a worker reads it."""
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    if retry is not None:
        retry.spec()
    return CallOptions(queue, status, result_ttl, client, unique, retry,
                       None if timeout is None else float(timeout))


def seconds(delay: Delay) -> float:
    """A delay in seconds, from a number or a timedelta."""
    if isinstance(delay, datetime.timedelta):
        return delay.total_seconds()
    if isinstance(delay, bool) or not isinstance(delay, (int, float)):
        raise TypeError(f"enqueue_in takes a number of seconds or a timedelta, not {delay!r}")
    return float(delay)
