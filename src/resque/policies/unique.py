"""Unique jobs: at most one job per class and arguments (or per key the job computes) at once.

``@resque.job(queue="sync", unique=Unique(until="end"))`` makes a second enqueue of the same
call, while the first is queued (``until="start"``), queued or running (``until="end"``), or
within ``ttl`` seconds (``until="window"``), queue nothing and return the first one's handle,
marked ``duplicate``. The lock is resque-loner's key (``layout.unique_lock``), taken with the
push in one script (``lua/unique_push.lua``); its value is the holder's payload, which is what
the duplicate's handle is built from.

Nothing stays stuck: every lock expires after ``ttl`` whatever happens; while an
``until="end"`` job runs its lock is a lease of ``lease`` seconds that the worker renews
(``policies/guard.py``), so a worker killed with SIGKILL frees it within ``lease``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from resque import layout, scripts
from resque.tasks import TaskBase

if TYPE_CHECKING:
    from resque.client import Client, Prepared

log = logging.getLogger("resque.policies")

Until = Literal["start", "end", "window"]
UNTIL: tuple[str, ...] = ("start", "end", "window")

PUSH_SCRIPT = scripts.compose("push_lib", "status_lib", "unique_push")
LOCK_SCRIPT = scripts.source("unique_lock")


@dataclass(frozen=True)
class Unique:
    """How a job is unique. ``until``: ``"start"`` (resque-loner: one queued copy at a time),
    ``"end"`` (one queued or running copy), ``"window"`` (one per ``ttl`` seconds, whatever
    becomes of it). ``ttl``: seconds a lock lives at most, so that nothing a lost job held
    stays locked. ``key``: called with the job's arguments, the lock's name instead of the
    class-and-arguments digest (``key=lambda customer, **_: f"sync:{customer}"``).
    ``lease``: seconds a running ``until="end"`` job's lock outlives its worker's last
    renewal (a third of it apart)."""

    until: Until = "end"
    ttl: float = 24 * 3600.0
    key: Callable[..., str] | None = None
    lease: float = 60.0

    def __post_init__(self) -> None:
        if self.until not in UNTIL:
            raise ValueError(f"Unique(until={self.until!r}): expected one of {UNTIL}")
        if not self.ttl > 0 or not self.lease > 0:
            raise ValueError("Unique needs a positive ttl and lease (seconds)")

    def lock_name(self, class_name: str, packed: Sequence[Any], args: Sequence[Any],
                  kwargs: Mapping[str, Any]) -> str:
        """The lock's name: the job's own key, or resque-loner's digest of the call."""
        if self.key is None:
            return loner_digest(class_name, packed)
        name = self.key(*args, **kwargs)
        if not isinstance(name, str) or not name:
            raise TypeError(f"Unique key of {class_name} returned {name!r}: it must return a "
                            "non-empty string")
        return name

    def spec(self, name: str) -> list[Any]:
        """What the payload carries (``layout.JOB_UNIQUE``): ``[until, name, lease, ttl]``."""
        return [self.until, name, self.lease, self.ttl]


def loner_digest(class_name: str, packed: Sequence[Any]) -> str:
    """resque-loner's digest: MD5 of Ruby's JSON of ``{"class","args"}``, each hash argument
    sorted into ``[key, value]`` pairs (as Ruby's ``Hash#sort``), so Ruby finds the same key."""
    args = [sorted([k, v] for k, v in arg.items()) if isinstance(arg, dict) else arg
            for arg in packed]
    text = layout.encode({"class": class_name, "args": args})
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def declared(target: Any) -> Unique | None:
    """The ``Unique`` a job declared (``@resque.job(unique=...)``), or None."""
    if isinstance(target, TaskBase):
        return target.unique
    found = getattr(target, "__resque_unique__", None)
    return found if isinstance(found, Unique) else None


# --- enqueueing ---------------------------------------------------------------------------


def push(client: Client, prepared: Prepared) -> str | None:
    """Queue a prepared unique call unless its lock is held: one round trip
    (``lua/unique_push.lua``, with the status record of a tracked job). Returns None when
    queued, else the payload of the job holding the lock (``"1"``: resque-loner's)."""
    assert prepared.unique is not None and prepared.job_id is not None
    policy, name = prepared.unique
    keys = [layout.unique_lock(client.keys, prepared.queue, name),
            *client._push_keys(prepared.queue)]
    args: list[Any] = [max(1, int(policy.ttl * 1000)), prepared.queue, prepared.payload]
    if prepared.track is not None:
        status_keys, status_args = client.statuses.queued_arguments(
            prepared.job_id, prepared.track, name=prepared.name, queue=prepared.queue,
            payload=prepared.payload)
        keys += status_keys
        args += status_args
    held: Any = client.redis.register_script(PUSH_SCRIPT)(keys=keys, args=args)
    return None if held is None else layout.text(held)


def holder_of(held: str) -> tuple[str, bool] | None:
    """``(id, tracked)`` of the job a lock's value names (its payload); None for a value of
    another tool's (resque-loner's ``"1"``)."""
    try:
        payload = layout.decode(held)
    except ValueError:
        return None
    job_id = payload.get(layout.JOB_ID) if isinstance(payload, dict) else None
    if not isinstance(job_id, str):
        return None
    return job_id, layout.JOB_TRACK in payload


# --- performing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JobLock:
    """The lock of one reserved job, as its worker handles it."""

    key: str
    until: str
    lease_ms: int
    ttl_ms: int
    job_id: str  # '' when the payload has none (rebuilt by Ruby's scheduler)
    payload: bytes


def lock_of(payload: dict[str, Any], raw: bytes, queue: str, target: Any,
            keys: layout.Keys) -> JobLock | None:
    """The lock a reserved job holds (from its payload, else from its class's declaration,
    for a job Ruby's scheduler rebuilt); None when it has none to act on (``window``)."""
    spec = payload.get(layout.JOB_UNIQUE)
    if spec is None:
        policy = declared(target)
        if policy is None:
            return None
        args, kwargs = layout.split_kwargs(payload["args"])
        spec = policy.spec(policy.lock_name(payload["class"], payload["args"], args, kwargs))
    if not (isinstance(spec, list) and len(spec) == 4 and spec[0] in UNTIL
            and isinstance(spec[1], str)
            and all(isinstance(n, (int, float)) and n > 0 for n in spec[2:])):
        log.warning("job %s has an unreadable unique spec %r: its lock is left to expire",
                    payload["class"], spec)
        return None
    if spec[0] == "window":
        return None
    job_id = payload.get(layout.JOB_ID)
    return JobLock(layout.unique_lock(keys, queue, spec[1]), spec[0], max(1, int(spec[2] * 1000)),
                   max(1, int(spec[3] * 1000)), job_id if isinstance(job_id, str) else "", raw)


def lock_action(script: Any, lock: JobLock, action: str, ms: int = 0, client: Any = None
                ) -> Any:
    """Run ``lua/unique_lock.lua`` for a job's lock: start, hold, release or requeue."""
    return script(keys=[lock.key], args=[action, lock.job_id, lock.payload, ms], client=client)
