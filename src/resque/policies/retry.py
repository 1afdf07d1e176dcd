"""Retries: a job whose attempt failed comes back later, until its last attempt.

Declared on the job: ``@resque.job(retry=Retry(max_attempts=5, backoff=exponential()))``, or
``__resque_retry__ = Retry(...)`` on a job class. A failed attempt that may retry becomes a
delayed job in resque-scheduler's layout (our scheduler or Ruby's moves it when due), or goes
straight back to its queue when the backoff says 0; the attempt count lives in Redis under
resque-retry's key (``resque-retry:<class>:<sha1 of the args>``), so it survives Ruby's
scheduler, which rebuilds a due job from its class and args only.

This module decides, with no I/O and without redis-py (a forked child rules on the exception
it holds): which exceptions retry, how long to wait, whether attempts are left.
``retry_store`` writes the decision to Redis, atomically (``lua/retry.lua``).
"""

from __future__ import annotations

import contextvars
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from resque.errors import TermException
from resque.layout import JOB_RETRY, split_kwargs

log = logging.getLogger("resque.retry")

RETRY = "retry"  # the attempt failed and another is planned
GIVE_UP = "give_up"  # the attempt failed, and it was the last one (or the error is final)


class Backoff(Protocol):
    """Seconds to wait before retry number ``retry`` (1: the retry after the first attempt)."""

    def __call__(self, retry: int) -> float: ...


@dataclass(frozen=True)
class Fixed:
    """The same wait before every retry."""

    seconds: float

    def __call__(self, retry: int) -> float:
        return self.seconds


@dataclass(frozen=True)
class Exponential:
    """``first * factor ** (retry - 1)``, at most ``cap``, spread by ``jitter`` (0.1: +-10%),
    so that jobs that failed together do not all come back in the same second."""

    first: float = 1.0
    factor: float = 2.0
    cap: float = 3600.0
    jitter: float = 0.0

    def __call__(self, retry: int) -> float:
        delay = min(self.cap, self.first * self.factor ** max(0, retry - 1))
        if self.jitter:
            delay *= random.uniform(1.0 - self.jitter, 1.0 + self.jitter)
        return max(0.0, delay)


@dataclass(frozen=True)
class Delays:
    """A list of waits, one per retry; the last one repeats (resque-retry's
    ``backoff_strategy``)."""

    seconds: tuple[float, ...]

    def __call__(self, retry: int) -> float:
        return self.seconds[min(max(retry, 1), len(self.seconds)) - 1]


def fixed(seconds: float) -> Fixed:
    return Fixed(float(seconds))


def exponential(first: float = 1.0, factor: float = 2.0, cap: float = 3600.0,
                jitter: float = 0.0) -> Exponential:
    if first < 0 or factor < 1 or cap < 0 or not 0 <= jitter < 1:
        raise ValueError("exponential backoff wants first >= 0, factor >= 1, cap >= 0 and "
                         f"0 <= jitter < 1, not {first}, {factor}, {cap}, {jitter}")
    return Exponential(float(first), float(factor), float(cap), float(jitter))


def delays(*seconds: float) -> Delays:
    if not seconds or any(s < 0 for s in seconds):
        raise ValueError(f"delays wants one or more waits >= 0 seconds, not {seconds!r}")
    return Delays(tuple(float(s) for s in seconds))


Exceptions = type[BaseException] | tuple[type[BaseException], ...]


