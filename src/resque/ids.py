"""Job ids: unique across processes and hosts, and cheap enough for every enqueue.

An id is a random prefix drawn once per process (64 bits from ``secrets``) and a counter:
``5f0c2a9de4b17c03-1a``. Drawing 64 random bits per job would cost a system call each time;
a counter costs an increment. A forked child draws a new prefix before it runs anything, so
parent and child never hand out the same id. Two processes share a prefix with probability
about n²/2⁶⁵ for n processes: one in thirty million for a million of them.
"""

from __future__ import annotations

import itertools
import os
import secrets

_prefix = ""
_counter: itertools.count[int] = itertools.count(1)


def _reseed() -> None:
    global _prefix, _counter
    _prefix = secrets.token_hex(8) + "-"
    _counter = itertools.count(1)


_reseed()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


def new_id() -> str:
    """A new job id. Thread-safe: ``next`` on a counter is atomic under the GIL."""
    return f"{_prefix}{next(_counter):x}"
