"""The worker's background thread: a heartbeat every ``heartbeat_interval``, and a look for
dead workers every ``prune_interval`` (``recovery.Pruner`` decides who is dead and recovers).

Nothing it meets stops the worker: Redis being away is the worker's one outage, any other
error is reported once per change (``outages.Retries.background``).
"""

from __future__ import annotations

import logging
import threading
import time

from resque import layout
from resque.connection import refresh_master
from resque.metrics import record_sample
from resque.outages import Retries
from resque.recovery import Pruner
from resque.store import WorkerStore

log = logging.getLogger("resque.worker")


class Heartbeat:
    """The heartbeat thread of one worker."""

    def __init__(self, store: WorkerStore, pruner: Pruner, retries: Retries, interval: float,
                 prune_interval: float) -> None:
        self.store = store
        self.pruner = pruner
        self.retries = retries
        self.interval = interval
        self.prune_interval = prune_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="resque-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        next_beat = time.monotonic() + self.interval
        next_prune = time.monotonic() + self.prune_interval
        while not self._stop.wait(max(0.05, min(next_beat, next_prune) - time.monotonic())):
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + self.interval
                self.retries.background("heartbeat", self.beat)
            if now >= next_prune:
                next_prune = now + self.prune_interval
                self.prune()

    def beat(self) -> None:
        """Write the heartbeat (Redis time), register again if someone unregistered us, and
        take the dashboard's sample."""
        client = self.store.redis
        refresh_master(client)
        self.store.heartbeat()
        if not self.store.is_registered():
            log.warning("%s was unregistered by someone else; registering again",
                        self.store.worker_id)
            self.store.register(layout.started_at())
        record_sample(client, self.store.keys)

    def prune(self) -> None:
        self.retries.background("pruning dead workers", self.pruner.prune)