@dataclass(frozen=True)
class Retry:
    """How a job retries. ``max_attempts`` counts every attempt, the first included
    (resque-retry's ``retry_limit`` is ``max_attempts - 1``).

    ``on``: the exceptions that retry (default every ``Exception``); ``give_up_on``: those
    that end the job at once, even when they are also in ``on``. ``backoff``: a number of
    seconds, a list of them (one per retry, the last repeats), or a ``Backoff`` such as
    ``exponential()``. ``on_give_up(exc, *args, **kwargs)`` runs once, where the last attempt
    failed. ``record_attempts``: a failure record for every failed attempt, not only the last.
    """

    max_attempts: int = 3
    backoff: float | Sequence[float] | Backoff = 0.0
    on: Exceptions = Exception
    give_up_on: Exceptions = ()
    on_give_up: Callable[..., Any] | None = None
    record_attempts: bool = False
    _delay: Backoff = field(init=False, repr=False, compare=False)
    # A policy read from a payload names its exceptions: (on, give_up_on) matched by name
    # along the exception's class hierarchy, never imported.
    _names: tuple[frozenset[str], frozenset[str]] | None = field(
        init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or \
                self.max_attempts < 1:
            raise ValueError(f"max_attempts must be a whole number >= 1, not "
                             f"{self.max_attempts!r}")
        object.__setattr__(self, "on", _exceptions(self.on, "on"))
        object.__setattr__(self, "give_up_on", _exceptions(self.give_up_on, "give_up_on"))
        object.__setattr__(self, "_delay", _backoff(self.backoff))

    def delay(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (1: after the first attempt failed)."""
        return float(self._delay(retry))

    def retries(self, exc: BaseException) -> bool:
        """Whether this exception may retry (attempts left or not)."""
        if self._names is not None:
            lineage = {class_name(kind) for kind in type(exc).__mro__}
            return bool(lineage & self._names[0]) and not lineage & self._names[1]
        return isinstance(exc, self.on) and not isinstance(exc, self.give_up_on)

    def spec(self) -> dict[str, Any]:
        """The policy as JSON, for one call's payload (``task.options(retry=...)``).
        Refuses what cannot travel: a backoff function, an ``on_give_up`` hook (declare
        those on the job: a per-call policy uses the job's hook)."""
        if self.on_give_up is not None:
            raise TypeError("a per-call retry policy cannot carry on_give_up: declare the "
                            "hook on the job's own Retry, which per-call policies use")
        if self._names is not None:
            on, give_up = sorted(self._names[0]), sorted(self._names[1])
        else:
            on = [class_name(kind) for kind in _exceptions(self.on, "on")]
            give_up = [class_name(kind) for kind in _exceptions(self.give_up_on, "give_up_on")]
        return {"max_attempts": self.max_attempts, "backoff": _backoff_spec(self._delay),
                "on": on, "give_up_on": give_up, "record_attempts": self.record_attempts}

    @classmethod
    def from_spec(cls, spec: Any, job_policy: Retry | None) -> Retry:
        """The policy a payload carries (``spec``), with the job's ``on_give_up``;
        ``ValueError`` when it is not one."""
        if not isinstance(spec, dict):
            raise ValueError(f"a retry policy is a JSON object, not {spec!r}")
        names = [spec.get("on", ["Exception"]), spec.get("give_up_on", [])]
        if not all(isinstance(n, list) and all(isinstance(x, str) for x in n) for n in names):
            raise ValueError(f"a retry policy names its exceptions in lists: {spec!r}")
        try:
            policy = cls(max_attempts=spec.get("max_attempts", 3),
                         backoff=_backoff_of_spec(spec.get("backoff", 0)),
                         on_give_up=job_policy.on_give_up if job_policy else None,
                         record_attempts=spec.get("record_attempts") is True)
        except TypeError as exc:
            raise ValueError(str(exc)) from None
        object.__setattr__(policy, "_names", (frozenset(names[0]), frozenset(names[1])))
        return policy


def class_name(kind: type) -> str:
    """How a policy names an exception class: ``ValueError``, ``myapp.errors.Busy``."""
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _backoff_spec(backoff: Backoff) -> Any:
    if isinstance(backoff, Fixed):
        return backoff.seconds
    if isinstance(backoff, Delays):
        return list(backoff.seconds)
    if isinstance(backoff, Exponential):
        return {"exponential": [backoff.first, backoff.factor, backoff.cap, backoff.jitter]}
    raise TypeError(f"a per-call retry policy's backoff must be seconds, a list, fixed(), "
                    f"delays() or exponential(), not {backoff!r}: a function cannot travel")


def _backoff_of_spec(spec: Any) -> Any:
    if isinstance(spec, dict):
        found = spec.get("exponential")
        if not (isinstance(found, list) and len(found) == 4):
            raise ValueError(f"not a backoff: {spec!r}")
        return exponential(*found)
    if not isinstance(spec, (int, float, list)):
        raise ValueError(f"not a backoff: {spec!r}")
    return spec


def _exceptions(value: Any, name: str) -> tuple[type[BaseException], ...]:
    found = value if isinstance(value, tuple) else (value,)
    if not all(isinstance(kind, type) and issubclass(kind, BaseException) for kind in found):
        raise TypeError(f"Retry({name}=...) takes exception classes, not {value!r}")
    return found


def _backoff(value: Any) -> Backoff:
    if isinstance(value, bool):
        raise TypeError(f"backoff takes seconds, a list of seconds or a Backoff, not {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"backoff must be >= 0 seconds, not {value}")
        return fixed(value)
    if isinstance(value, (list, tuple)):
        return delays(*value)
    if callable(value):
        return value  # type: ignore[no-any-return]
    raise TypeError(f"backoff takes seconds, a list of seconds or a Backoff, not {value!r}")


# --- the attempt being performed ------------------------------------------------------------


@dataclass
class Attempt:
    """A job with a retry policy, while it is performed: which attempt this is (from 1), and
    once it failed, the ruling (``RETRY`` or ``GIVE_UP``)."""

    policy: Retry
    number: int
    verdict: str = ""

    @property
    def last(self) -> bool:
        return self.number >= self.policy.max_attempts


# Set by the worker around a job that has a policy; a forked child inherits it, a thread of
# ``-c N`` sets it on itself (the worker performs each job on the thread that runs it).
_attempt: contextvars.ContextVar[Attempt | None] = contextvars.ContextVar(
    "resque_retry_attempt", default=None)


def policy_of(target: Any, payload: Any = None) -> Retry | None:
    """The job's retry policy: one given to this call (``retry`` in its payload), else a
    task's ``retry`` or a class's ``__resque_retry__``; or None. A payload's policy that
    cannot be read is logged and the job's own is used."""
    policy = getattr(target, "__resque_retry__" if isinstance(target, type) else "retry", None)
    declared = policy if isinstance(policy, Retry) else None
    spec = payload.get(JOB_RETRY) if isinstance(payload, dict) else None
    if spec is None:
        return declared
    try:
        return Retry.from_spec(spec, declared)
    except ValueError as exc:
        log.warning("the retry policy in the payload of %s cannot be read (%s): the job's own "
                    "applies", payload.get("class"), exc)
        return declared


def current() -> Attempt | None:
    """The attempt being performed in this context, if its job has a retry policy."""
    return _attempt.get()


def attempt_number() -> int:
    """Which attempt of its job this context performs: 1 for a job without a policy."""
    attempt = _attempt.get()
    return 1 if attempt is None else attempt.number


def begin(attempt: Attempt) -> contextvars.Token[Attempt | None]:
    return _attempt.set(attempt)


def end(token: contextvars.Token[Attempt | None]) -> None:
    _attempt.reset(token)


def reported(retrying: bool) -> bool:
    """Whether a failure goes to the failure backends now: always, unless another attempt
    is planned and the policy records only the last."""
    if not retrying:
        return True
    attempt = _attempt.get()
    return attempt is not None and attempt.policy.record_attempts


def ruling(exc: BaseException, payload: Any) -> str:
    """What a failure of the attempt being performed leads to: ``RETRY``, ``GIVE_UP`` (after
    running ``on_give_up``, once), or '' outside a job with a policy and for a stop (which
    requeues the job). Decided where the exception is: inside the job's context when it
    raised (``current.execute``: the hook may read ``current_job()``), in the worker for a
    child that died."""
    attempt = _attempt.get()
    if attempt is None or isinstance(exc, TermException):
        return ""
    if not attempt.verdict:
        attempt.verdict = _judge(attempt, exc, payload)
    return attempt.verdict


def _judge(attempt: Attempt, exc: BaseException, payload: Any) -> str:
    policy = attempt.policy
    if policy.retries(exc) and not attempt.last:
        return RETRY
    if policy.on_give_up is not None:
        args, kwargs = split_kwargs(list(payload.get("args") or []))
        try:
            policy.on_give_up(exc, *args, **kwargs)
        except Exception:
            log.exception("on_give_up hook %r failed", policy.on_give_up)
    return GIVE_UP
