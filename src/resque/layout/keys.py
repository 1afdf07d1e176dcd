"""Ruby resque 3.0's key names (and resque-scheduler 5.0's, resque-status's, ours), namespaced
as redis-namespace does (``resque:queue:mail``), and the queue names a worker can select.

Keys that only this project writes (in-flight lists, wake-up channels, scheduler state) are
marked as ours; Ruby and Perl never read them.
"""

from __future__ import annotations

import re
from typing import Any

from resque.errors import NoQueueError
from resque.layout.codec import text

# --- Queue names -----------------------------------------------------------------------------

# A worker's -q (and Ruby's QUEUES) splits on commas, strips whitespace, reads "!" first as an
# exclusion and these characters as a pattern: a name holding any of them no worker can select.
_GLOB_CHARACTERS = "*?[]{}"
_UNSELECTABLE = re.compile(r"[\s,*?\[\]{}]")
_SELECTABLE: set[str] = set()  # names accepted already: the per-enqueue check is one lookup


def check_queue_name(queue: Any) -> str:
    """Refuse a queue name no worker could take jobs from: empty, not a string, or a name a
    worker's ``-q`` reads as something else (a pattern, an exclusion, two names)."""
    if type(queue) is str and queue in _SELECTABLE:
        return queue
    if not isinstance(queue, str) or not queue:
        raise NoQueueError(f"a queue name must be a non-empty string, not {queue!r}")
    found = _UNSELECTABLE.search(queue)
    if found or queue.startswith("!"):
        raise NoQueueError(f"queue name {queue!r} {_unselectable_because(found)}")
    if len(_SELECTABLE) < 10_000:
        _SELECTABLE.add(queue)
    return queue


def _unselectable_because(found: re.Match[str] | None) -> str:
    if found is None:
        return "starts with '!', which makes a worker's -q exclude the name instead"
    if found.group() == ",":
        return "contains a comma, which separates queue names in a worker's -q"
    if found.group() in _GLOB_CHARACTERS:
        return (f"contains {found.group()!r}, which makes a worker's -q read it as a pattern "
                "matching other queues")
    return "contains whitespace, which a worker's -q strips or splits on"


# --- The delayed lists' names (resque-scheduler 5.0) ------------------------------------------

DELAYED_MEMBER_PREFIX = "delayed:"


def delayed_member(timestamp: int | str) -> str:
    """``delayed:<ts>``: a ``timestamps:`` set member and, namespaced, the list's key."""
    return f"{DELAYED_MEMBER_PREFIX}{int(timestamp)}"


def delayed_member_timestamp(member: str | bytes) -> int | None:
    """The timestamp of a ``delayed:<ts>`` member; ``None`` for anything else."""
    suffix = text(member)[len(DELAYED_MEMBER_PREFIX) :]
    if not text(member).startswith(DELAYED_MEMBER_PREFIX) or not suffix.isdigit():
        return None
    return int(suffix)


# --- Keys -------------------------------------------------------------------------------------


