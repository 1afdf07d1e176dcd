"""Which queues a worker takes jobs from, in priority order.

Plain names are taken as given. Globs (``*``, ``?``, ``[..]``) expand against the ``queues``
set as Ruby's ``File.fnmatch?`` does, in alphabetical order; ``!name`` (a glob too) excludes.
The worker id names the patterns, not the exclusions, as Ruby's does.
"""

from __future__ import annotations

import fnmatch
import logging
import time
from collections.abc import Callable, Iterable

from resque.errors import NoQueueError

log = logging.getLogger("resque.worker")

_WILDCARDS = set("*?[]{}")
CACHE_SECONDS = 1.0  # how long an expansion is reused: the per-job path stays one round trip


class QueueList:
    """A worker's queue patterns and exclusions, and their expansion into queue names."""

    def __init__(self, queues: Iterable[str] = ()) -> None:
        self.patterns: list[str] = []
        self.skip: list[str] = []
        self._cache: tuple[float, list[str]] = (0.0, [])
        self._bad_names: set[str] = set()
        for queue in queues:
            self.add(queue)

    def add(self, queue: str) -> None:
        """One more queue (or comma-separated queues), after the others; ``!name`` excludes."""
        for name in str(queue).split(","):
            name = name.strip()
            if not name:
                continue
            if any(ch.isspace() for ch in name):
                raise NoQueueError(f"queue name {name!r} contains whitespace")
            (self.skip if name.startswith("!") else self.patterns).append(name.lstrip("!"))

    @property
    def dynamic(self) -> bool:
        """Does the list depend on the ``queues`` set (globs or exclusions)?"""
        return bool(self.skip) or any(ch in _WILDCARDS for p in self.patterns for ch in p)

    def expand(self, known: Callable[[], list[str]]) -> list[str]:
        """The queues to check, in priority order. ``known`` reads the ``queues`` set, at most
        once per ``CACHE_SECONDS``: Ruby re-reads it before every reserve; new queues still
        show up at once, as a wake-up for one drops the cache (``forget``)."""
        if not self.dynamic:
            return self.patterns
        at, cached = self._cache
        now = time.monotonic()
        if now - at < CACHE_SECONDS:
            return cached
        names = known()
        found: list[str] = []
        for pattern in self.patterns:
            for name in names:
                if (ruby_fnmatch(pattern, name) and name not in found
                        and not any(ruby_fnmatch(s, name) for s in self.skip)
                        and self._usable(name)):
                    found.append(name)
        self._cache = (now, found)
        return found

    def forget(self) -> None:
        """Read the ``queues`` set again at the next ``expand``."""
        self._cache = (0.0, [])

    def _usable(self, name: str) -> bool:
        """A name from the ``queues`` set that is not valid UTF-8 cannot be named in a
        command through redis-py: skip that queue (logged once) rather than stop."""
        try:
            name.encode("utf-8")
            return True
        except UnicodeEncodeError:
            if name not in self._bad_names:
                self._bad_names.add(name)
                log.error("queue name %s in the queues set is not valid UTF-8: skipped, and "
                          "nothing in it is touched", ascii(name))
            return False


def ruby_fnmatch(pattern: str, name: str) -> bool:
    """``File.fnmatch?`` without flags: ``*``/``?``/``[..]``; a leading dot needs a dot."""
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)
