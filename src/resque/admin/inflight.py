"""Jobs in flight: what each of our workers holds, and giving it back by hand.

Our workers keep the jobs they reserved in ``inflight:<id>`` (ours alone); Ruby's tools see
one job per worker, in ``worker:<id>``. A ``-c N`` worker holds up to N, an in-process worker
a batch. When a worker dies they stay there until a pruner of ours requeues them: a Ruby
pruner fails the one job in the record and unregisters the worker, leaving the rest in a list
that no Ruby tool shows. These functions show every list, those of unregistered workers
included, and requeue one now (``resque recover``, ``Admin.recover``).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any

import redis

from resque import layout


@dataclass(frozen=True)
class InflightJob:
    """One job a worker reserved and has not finished."""

    queue: str
    payload: dict[str, Any] | None  # None: not a JSON object (kept whole in ``raw``)
    raw: str

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"queue": self.queue, "payload": self.payload}
        if self.payload is None:
            data["raw"] = self.raw
        return data

    @property
    def class_name(self) -> str:
        name = self.payload.get("class") if self.payload else None
        return name if isinstance(name, str) else "?"


@dataclass(frozen=True)
class Orphan:
    """An in-flight list whose worker is no longer registered: a Ruby or Perl pruner
    unregistered it (and failed the job its record showed, the first), and no Ruby tool
    shows the others. Recovery requeues ``to_requeue``."""

    worker: str
    jobs: list[InflightJob] = field(default_factory=list)
    first_failed: bool = True  # its record is gone: whoever removed it failed that job

    @property
    def to_requeue(self) -> list[InflightJob]:
        return self.jobs[1:] if self.first_failed else self.jobs

    def to_json(self) -> dict[str, Any]:
        return {"id": self.worker, "state": "unregistered", "first_failed": self.first_failed,
                "inflight": [job.to_json() for job in self.jobs]}


@dataclass(frozen=True)
class RecoverResult:
    """What ``recover`` did: jobs requeued (ours) or failed (a Ruby or Perl worker's), or
    why it refused."""

    worker: str
    count: int = 0
    refused: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"worker": self.worker, "count": self.count, "refused": self.refused}


def parse_entry(raw: bytes) -> InflightJob:
    """An entry ``[queue, payload, token]``; anything else is shown as it is."""
    try:
        entry = layout.decode(raw)
        queue, text = str(entry[0]), str(entry[1])
    except (ValueError, LookupError, TypeError):
        return InflightJob("", None, layout.raw_text(raw))
    try:
        payload = layout.decode(text)
    except ValueError:
        payload = None
    return InflightJob(queue, payload if isinstance(payload, dict) else None, text)


def read(client: redis.Redis, keys: layout.Keys,
         workers: list[str]) -> dict[str, list[InflightJob]]:
    """Each worker's in-flight jobs, oldest first: one pipeline of ``LRANGE`` (the lists are
    short: a batch, or a thread's job each). A key of another type reads as empty."""
    with client.pipeline(transaction=False) as pipe:
        for worker in workers:
            pipe.lrange(keys.inflight(worker).encode("utf-8", "surrogateescape"), 0, -1)
        replies = pipe.execute(raise_on_error=False)
    return {worker: [parse_entry(raw) for raw in reply] if isinstance(reply, list) else []
            for worker, reply in zip(workers, replies, strict=True)}


def orphans(client: redis.Redis, keys: layout.Keys, registered: set[str]) -> list[Orphan]:
    """In-flight lists of workers not in ``workers``, from the ``inflight`` owners set (no
    ``SCAN``): three round trips. Empty lists are left out."""
    try:
        owners = sorted(layout.text(w) for w in client.smembers(keys.inflight_workers))
    except redis.ResponseError:  # a key of another type: nothing we can read
        return []
    unregistered = [w for w in owners if w not in registered]
    found = read(client, keys, unregistered)
    with client.pipeline(transaction=False) as pipe:
        for worker in unregistered:
            pipe.exists(keys.worker(worker).encode("utf-8", "surrogateescape"))
        records = pipe.execute()
    return [Orphan(worker, jobs, not record)
            for (worker, jobs), record in zip(found.items(), records, strict=True) if jobs]


def recover(client: redis.Redis, keys: layout.Keys, worker: str, expiry: float,
            force: bool = False) -> RecoverResult:
    """Unregister ``worker`` now and requeue its in-flight jobs at the heads of their queues
    (a Ruby or Perl worker's job is failed, as Ruby does), with the pruner's own rules: a
    job that already killed ``requeue_limit`` workers is failed instead.

    Refused, unless ``force``, while the worker shows signs of life: on this host, a live
    resque process with its pid; elsewhere, a heartbeat newer than ``expiry`` seconds. Its
    jobs would then run twice.
    """
    from resque.recovery import Pruner, process_alive
    from resque.store import WorkerStore

    hostname = socket.gethostname()
    store = WorkerStore(client, keys, layout.worker_id(hostname, os.getpid(), ["recover"]))
    registered, beats, owners, now = store.farm()
    if worker not in registered | owners | set(beats):
        return RecoverResult(worker, refused="no such worker, and no jobs in flight under it")
    if not force:
        alive = _signs_of_life(worker, beats.get(worker), now, expiry, hostname, process_alive)
        if alive:
            return RecoverResult(worker, refused=alive)
    pruner = Pruner(store, hostname, expiry, 1)
    count = pruner.recover(worker, "recovered by hand", has_inflight=worker in owners)
    if count < 0:
        return RecoverResult(worker, refused="its worker record kept changing: try again")
    return RecoverResult(worker, count)


def _signs_of_life(worker: str, beat: str | None, now: float, expiry: float, hostname: str,
                   process_alive: Any) -> str | None:
    """Why ``worker`` may be alive, or None. On this host its pid decides; elsewhere, its
    heartbeat (a worker that never wrote one is taken as gone: the admin named it)."""
    host, pid, _ = layout.parse_worker_id(worker)
    if host == hostname and pid is not None:
        if process_alive(pid):
            return (f"its pid {pid} is a live resque process on this host: its jobs would "
                    "run twice; stop it, or --force")
        return None
    seen = layout.parse_time(beat) if beat is not None else None
    if seen is not None and now - seen.timestamp() <= expiry:
        return (f"its heartbeat is {now - seen.timestamp():.0f} s old (less than {expiry:g} s): "
                "it may be alive on its host, and its jobs would run twice; --force if it is "
                "gone")
    return None
