"""The time formats Ruby resque 3.0 and resque-scheduler 5.0 write, one function per field.

Each writer names the field it formats and Ruby's expression for it; resque-web parses
these texts, so a wrong format shows as NaN or a 500 there. Reading any of them back is
``resque.rubytime``'s job.
"""

from __future__ import annotations

import datetime as _dt
import time

from resque import rubytime


def started_at(now: float | None = None) -> str:
    """``worker:<id>:started``: Ruby's ``Time.now.to_s``, e.g. ``2026-11-27 23:46:22 +0000``."""
    return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(now))


def run_at(now: float | None = None) -> str:
    """``run_at`` of the working-on record: ``Time.now.utc.iso8601``, e.g. ``...T23:46:22Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))


def heartbeat_at(redis_seconds: float) -> str:
    """Heartbeat value: Redis server time as local iso8601, e.g. ``...T23:46:22+00:00``."""
    moment = _dt.datetime.fromtimestamp(int(redis_seconds)).astimezone()
    return moment.isoformat(timespec="seconds")


def failed_at(now: float | None = None) -> str:
    """``failed_at`` and ``retried_at`` (redis backend): ``2026/11/27 23:46:22 UTC``."""
    return time.strftime("%Y/%m/%d %H:%M:%S %Z", time.localtime(now))


def retried_at_multi_queue(now: float | None = None) -> str:
    """``retried_at`` written by the redis_multi_queue backend: no zone, as in Ruby."""
    return time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(now))


# Reading them back (any zone Ruby or Perl writes, and pyres's epoch seconds) is
# resque.rubytime's job: ``parse_time`` gives the instant, ``is_time`` says whether a text
# is a time at all (one whose zone cannot be placed is shown as recorded).
parse_time = rubytime.parse_time
is_time = rubytime.is_time


def last_enqueued_at(now: float | None = None) -> str:
    """``delayed:last_enqueued_at`` values: Ruby's local ``Time#to_s``, as ``started_at``."""
    return started_at(now)
