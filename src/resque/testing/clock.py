"""A clock that tests move by hand, for delayed and recurring jobs.

``Clock()`` starts at the real time and stands still until ``advance`` moves it. Whatever
asked to be told (the test kit: fire due schedules, move due delayed jobs) is told on each
move, with the time before and after.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable


class Clock:
    """Epoch seconds, moved only by ``advance`` (and ``set``); call it for the time."""

    def __init__(self, start: float | datetime.datetime | None = None) -> None:
        self._now = _epoch(start) if start is not None else time.time()
        self._listeners: list[Callable[[float, float], None]] = []

    def __call__(self) -> float:
        return self._now

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float | datetime.timedelta = 0.0, *, minutes: float = 0.0,
                hours: float = 0.0, days: float = 0.0) -> float:
        """Move forward (``advance(90)``, ``advance(minutes=5)``, ``advance(timedelta(...))``);
        the new time."""
        step = seconds.total_seconds() if isinstance(seconds, datetime.timedelta) else seconds
        step += minutes * 60 + hours * 3600 + days * 86400
        if step < 0:
            raise ValueError(f"a clock only moves forward, not by {step} s")
        return self.set(self._now + step)

    def set(self, when: float | datetime.datetime) -> float:
        """Move to ``when`` (not before the current time)."""
        target = _epoch(when)
        if target < self._now:
            raise ValueError("a clock only moves forward")
        before, self._now = self._now, target
        for listener in list(self._listeners):
            listener(before, target)
        return target

    def on_advance(self, listener: Callable[[float, float], None]) -> None:
        """Call ``listener(before, after)`` after each move."""
        self._listeners.append(listener)

    def __repr__(self) -> str:
        moment = datetime.datetime.fromtimestamp(self._now, datetime.timezone.utc)
        return f"<Clock {moment.isoformat(timespec='seconds')}>"


def _epoch(when: float | datetime.datetime) -> float:
    return when.timestamp() if isinstance(when, datetime.datetime) else float(when)
