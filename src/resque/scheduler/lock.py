"""The scheduler master lock, shared with resque-scheduler (contract §5).

One master among any mix of Ruby and Python schedulers: the key, the ``<host>:<pid>`` value
and the TTL (``LOCK_TIMEOUT``, 180 s) are Ruby's. Ruby sends two scripts per poll (SETNX +
EXPIRE, then GET + EXPIRE); ours does the same in one (``lua/master_lock_acquire.lua``), so it
is one round trip. Release is compare-and-delete (``lua/master_lock_release.lua``), so a
standby never deletes the master's lock. The same script renews our master's record
(``scheduler:master``, ``state.py``) with the lock, so a killed master's record lapses with it.
"""

from __future__ import annotations

import logging
import os
import socket

import redis

from resque import layout, scripts
from resque.settings import SchedulerSettings

log = logging.getLogger("resque.scheduler")

DEFAULT_TIMEOUT = SchedulerSettings.lock_timeout
ACQUIRE_SCRIPT = scripts.source("master_lock_acquire")
RELEASE_SCRIPT = scripts.source("master_lock_release")


def lock_hostname() -> str:
    """The host part of the lock value: the reverse-resolved name of the host, as Ruby's
    ``Addrinfo.getaddrinfo(host, 'http').first.getnameinfo`` (``localhost`` on many boxes),
    falling back to the plain host name."""
    name = socket.gethostname()
    try:
        address = socket.getaddrinfo(name, "http")[0][4]
        return socket.getnameinfo(address, 0)[0] or name
    except OSError:
        return name


class MasterLock:
    """The master lock of one scheduler process.

    ``acquire()`` every poll (one round trip) both takes a free lock and renews our own; it
    returns whether we are master. The delayed-move and recurring scripts also check the
    value, so a scheduler that lost the lock cannot move or enqueue anything.
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: layout.Keys,
        *,
        timeout: int = DEFAULT_TIMEOUT,
        prefix: str = "",
        value: str | None = None,
    ) -> None:
        if timeout < 1:
            raise ValueError(f"the lock timeout must be at least 1 second, not {timeout}")
        self.redis = client
        self.key = keys.scheduler_master_lock(prefix)
        self.record_key = keys.scheduler_master(prefix)
        self.value = value or layout.scheduler_lock_value(lock_hostname(), os.getpid())
        self.timeout = int(timeout)
        self.record_missing = False  # set by acquire(): our master's record must be rewritten
        self._acquire = client.register_script(ACQUIRE_SCRIPT)
        self._release = client.register_script(RELEASE_SCRIPT)

    def acquire(self) -> bool:
        """Take the lock if it is free, renew it (and our record) if it is ours; True if we
        are master. ``record_missing`` says whether our renewed lock has lost its record."""
        reply = int(self._acquire(keys=[self.key, self.record_key],
                                  args=[self.value, self.timeout]))
        self.record_missing = reply == 2
        return reply != 0

    def release(self) -> bool:
        """Delete the lock if it is still ours (compare-and-delete); True if deleted."""
        return bool(self._release(keys=[self.key], args=[self.value]))

    def holder(self) -> str | None:
        """The current master's value (``host:pid``), or None: the dashboard's "Current master"."""
        return current_master(self.redis, self.key)


def current_master(client: redis.Redis, key: str) -> str | None:
    raw = client.get(key)
    return layout.text(raw) if raw is not None else None
