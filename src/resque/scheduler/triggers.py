"""When a recurring schedule fires: cron expressions (croniter) and ``every`` intervals.

Cron expressions have 5 fields, or 6 with seconds first (fugit's order), and an optional time
zone; durations follow rufus (``1y 1M 1w 1d 1h 1m 1s``), as in resque-scheduler.

Only ``Cron`` needs croniter (the ``scheduler`` extra), and only when one is built: ``every``
schedules and the delayed-job mover run on the core install.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import re
import zoneinfo
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from resque.errors import ResqueError

log = logging.getLogger("resque.scheduler")

EXTRA = "pip install 'resque[scheduler]'"
CRON_NEEDS = f"cron expressions need croniter: {EXTRA}"


class MissingExtra(ResqueError, ImportError):
    """A schedule needs a package of the ``scheduler`` extra: croniter for cron, PyYAML for
    schedule files. The message says which, and the one command that installs both."""


def _croniter() -> ModuleType:
    try:
        import croniter
    except ImportError:
        raise MissingExtra(CRON_NEEDS) from None
    return croniter

_DURATION_UNITS = {
    "y": 365 * 86400, "M": 30 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1,
}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|[yMwdhms])")


def parse_duration(value: Any) -> float:
    """Seconds of a rufus duration: ``"3s"``, ``"1h30m"``, ``"1.5d"``, or a bare number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value):
        seconds = float(value)
    elif isinstance(value, str) and re.fullmatch(rf"(?:{_DURATION_RE.pattern})+", value.strip()):
        seconds = sum(
            float(number) * (0.001 if unit == "ms" else _DURATION_UNITS[unit])
            for number, unit in _DURATION_RE.findall(value.strip())
        )
    else:
        raise ValueError(f"{value!r} is not a duration (like 30s, 5m, 1h30m, 1d)")
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"duration {value!r} must be positive")
    return seconds


class Cron:
    """A cron expression: 5 fields, or 6 with seconds first (fugit's order), optionally
    followed by a time zone (``Europe/Stockholm``, ``UTC``). Without a zone it runs in the
    process's local time, as Ruby's does."""

    def __init__(self, expression: str) -> None:
        if not isinstance(expression, str) or not expression.strip():
            raise ValueError("empty cron expression")
        self.expression = expression.strip()
        fields = self.expression.split()
        self.zone: _dt.tzinfo | None = None
        if len(fields) > 1 and _looks_like_zone(fields[-1]):
            self.zone = _zone(fields[-1])
            fields = fields[:-1]
        if len(fields) not in (1, 5, 6) or (len(fields) == 1 and not fields[0].startswith("@")):
            raise ValueError(
                f"cron {expression!r} has {len(fields)} fields; expected 5 "
                "(min hour day month weekday) or 6 (seconds first), then an optional zone"
            )
        self.fields = " ".join(fields)
        self.seconds_first = len(fields) == 6
        self._croniter = _croniter()
        try:
            self._croniter.croniter(self.fields, _dt.datetime(2000, 1, 1),
                                    second_at_beginning=self.seconds_first)
        except (self._croniter.CroniterError, ValueError, KeyError) as exc:
            raise ValueError(f"cron {expression!r} cannot be parsed: {exc}") from None

    def next_after(self, moment: float) -> float:
        """The first tick strictly after ``moment`` (Unix seconds)."""
        if self.zone is not None:
            start = _dt.datetime.fromtimestamp(moment, self.zone)
        else:  # naive local time; .timestamp() maps it back through the local zone's rules
            start = _dt.datetime.fromtimestamp(moment)
        found: _dt.datetime = self._croniter.croniter(
            self.fields, start, second_at_beginning=self.seconds_first
        ).get_next(_dt.datetime)
        return found.timestamp()

    def last_at_or_before(self, first: float, now: float) -> float:
        """The latest tick in ``[first, now]``, given that ``first`` is a tick."""
        tick = first
        for _ in range(10_000):
            following = self.next_after(tick)
            if following > now:
                return tick
            tick = following
        return now

    def describe(self) -> str:
        return f"cron: {self.expression}"


class Every:
    """An ``every`` interval, first firing ``first_in`` (default: one interval) after load."""

    def __init__(self, spec: Any) -> None:
        options: Mapping[str, Any] = {}
        if isinstance(spec, list) and spec:
            if len(spec) == 2 and isinstance(spec[1], Mapping):
                options = spec[1]
            spec = spec[0]
        self.text = str(spec)
        self.seconds = parse_duration(spec)
        first_in = options.get("first_in")
        self.first_in = parse_duration(first_in) if first_in is not None else None
        unknown = sorted(set(options) - {"first_in"})
        if unknown:
            log.warning("every %s: options %s are not supported and are ignored", spec, unknown)

    def describe(self) -> str:
        if self.first_in is not None:
            return f"every: {self.text} (first in {self.first_in:g}s)"
        return f"every: {self.text}"


def _looks_like_zone(token: str) -> bool:
    return "/" in token or token.upper() in ("UTC", "GMT", "Z") or token.startswith(("+", "-"))


def _zone(name: str) -> _dt.tzinfo:
    if name.upper() in ("UTC", "GMT", "Z"):
        return _dt.timezone.utc
    offset = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", name)
    if offset:
        delta = _dt.timedelta(hours=int(offset[2]), minutes=int(offset[3]))
        return _dt.timezone(-delta if offset[1] == "-" else delta)
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