class Keys:
    """Redis key names under a namespace, applied as redis-namespace does (``ns:key``)."""

    __slots__ = ("namespace", "prefix")

    def __init__(self, namespace: str = "resque") -> None:
        self.namespace = namespace
        self.prefix = f"{namespace}:" if namespace else ""

    # Ruby resque 3.0's keys.
    @property
    def queues(self) -> str:
        return self.prefix + "queues"

    def queue(self, name: str) -> str:
        return f"{self.prefix}queue:{name}"

    def queue_name(self, key: str) -> str:
        """The queue name of a ``queue:<q>`` key."""
        return key[len(self.prefix) + len("queue:") :]

    @property
    def workers(self) -> str:
        return self.prefix + "workers"

    def worker(self, worker: str) -> str:
        return f"{self.prefix}worker:{worker}"

    def worker_started(self, worker: str) -> str:
        return f"{self.prefix}worker:{worker}:started"

    @property
    def heartbeat(self) -> str:
        return self.prefix + "workers:heartbeat"

    @property
    def prune_lock(self) -> str:
        return self.prefix + "pruning_dead_workers_in_progress"

    def stat(self, name: str) -> str:
        return f"{self.prefix}stat:{name}"

    def worker_stat(self, name: str, worker: str) -> str:
        return f"{self.prefix}stat:{name}:{worker}"

    @property
    def failed(self) -> str:
        return self.prefix + "failed"

    def failed_queue(self, queue: str) -> str:
        """The redis_multi_queue failure list of a job queue: ``<q>_failed``."""
        return f"{self.prefix}{queue}_failed"

    @property
    def failed_queues(self) -> str:
        return self.prefix + "failed_queues"

    @property
    def pause(self) -> str:
        return self.prefix + "pause-all-workers"

    def failure_list(self, name: str) -> str:
        """The key of a failure list named as in ``failed_queues``: ``failed`` or ``<q>_failed``."""
        return self.prefix + name

    # Additional keys, ours only; Ruby and Perl ignore them.
    def inflight(self, worker: str) -> str:
        """List of ``[queue, payload]`` JSON pairs this worker has reserved and not finished."""
        return f"{self.prefix}inflight:{worker}"

    @property
    def recovered(self) -> str:
        """Hash: payload digest -> how often a dead worker's in-flight job was requeued."""
        return self.prefix + "recovered"

    @property
    def stopped(self) -> str:
        """Ours: payload digest -> times a job was requeued because a shutdown stopped it."""
        return self.prefix + "stopped"

    @property
    def inflight_workers(self) -> str:
        """Set of worker ids that may own an in-flight list (so recovery needs no SCAN)."""
        return self.prefix + "inflight"

    def wake_channel(self, queue: str) -> str:
        """Pub/sub channel our enqueuers publish to after a push, so idle workers wake at once."""
        return f"{self.prefix}wake:{queue}"

    @property
    def wake_pattern(self) -> str:
        return self.prefix + "wake:*"

    # resque-status's keys (github.com/quirkey/resque-status), for jobs that asked for a status.
    def status(self, job_id: str) -> str:
        """The status record of a tracked job: JSON (``status_fields``), expiring."""
        return f"{self.prefix}status:{job_id}"

    @property
    def statuses(self) -> str:
        """Zset of tracked job ids scored by the time of their last status write."""
        return self.prefix + "_statuses"

    def status_channel(self, job_id: str) -> str:
        """Pub/sub channel (ours) told each new status of a job, for ``result()`` waiters."""
        return f"{self.prefix}status-changed:{job_id}"

    @staticmethod
    def keyspace_channel(db: int, key: str) -> str:
        """Redis's own keyspace-notification channel for a key (if the server has them on)."""
        return f"__keyspace@{db}__:{key}"

    # --- resque-scheduler 5.0's keys (shared/compat/resque-scheduler-5.0-layout.md §1) -----

    @property
    def delayed_schedule(self) -> str:
        """Zset of due times: member = score = whole Unix seconds, e.g. ``"1795825807"``."""
        return self.prefix + "delayed_queue_schedule"

    def delayed(self, timestamp: int | str) -> str:
        """List of the delayed items (``delayed_item`` JSON) due at a timestamp."""
        return f"{self.prefix}{delayed_member(timestamp)}"

    def timestamps(self, item: str) -> str:
        """Set of ``delayed:<ts>`` members (no namespace) where this exact item JSON waits.

        The item's bytes are part of the key name; ``timestamps("")`` is the prefix that the
        move script puts before raw items.
        """
        return f"{self.prefix}timestamps:{item}"

    @property
    def persistent_schedules(self) -> str:
        """Hash: schedule name -> config JSON, as the caller ordered it, ``persist`` dropped."""
        return self.prefix + "persistent_schedules"

    @property
    def schedules_changed(self) -> str:
        """Set of schedule names set or removed since the master last looked."""
        return self.prefix + "schedules_changed"

    @property
    def last_enqueued_at(self) -> str:
        """Hash: schedule name -> ``last_enqueued_at`` time (shares ``delayed:``, not a ts)."""
        return self.prefix + "delayed:last_enqueued_at"

    def scheduler_master_lock(self, lock_prefix: str = "") -> str:
        """The master lock. Ruby puts the namespace in the name *and* namespaces it again:
        ``resque:resque:resque_scheduler_master_lock`` (``MyApp`` prefix:
        ``resque:resque:MyApp:resque_scheduler_master_lock``)."""
        middle = f"{lock_prefix}:" if lock_prefix else ""
        return f"{self.prefix}{self.namespace}:{middle}resque_scheduler_master_lock"

    # Scheduler keys that only we write; Ruby ignores them.
    @property
    def schedule_last_tick(self) -> str:
        """Hash: schedule name -> the Unix second of the last tick enqueued (our de-dup)."""
        return self.prefix + "scheduler:last_tick"

    def scheduler_master(self, lock_prefix: str = "") -> str:
        """String: what our master scheduler says of itself (``{"lock":"<host>:<pid>",
        "dynamic":..}`` JSON), true only while ``lock`` is the master lock's value, and
        expiring with the lock (same TTL, renewed with it). One per lock prefix:
        ``resque:scheduler:master`` (``MyApp``: ``resque:scheduler:MyApp:master``)."""
        middle = f"{lock_prefix}:" if lock_prefix else ""
        return f"{self.prefix}scheduler:{middle}master"


def scan_pattern(keys: Keys) -> str:
    """A ``SCAN MATCH`` pattern for every key under the namespace (glob characters escaped)."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", keys.prefix) + "*"

