"""Failure backends: where a worker records a job that failed.

A backend answers two questions for the worker, and nothing else:

* ``redis_target(keys, queue)``: which Redis list the failure record is appended to (and
  which ``failed_queues`` member to add), or None. The worker's own one-round-trip script
  does the append, atomically with acknowledging the job, so Redis backends cost nothing extra.
* ``save(failure)``: anything else, called by the worker in the process that caught the
  exception (the forked child for a job that raised), e.g. to report to an error tracker.

Ruby's ``redis`` and ``redis_multi_queue`` backends are built in, plus ``log`` and ``none``.
Your own backend is any object with those two methods (subclass ``FailureBackend``), named by
``FAILURE_BACKEND=package.module:Factory``; ``FAILURE_BACKEND=redis,package.module:Factory``
combines several, like Ruby's ``Failure::Multiple``. Reading and retrying failures is
``resque.admin``'s job and works whatever the backend, since it reads every failure list.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from resque import layout

log = logging.getLogger("resque.failure")

ENV_VAR = "FAILURE_BACKEND"
DEFAULT = "redis"


@dataclass(frozen=True)
class Failure:
    """A failed job as a backend sees it: the record JSON plus what it was built from."""

    record: str  # the JSON record exactly as it is stored (``layout.failure_record``)
    queue: str
    payload: Any
    exception: BaseException | None = None  # the live exception, when there is one

    @property
    def class_name(self) -> str | None:
        name = self.payload.get("class") if isinstance(self.payload, dict) else None
        return name if isinstance(name, str) else None


@dataclass(frozen=True)
class RedisTarget:
    """Append the record to ``key`` and, if set, ``SADD failed_queues <failed_queues_member>``."""

    key: str
    failed_queues_member: str = ""


class FailureBackend:
    """The interface, and the ``none`` backend: records nothing anywhere.

    Contract for subclasses: ``redis_target`` is pure (it is called per failure, on the hot
    path); ``save`` may do I/O and may raise, and the worker logs the error and carries on.
    ``save`` often runs in a forked child that exits right after it: send synchronously.
    """

    name: ClassVar[str] = "none"

    def redis_target(self, keys: layout.Keys, queue: str) -> RedisTarget | None:
        return None

    def save(self, failure: Failure) -> None:
        return None

    @property
    def saves(self) -> bool:
        """Whether ``save`` does anything, so the worker can skip building a ``Failure``."""
        return type(self).save is not FailureBackend.save

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class RedisFailure(FailureBackend):
    """Ruby's default ``Failure::Redis``: one ``failed`` list."""

    name = "redis"

    def redis_target(self, keys: layout.Keys, queue: str) -> RedisTarget:
        return RedisTarget(keys.failed)


class RedisMultiQueueFailure(FailureBackend):
    """Ruby's ``Failure::RedisMultiQueue``: a ``<q>_failed`` list per job queue."""

    name = "redis_multi_queue"

    def redis_target(self, keys: layout.Keys, queue: str) -> RedisTarget:
        member = layout.failure_list_of_queue(queue)
        return RedisTarget(keys.failure_list(member), member)


class LogFailure(FailureBackend):
    """Logs each failure (with its traceback when known) to the ``resque.failure`` logger.

    Also the smallest example of a non-Redis backend.
    """

    name = "log"

    def save(self, failure: Failure) -> None:
        exc = failure.exception
        log.error(
            "job %s from queue %s failed", failure.class_name or "?", failure.queue,
            exc_info=(type(exc), exc, exc.__traceback__) if exc is not None else None,
        )


