"""The failure lists, for people and dashboards: list, show, retry, remove, clear.

Which lists: ``failed`` (Ruby's default backend) and every ``<q>_failed`` named in the
``failed_queues`` set (``redis_multi_queue``), whatever backend our own workers use.

How an entry is addressed. Ruby names a failure by its index, so a removal by anyone else in
the meantime makes it act on the wrong entry (resque #1172). Our id is ``<index>-<digest>``
(``<list>:<index>-<digest>`` for lists other than ``failed``), the digest being the first 12
hex digits of the SHA-1 of the entry's raw bytes. Acting on an id takes two round trips:

1. resolve: ``LINDEX index``; if the digest differs, the list moved under us, and we look for
   the digest in chunks, backwards from ``index`` first (appends go to the tail and removals
   only shift entries left), then forwards. Not found: ``FailureNotFound``.
2. act, in one Lua script (``lua/act.lua``) given the raw bytes: it acts at ``index`` if that
   still holds exactly those bytes, else at ``LPOS`` of them (entries with identical bytes are
   interchangeable), else reports the entry gone. Requeue is ``LSET`` of the record with
   ``retried_at`` plus the push of ``{"class","args"}`` (the client's own push code, so idle
   workers wake); removal is ``LSET`` to a unique sentinel then one ``LREM`` of it. Both
   happen inside the script, so nobody ever sees the sentinel or a half-done retry.

Bulk verbs run the same script on a chunk of 1,000 entries at a time, so they cost one
``LRANGE`` and one script call per chunk.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from resque import layout, scripts
from resque.client import Client
from resque.connection import translate_errors
from resque.failure.records import (
    FailureEntry,
    FailureId,
    FailureNotFound,
    NotAFailureList,
    digest,
)

log = logging.getLogger("resque.admin")

CHUNK = 1000  # entries per LRANGE and per script call in scans and bulk verbs


# Retry and remove in one script; a retry composes the client's push (lua/push_lib.lua).
ACT_SCRIPT = scripts.compose("push_lib", "act")


@dataclass
class Page:
    """A page of a listing. ``total`` is exact without filters; with filters it is None and
    ``more`` says whether another page exists (counting would read the whole list)."""

    entries: list[FailureEntry]
    start: int
    total: int | None
    more: bool


@dataclass
class BulkResult:
    """What a bulk verb did: entries acted on, skipped (not retriable), gone meanwhile."""

    done: int = 0
    skipped: int = 0
    gone: int = 0
    skipped_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"done": self.done, "skipped": self.skipped, "gone": self.gone,
                "skipped_ids": self.skipped_ids}


@dataclass(frozen=True)
class Filter:
    """Which entries a listing or bulk verb applies to; every condition given must hold."""

    queue: str | None = None
    class_name: str | None = None
    list_name: str | None = None
    retried: bool | None = None  # True: only retried ones; False: only never retried
    malformed: bool | None = None

    @property
    def by_content(self) -> bool:
        """Whether entries must be read to tell (any condition but ``list_name``)."""
        return (self.queue, self.class_name, self.retried, self.malformed) != (None,) * 4

    def needles(self, list_name: str) -> list[bytes]:
        """Byte strings a matching raw entry of that list must contain (a cheap test before
        decoding). Only for plain names, which every JSON encoder writes the same way.
        """
        found = []
        # A record without "queue" takes its list's queue, so only ``failed`` can use it.
        queue = self.queue if list_name == layout.FAILED_LIST else None
        for value in (queue, self.class_name):
            if value is not None and re.fullmatch(r"[A-Za-z0-9_:.\-]+", value):
                found.append(layout.encode(value).encode())
        if self.retried:
            found.append(b'"retried_at"')
        return found

    def matches(self, entry: FailureEntry) -> bool:
        if self.queue is not None and entry.queue != self.queue:
            return False
        if self.class_name is not None and entry.class_name != self.class_name:
            return False
        if self.retried is not None and entry.retried != self.retried:
            return False
        return self.malformed is None or entry.malformed == self.malformed


@dataclass
class _Applied:
    removed: int  # entries the script removed
    positions: list[int]  # where each entry was found, -1 if it was gone


class Failures:
    """Every failure list of one Resque farm. Safe to share between threads."""

    def __init__(self, resque: Client) -> None:
        self.resque = resque
        self.redis = resque.redis
        self.keys = resque.keys
        self._act = self.redis.register_script(ACT_SCRIPT)

    # --- reading ------------------------------------------------------------------------

    @translate_errors
    def lists(self) -> list[str]:
        """``failed`` first, then every ``failed_queues`` member, sorted."""
        members = {layout.text(m) for m in self.redis.smembers(self.keys.failed_queues)}
        return [layout.FAILED_LIST, *sorted(members - {layout.FAILED_LIST})]

    @translate_errors
    def counts(self) -> dict[str, int]:
        """Entries per failure list: ``SMEMBERS`` plus one pipeline of ``LLEN``."""
        names = self.lists()
        with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.llen(self.keys.failure_list(name))
            lengths = pipe.execute()
        return dict(zip(names, (int(n) for n in lengths), strict=True))

    def count(self, where: Filter | None = None) -> int:
        """Entries in all lists (or one); with conditions, a scan of the lists concerned."""
        where = where or Filter()
        if not where.by_content:
            return sum(length for _, length in self._lengths(where.list_name))
        return sum(1 for _ in self.scan(where))

    @translate_errors
    def page(
        self, start: int = 0, count: int = 20, *, newest: bool = True, where: Filter | None = None
    ) -> Page:
        """Entries ``start`` to ``start + count`` in display order, newest first by default.

        Lists are shown one after another (``failed``, then ``<q>_failed`` in name order). No
        conditions: one ``LLEN`` pipeline and one ``LRANGE`` pipeline, whatever the size.
        """
        if start < 0 or count < 1:
            raise ValueError("a page needs start >= 0 and count >= 1")
        where = where or Filter()
        if not where.by_content:
            return self._page_by_position(start, count, newest, where.list_name)
        entries: list[FailureEntry] = []
        seen = 0
        for entry in self.scan(where, newest=newest):
            if seen >= start:
                if len(entries) == count:
                    return Page(entries, start, None, more=True)
                entries.append(entry)
            seen += 1
        return Page(entries, start, None, more=False)

    def _page_by_position(
        self, start: int, count: int, newest: bool, list_name: str | None
    ) -> Page:
        lengths = self._lengths(list_name)
        total = sum(n for _, n in lengths)
        if newest:
            lengths.reverse()
        ranges: list[tuple[str, int, int]] = []
        skip, wanted = start, count
        for name, length in lengths:
            if wanted == 0:
                break
            if skip >= length:
                skip -= length
                continue
            take = min(length - skip, wanted)
            low = length - skip - take if newest else skip
            ranges.append((name, low, low + take - 1))
            skip, wanted = 0, wanted - take
        with self.redis.pipeline(transaction=False) as pipe:
            for name, low, high in ranges:
                pipe.lrange(self.keys.failure_list(name), low, high)
            chunks = pipe.execute()
        entries: list[FailureEntry] = []
        for (name, low, _), raws in zip(ranges, chunks, strict=True):
            found = [
                FailureEntry.from_raw(name, low + i, _as_bytes(raw))
                for i, raw in enumerate(raws)
            ]
            entries.extend(reversed(found) if newest else found)
        return Page(entries, start, total, more=start + len(entries) < total)

    def _lengths(self, list_name: str | None) -> list[tuple[str, int]]:
        if list_name is not None:
            key = self.keys.failure_list(self._check_list(list_name))
            return [(list_name, int(self.redis.llen(key)))]
        return list(self.counts().items())

    def _check_list(self, name: str) -> str:
        """``name`` if it is a failure list (one ``SISMEMBER`` unless it is ``failed``)."""
        if name != layout.FAILED_LIST and not self.redis.sismember(self.keys.failed_queues, name):
            raise NotAFailureList(
                f"{name!r} is not a failure list: expected failed or a member of failed_queues "
                f"({', '.join(self.lists())})"
            )
        return name

    def scan(self, where: Filter | None = None, *, newest: bool = False) -> Iterator[FailureEntry]:
        """Every matching entry, read ``CHUNK`` at a time with ``LRANGE``."""
        where = where or Filter()
        for chunk in self._chunks(where, newest):
            yield from chunk

    def _chunks(self, where: Filter, newest: bool) -> Iterator[list[FailureEntry]]:
        lengths = self._lengths(where.list_name)
        if newest:
            lengths.reverse()
        for name, length in lengths:
            key = self.keys.failure_list(name)
            needles = where.needles(name)
            bounds = range(length, 0, -CHUNK) if newest else range(0, length, CHUNK)
            for edge in bounds:
                low = max(0, edge - CHUNK) if newest else edge
                high = edge - 1 if newest else min(length, edge + CHUNK) - 1
                raws = self._range(key, low, high)
                chunk = [
                    FailureEntry.from_raw(name, low + i, raw)
                    for i, raw in enumerate(raws)
                    if all(needle in raw for needle in needles)
                ]
                chunk = [entry for entry in chunk if where.matches(entry)]
                if newest:
                    chunk.reverse()
                if chunk:
                    yield chunk

    @translate_errors
    def _range(self, key: str, low: int, high: int) -> list[bytes]:
        return [_as_bytes(raw) for raw in self.redis.lrange(key, low, high)]

    @translate_errors
    def get(self, failure_id: str | FailureId) -> FailureEntry:
        """The entry an id names, wherever it moved to. Raises ``FailureNotFound``."""
        fid = FailureId.parse(failure_id)
        key = self.keys.failure_list(self._check_list(fid.list_name))
        found = self.redis.lindex(key, fid.index)
        if found is not None and digest(_as_bytes(found)) == fid.digest:
            return FailureEntry.from_raw(fid.list_name, fid.index, _as_bytes(found))
        for index, raw in self._search(key, fid.index):
            if digest(raw) == fid.digest:
                log.debug("failure %s moved to index %d", fid, index)
                return FailureEntry.from_raw(fid.list_name, index, raw)
        raise FailureNotFound(
            f"no failure {fid} in {fid.list_name}: it was removed or retried meanwhile "
            "(a retry changes the id); list the failures again"
        )

    def _search(self, key: str, index: int) -> Iterator[tuple[int, bytes]]:
        """Entries from ``index`` backwards, then after it: where a moved entry most likely is."""
        length = int(self.redis.llen(key))
        high = min(index, length - 1)
        while high >= 0:
            low = max(0, high - CHUNK + 1)
            raws = self._range(key, low, high)
            yield from reversed(list(enumerate(raws, start=low)))
            high = low - 1
        low = index + 1
        while low < length:
            raws = self._range(key, low, low + CHUNK - 1)
            yield from enumerate(raws, start=low)
            low += CHUNK

    # --- acting on one entry ------------------------------------------------------------

    def requeue(
        self,
        target: str | FailureId | FailureEntry,
        *,
        remove: bool = False,
        now: float | None = None,
    ) -> FailureEntry | None:
        """Push the job back to its queue; mark the entry retried, or remove it.

        Returns the entry as it now stands (its id changes, since its bytes did), or None
        when removed. Raises ``FailureNotFound`` or ``NotRequeueable``.
        """
        entry = self._entry(target)
        entry.job_payload()  # raises NotRequeueable before anything is sent
        now = time.time() if now is None else now  # the same retried_at in Redis and returned
        (position,) = self._apply([entry], requeue=True, remove=remove, now=now).positions
        if position < 0:
            raise FailureNotFound(f"failure {entry.id} was removed or changed meanwhile")
        log.info("retried failure %s (%s on %s)%s", entry.id, entry.class_name, entry.queue,
                 ", removed it" if remove else "")
        if remove:
            return None
        new_raw = self._retried_raw(entry, now)
        return FailureEntry.from_raw(entry.id.list_name, position, new_raw)

    def remove(self, target: str | FailureId | FailureEntry) -> None:
        """Remove one entry, readable or not. Raises ``FailureNotFound`` if already gone."""
        entry = self._entry(target)
        (position,) = self._apply([entry], requeue=False, remove=True).positions
        if position < 0:
            raise FailureNotFound(f"failure {entry.id} was removed or changed meanwhile")
        log.info("removed failure %s", entry.id)

    @translate_errors
    def _entry(self, target: str | FailureId | FailureEntry) -> FailureEntry:
        if isinstance(target, FailureEntry):
            self._check_list(target.id.list_name)
            return target
        return self.get(target)

    # --- bulk verbs ---------------------------------------------------------------------

    def requeue_where(
        self,
        where: Filter | None = None,
        *,
        remove: bool = False,
        include_retried: bool = False,
        now: float | None = None,
    ) -> BulkResult:
        """Retry every matching entry, oldest first. Already retried entries are skipped
        unless ``include_retried`` (Ruby's retry-all retries them again, resque #924);
        entries that cannot be retried are skipped and counted."""
        where = where or Filter()
        if not include_retried and where.retried is None:
            where = Filter(where.queue, where.class_name, where.list_name, False, where.malformed)
        return self._bulk(where, requeue=True, remove=remove, now=now)

    def remove_where(self, where: Filter | None = None) -> BulkResult:
        """Remove every matching entry (all of them with no conditions: prefer ``clear``)."""
        return self._bulk(where or Filter(), requeue=False, remove=True)

    def clear_retried(self) -> BulkResult:
        """resque-web's "clear retried": remove every entry that has ``retried_at``."""
        return self.remove_where(Filter(retried=True))

    @translate_errors
    def clear(self, list_name: str | None = None) -> int:
        """Delete a failure list, or all of them (``failed_queues`` is kept, as Ruby does).

        Returns how many entries went; the count and the delete are one transaction.
        """
        names = [self._check_list(list_name)] if list_name else self.lists()
        with self.redis.pipeline(transaction=True) as pipe:
            for name in names:
                pipe.llen(self.keys.failure_list(name))
            pipe.delete(*(self.keys.failure_list(name) for name in names))
            *lengths, _ = pipe.execute()
        log.info("cleared %s: %d failure(s)", ", ".join(names), sum(lengths))
        return int(sum(lengths))

    def _bulk(
        self, where: Filter, *, requeue: bool, remove: bool, now: float | None = None
    ) -> BulkResult:
        """Oldest first, a chunk per round trip pair; removals shift later chunks, so the read
        position moves by what stayed. Entries appended meanwhile are left alone."""
        result = BulkResult()
        for name, length in self._lengths(where.list_name):
            key = self.keys.failure_list(name)
            needles = where.needles(name)
            position = examined = 0
            while examined < length:
                wanted = min(CHUNK, length - examined)
                raws = self._range(key, position, position + wanted - 1)
                if not raws:
                    break
                examined += len(raws)
                batch: list[FailureEntry] = []
                for i, raw in enumerate(raws):
                    if not all(needle in raw for needle in needles):
                        continue
                    entry = FailureEntry.from_raw(name, position + i, raw)
                    if not where.matches(entry):
                        continue
                    if requeue and entry.requeue_problem():
                        result.skipped += 1
                        result.skipped_ids.append(str(entry.id))
                        continue
                    batch.append(entry)
                applied = self._apply(batch, requeue=requeue, remove=remove, now=now)
                result.done += sum(1 for p in applied.positions if p >= 0)
                result.gone += sum(1 for p in applied.positions if p < 0)
                position += len(raws) - applied.removed
        log.info("%s %d failure(s); %d skipped, %d gone meanwhile",
                 "retried" if requeue else "removed", result.done, result.skipped, result.gone)
        return result

    # --- the one script -----------------------------------------------------------------

    @translate_errors
    def _apply(
        self,
        entries: Sequence[FailureEntry],
        *,
        requeue: bool,
        remove: bool,
        now: float | None = None,
    ) -> _Applied:
        """One ``ACT_SCRIPT`` call for entries of one list (see the module docstring)."""
        if not entries:
            return _Applied(0, [])
        list_name = entries[0].id.list_name
        keys = [self.keys.failure_list(list_name), self.keys.queues]
        slots: dict[str, int] = {}
        args: list[bytes | str | int] = [f"resque:removing:{uuid.uuid4().hex}"]
        for entry in entries:
            if entry.id.list_name != list_name:
                raise ValueError("one call acts on one failure list")
            queue, payload, slot, new_raw = "", "", 0, b""
            if requeue:
                queue, payload = entry.queue or "", entry.job_payload()
                if queue not in slots:
                    slots[queue] = len(keys) + 1  # Lua indexes KEYS from 1
                    keys += [self.keys.queue(queue), self.keys.wake_channel(queue)]
                slot = slots[queue]
                if not remove:
                    new_raw = self._retried_raw(entry, now)
            args += [entry.id.index, entry.raw, new_raw, "1" if remove else "0",
                     queue, payload, slot]
        removed, *positions = self._act(keys=keys, args=args)
        return _Applied(int(removed), [int(p) for p in positions])

    @staticmethod
    def _retried_raw(entry: FailureEntry, now: float | None) -> bytes:
        when = layout.retried_at_for(entry.id.list_name, now)
        return layout.with_retried_at(entry.raw, entry.record or {}, when)


def _as_bytes(raw: Any) -> bytes:
    """Entries as bytes, even from a client made with ``decode_responses=True``."""
    return raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "surrogateescape")
