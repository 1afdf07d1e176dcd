"""How an idle worker waits: until a job may be there, a signal comes, or the poll is due.

Our enqueuers publish a wake-up after each push (``Keys.wake_channel``), so an idle worker
wakes about a millisecond later. With Redis keyspace notifications on, pushes by Ruby or Perl
wake it too; without them, those are found by the ``interval`` poll. Signals wake it through
a pipe (``signal.set_wakeup_fd``). A subscription lost in an outage is made again at the next
wait; a channel Redis refuses (an ACL) is given up, with one log line, for the poll.
"""

from __future__ import annotations

import logging
import os
import select
import time
from typing import Any

import redis

from resque import layout
from resque.queues import QueueList

log = logging.getLogger("resque.worker")

# Keyspace events that remove from a list: no reason to wake up.
_NOT_A_PUSH = {b"lpop", b"rpop", b"lrem", b"ltrim", b"del", b"lmove", b"rpoplpush", b"expired"}
DRAIN_SECONDS = 1.0  # a busy worker reads its wake-ups at least this often


class Wakeup:
    """A worker's subscription to its queues' wake-ups, and its signal pipe."""

    def __init__(self, client: redis.Redis, keys: layout.Keys, queues: QueueList) -> None:
        self.client = client
        self.keys = keys
        self.queues = queues
        self._pubsub: Any = None
        self._broken = True  # no subscription yet
        self._channels = 2  # wake-ups and keyspace events (1: wake-ups only, 0: none)
        self._last_drain = 0.0
        self._pipe: tuple[int, int] | None = None

    # --- the signal pipe ----------------------------------------------------------------

    def open_pipe(self) -> int:
        """A pipe that signals write to (``signal.set_wakeup_fd``); returns its write end."""
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        self._pipe = (read_end, write_end)
        return write_end

    def close_pipe(self) -> None:
        if self._pipe is not None:
            for fd in self._pipe:
                os.close(fd)
            self._pipe = None

    # --- waiting ------------------------------------------------------------------------

    def wait(self, timeout: float, also: int | None = None) -> bool:
        """Sleep until a wake-up, a signal, ``also`` is readable (a job ended on a thread) or
        ``timeout``, whichever comes first. True when wake-ups were waiting already (one may
        be for a queue new to a wildcard)."""
        if self._broken:
            self.subscribe()
        if not self._broken and self._drain():
            return True
        if self._pipe is None and also is None:  # no signals to wake us: check again soon
            time.sleep(min(timeout, 0.1))
            return False
        sock = None if self._broken else getattr(self._pubsub.connection, "_sock", None)
        self._select([sock.fileno() if sock is not None else None, also], timeout)
        return False

    def sleep(self, seconds: float, also: int | None = None) -> None:
        """Sleep, but wake at once for a signal (or when ``also`` is readable)."""
        if self._pipe is None and also is None:
            time.sleep(seconds)
            return
        self._select([also], seconds)

    def _select(self, fds: list[int | None], timeout: float) -> None:
        watched = [fd for fd in [self._pipe[0] if self._pipe else None, *fds] if fd is not None]
        try:
            readable, _, _ = select.select(watched, [], [], timeout)
        except (OSError, ValueError):
            return
        if self._pipe is not None and self._pipe[0] in readable:
            _empty(self._pipe[0])

    def keep_drained(self) -> None:
        """A busy worker still reads its wake-ups now and then, so that Redis's pub/sub
        output buffer limit never disconnects it."""
        if time.monotonic() - self._last_drain > DRAIN_SECONDS:
            self._drain()

    # --- the subscription ---------------------------------------------------------------

    def subscribe(self) -> None:
        """A fresh subscription (after an outage, the old one is dead); none while Redis is
        still away, and the next wait tries again."""
        self.close()
        try:
            self._subscribe()
            self._broken = False
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self._broken = True

    def close(self) -> None:
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except Exception:  # noqa: BLE001 - the old socket may be dead already
                pass

    def _subscribe(self) -> None:
        """Wake-ups and keyspace events in separate commands: an ACL user allowed only the
        namespace's channels is refused the second one alone (see ``_drain``)."""
        db = int(self.client.connection_pool.connection_kwargs.get("db", 0))
        self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        if self._channels == 0:
            return  # Redis refused every channel: the interval poll finds the jobs
        keys, patterns = self.keys, self.queues.patterns
        if self.queues.dynamic:
            self._pubsub.psubscribe(keys.wake_pattern)
            if self._channels > 1:
                self._pubsub.psubscribe(keys.keyspace_channel(db, keys.queue("*")))
        else:
            self._pubsub.subscribe(*[keys.wake_channel(q) for q in patterns])
            if self._channels > 1:
                self._pubsub.subscribe(
                    *[keys.keyspace_channel(db, keys.queue(q)) for q in patterns])
        self._drain()

    def _drain(self) -> int:
        """Read every pending wake-up; returns how many could mean a new job."""
        pubsub = self._pubsub
        count = 0
        try:
            while pubsub.connection is not None and pubsub.connection.can_read(timeout=0):
                message = pubsub.get_message(timeout=0)
                if message is not None and message["data"] not in _NOT_A_PUSH:
                    count += 1
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self._broken = True
            count += 1  # a broken subscription counts as a wake-up: the next step will tell
        except redis.ResponseError as exc:  # NOPERM: an ACL that forbids these channels
            self._refused(exc)
            count += 1
        self._last_drain = time.monotonic()
        return count

    def _refused(self, exc: redis.ResponseError) -> None:
        self._channels -= 1
        self._broken = True
        log.warning("Redis refused a subscription (%s): %s", exc, (
            "keyspace events are not used; jobs pushed by Ruby or Perl are found by the "
            "interval poll" if self._channels == 1 else
            "no wake-ups either; every job is found by the interval poll"))


def _empty(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass
