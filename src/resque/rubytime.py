"""Reading back the times Ruby, Perl and older tools wrote, zone and all.

Ruby writes ``failed_at`` with ``%Z``: the zone's abbreviation (``EST``, ``CET``, ``AEST``)
or, for a zone that has none, its offset (``+04``, ``+0530``, ``-03``). Ruby's resque-web
reads it back with ``DateTime.parse``, which places an abbreviation with a table of its own.
Ours is below: the abbreviations the tz database gives today's zones, and older ones it gave
before 2017, each with the offset it means; tests/test_rubytime.py checks it against the real
Ruby. Where Ruby's table is wrong (Newfoundland) we follow the tz database.

A time whose zone cannot be placed is still a time: an abbreviation we do not know, or one
that means different offsets in different places today (``CST`` is Chicago, Havana and
Shanghai). It is shown as recorded, never at a guessed instant, and never counts as
malformed. An ambiguous abbreviation that is this machine's own (``CST`` read in Shanghai)
is read with this machine's offset: whoever wrote it most likely shared our zone.
"""

from __future__ import annotations

import datetime as _dt
import re
import time
from typing import Any

__all__ = ["ZONE_OFFSETS", "AMBIGUOUS_ZONES", "is_time", "parse_time"]

# Hours east of UTC.
ZONE_OFFSETS: dict[str, float] = {
    # Universal
    "UTC": 0, "GMT": 0, "UT": 0, "Z": 0,
    # Europe
    "WET": 0, "WEST": 1, "BST": 1, "CET": 1, "CEST": 2, "MET": 1, "MEST": 2,
    "EET": 2, "EEST": 3, "MSK": 3,
    # Africa and the Middle East
    "WAT": 1, "CAT": 2, "SAST": 2, "EAT": 3, "IDT": 3,
    # Asia
    "PKT": 5, "WIB": 7, "HKT": 8, "WITA": 8, "JST": 9, "KST": 9, "WIT": 9,
    # Australia and the Pacific
    "AWST": 8, "ACST": 9.5, "ACDT": 10.5, "AEST": 10, "AEDT": 11, "CHST": 10,
    "NZST": 12, "NZDT": 13, "SST": -11,
    # North America
    "HST": -10, "HDT": -9, "AKST": -9, "AKDT": -8, "PDT": -7, "MST": -7, "MDT": -6,
    "EST": -5, "EDT": -4, "AST": -4, "ADT": -3, "NST": -3.5, "NDT": -2.5,
    # Written by the tz database before 2017 (today these zones write "+08" and the like)
    "AZOT": -1, "AZOST": 0, "CVT": -1, "AZT": 4, "GET": 4, "AFT": 4.5, "IRST": 3.5,
    "IRDT": 4.5, "UZT": 5, "NPT": 5.75, "ICT": 7, "SGT": 8, "MYT": 8, "PHT": 8,
    "FJT": 12, "CHAST": 12.75, "TOT": 13, "HAST": -10, "HADT": -9,
    "COT": -5, "PET": -5, "CLT": -4, "CLST": -3, "ART": -3, "BRT": -3, "UYT": -3,
    "BRST": -2,
}

# Abbreviations that today's zones use with different offsets; placed only when they are
# this machine's own.
AMBIGUOUS_ZONES = frozenset({
    "CST",  # America/Chicago -6, America/Havana -5, Asia/Shanghai and Asia/Taipei +8
    "CDT",  # America/Chicago -5, America/Havana -4
    "IST",  # Asia/Kolkata +5:30, Asia/Jerusalem +2, Europe/Dublin +1
    "PST",  # America/Los_Angeles -8, Asia/Manila +8
})

_TIME = re.compile(
    r"\s*(\d{4})[-/](\d{1,2})[-/](\d{1,2})[T ](\d{1,2}):(\d{2}):(\d{2})(\.\d+)?\s*(.*?)\s*",
    re.ASCII,
)
_OFFSET = re.compile(r"(?:UTC|GMT|UT)?([+-])(\d{1,2})(?::?(\d{2}))?", re.ASCII | re.IGNORECASE)
_EPOCH = re.compile(r"\s*\d+(\.\d+)?\s*", re.ASCII)  # ASCII: not "٠" (an Arabic zero)


class _Unplaced(Exception):
    """A time whose zone we cannot turn into an offset."""


def parse_time(value: Any) -> _dt.datetime | None:
    """The instant a time written by Ruby, Perl or older tools means; ``None`` if it is not
    a time or its zone cannot be placed (see ``is_time``). Reads iso8601 (``Z`` or an
    offset), ``2026/11/27 23:46:22 EST`` (any abbreviation above, or ``+04``, ``+0530``,
    ``+05:30``, ``GMT+2``), the zone-less multi-queue form (local time), Ruby's ``Time#to_s``
    and epoch seconds (pyres)."""
    try:
        return _read(value)
    except _Unplaced:
        return None


def is_time(value: Any) -> bool:
    """Whether Ruby would read this as a time, whether or not we can place its zone: a
    failure record with such a ``failed_at`` is not malformed (resque-web shows it)."""
    try:
        return _read(value) is not None
    except _Unplaced:
        return True


def _read(value: Any) -> _dt.datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _from_epoch(value)
    if not isinstance(value, str):
        return None
    if _EPOCH.fullmatch(value):
        return _from_epoch(float(value))
    match = _TIME.fullmatch(value)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = _dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            int(float(fraction) * 1_000_000) if fraction else 0,
        )
    except ValueError:  # 2026/13/45: Ruby refuses it too
        return None
    if not zone:
        return moment.astimezone()  # the multi-queue backend's form: the writer's local time
    return moment.replace(tzinfo=_dt.timezone(_zone_offset(zone)))


def _zone_offset(zone: str) -> _dt.timedelta:
    numeric = _OFFSET.fullmatch(zone)
    if numeric:
        sign, hours, minutes = numeric.groups()
        offset = _dt.timedelta(hours=int(hours), minutes=int(minutes or 0))
        if offset >= _dt.timedelta(hours=24) or int(minutes or 0) >= 60:
            raise _Unplaced(zone)
        return -offset if sign == "-" else offset
    name = zone.upper()
    local = _local_offset(name)
    if local is not None:
        return local
    if name in AMBIGUOUS_ZONES or name not in ZONE_OFFSETS:
        raise _Unplaced(zone)
    return _dt.timedelta(hours=ZONE_OFFSETS[name])


def _local_offset(name: str) -> _dt.timedelta | None:
    """This machine's offset for an abbreviation its own zone writes (standard or summer)."""
    standard, summer = time.tzname
    if name == standard.upper():
        return _dt.timedelta(seconds=-time.timezone)
    if time.daylight and name == summer.upper():
        return _dt.timedelta(seconds=-time.altzone)
    return None


def _from_epoch(seconds: float) -> _dt.datetime | None:
    try:
        return _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc)
    except (OverflowError, OSError, ValueError):  # NaN, infinity, out of time_t range
        return None