class MultipleFailure(FailureBackend):
    """Ruby's ``Failure::Multiple``: every backend saves; at most one of them owns a list.

    The worker's script appends a record to one list, so two Redis backends cannot be
    combined (and reading them back would show every failure twice).
    """

    name = "multiple"

    def __init__(self, backends: Sequence[FailureBackend]) -> None:
        if not backends:
            raise ValueError("a multiple failure backend needs at least one backend")
        probe = layout.Keys("probe")
        owners = [b for b in backends if b.redis_target(probe, "q") is not None]
        if len(owners) > 1:
            names = ", ".join(b.name for b in owners)
            raise ValueError(f"only one failure backend may write a Redis list, not {names}")
        self.backends = list(backends)
        self._list_owner = owners[0] if owners else None
        self._savers = [b for b in backends if b.saves]

    def redis_target(self, keys: layout.Keys, queue: str) -> RedisTarget | None:
        return self._list_owner.redis_target(keys, queue) if self._list_owner else None

    @property
    def saves(self) -> bool:
        return bool(self._savers)

    def save(self, failure: Failure) -> None:
        """Save to each backend; one backend's error does not keep the others from saving."""
        errors: list[BaseException] = []
        for backend in self._savers:
            try:
                backend.save(failure)
            except Exception as exc:  # noqa: BLE001 - reported below, after the others ran
                log.warning("failure backend %r could not save: %s", backend, exc)
                errors.append(exc)
        if errors:
            raise errors[0]

    def __repr__(self) -> str:
        return f"<MultipleFailure {[b.name for b in self.backends]}>"


BUILTIN: dict[str, type[FailureBackend]] = {
    "redis": RedisFailure,
    "redis_multi_queue": RedisMultiQueueFailure,
    "log": LogFailure,
    "none": FailureBackend,
}


def backend_from_name(name: str | FailureBackend | None = None) -> FailureBackend:
    """The backend a name (or ``FAILURE_BACKEND``, default ``redis``) stands for.

    A name is a built-in (``redis``, ``redis_multi_queue``, ``log``, ``none``), or
    ``module:attribute`` / ``module.attribute`` naming a ``FailureBackend`` instance, or a
    class or factory called with no arguments. Commas combine several (``MultipleFailure``).
    A backend object is returned as it is. Raises ``ValueError`` naming what is missing.
    """
    if isinstance(name, FailureBackend):
        return name
    spec = (name if name is not None else os.environ.get(ENV_VAR, "")).strip() or DEFAULT
    parts = [part.strip() for part in spec.split(",") if part.strip()]
    backends = [_one_backend(part) for part in parts]
    return backends[0] if len(backends) == 1 else MultipleFailure(backends)


def _one_backend(spec: str) -> FailureBackend:
    builtin = BUILTIN.get(spec)
    if builtin is not None:
        return builtin()
    if ":" in spec:
        module_name, _, attribute = spec.partition(":")
    else:
        module_name, _, attribute = spec.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(
            f"unknown failure backend {spec!r}: use one of {', '.join(BUILTIN)} or "
            "module:Factory for your own"
        )
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load failure backend {spec!r}: {exc}") from exc
    backend = target if _is_backend(target) else target() if callable(target) else target
    if isinstance(backend, FailureBackend):
        return backend
    if not _is_backend(backend):
        raise ValueError(
            f"failure backend {spec!r} gave {backend!r}, which has no redis_target() and save()"
        )
    return _Adapter(backend, spec)


class _Adapter(FailureBackend):
    """A duck-typed backend (any object with ``redis_target`` and ``save``) as a FailureBackend."""

    def __init__(self, backend: Any, spec: str) -> None:
        self.backend = backend
        self.name = spec  # type: ignore[misc]

    def redis_target(self, keys: layout.Keys, queue: str) -> RedisTarget | None:
        target: RedisTarget | None = self.backend.redis_target(keys, queue)
        return target

    def save(self, failure: Failure) -> None:
        self.backend.save(failure)


def _is_backend(value: Any) -> bool:
    if isinstance(value, type):
        return False
    return callable(getattr(value, "redis_target", None)) and callable(
        getattr(value, "save", None)
    )


def save_quietly(backend: FailureBackend, failure: Failure) -> bool:
    """Call ``backend.save`` the way a worker must: errors are logged, never raised."""
    try:
        backend.save(failure)
    except Exception:  # a broken tracker must not stop the worker (logged with its traceback)
        log.exception("failure backend %r could not save the failure of %s from %s",
                      backend, failure.class_name or "?", failure.queue)
        return False
    return True
