"""Recurring schedules in resque-scheduler's format: cron and ``every``, from a YAML file,
from code, and stored in Redis (dynamic schedules).

A schedule is a name and a config (contract §3)::

    cleanup:
      cron: "30 6 * * 1 Europe/Stockholm"   # 5 fields, or 6 with seconds first, + a zone
      class: Cleanup
      queue: low
      args: [1, "two"]
      description: Weekly cleanup

or ``every: 3s`` / ``every: ["1h", {"first_in": "5m"}]`` instead of ``cron`` (``cron`` wins
when both are given); ``triggers.py`` reads both.

Here: checking a config (``parse_entry``), schedule files, and the schedules stored in Redis
with the dashboard's view of them (``Schedules``). The master's side, firing ticks, is
``recurring.py``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resque import jobs, layout
from resque.errors import NoQueueError, ResqueError
from resque.layout import check_queue_name
from resque.scheduler.triggers import EXTRA, Cron, Every, MissingExtra, parse_duration

if TYPE_CHECKING:
    from resque.client import Client

__all__ = [  # parse_duration, Cron and Every are triggers.py's, kept importable from here
    "Cron", "Entry", "Every", "NeedsExtra", "ScheduleError", "ScheduleStatus", "Schedules",
    "env_matches", "last_run", "load_schedule_file", "parse_duration", "parse_entry",
    "with_class_names",
]

log = logging.getLogger("resque.scheduler")


class ScheduleError(ResqueError, ValueError):
    """A schedule that cannot run: the message names the schedule and what to fix."""


class NeedsExtra(ScheduleError):
    """A schedule (a cron expression) or a schedule file that this install cannot read: it
    needs the ``scheduler`` extra. Everything else keeps running."""


# --- schedule entries -------------------------------------------------------------------------


@dataclass
class Entry:
    """One schedule, checked and ready to fire."""

    name: str
    config: dict[str, Any]
    class_name: str
    queue: str
    args: list[Any]
    payload: str
    trigger: Cron | Every
    target: Any


def env_matches(config: Mapping[str, Any], env: str | None) -> bool:
    """``rails_env``/``env`` (names split by spaces or commas) must list our env, if set."""
    configured = config.get("rails_env") or config.get("env")
    if configured is None:
        return True
    return bool(env) and env in re.split(r"[\s,]+", str(configured))


def parse_entry(name: str, config: Any, registry: jobs.Registry) -> Entry:
    """Check a schedule config; ``ScheduleError`` says what is wrong and how to fix it."""
    if not isinstance(config, Mapping):
        raise ScheduleError(f"schedule {name!r}: the config must be a mapping, not {config!r}")
    class_name = config.get("class")
    if not isinstance(class_name, str) or not class_name:
        raise ScheduleError(f"schedule {name!r}: no 'class' (the job class name to enqueue)")
    trigger = _trigger(name, config)
    target = registry.get(class_name)
    queue = config.get("queue")
    if not queue and target is not None:
        try:
            queue = jobs.queue_of(target)
        except NoQueueError:
            queue = None
    if not queue:
        known = "has no queue" if target is not None else "is not a registered job class here"
        raise ScheduleError(
            f"schedule {name!r}: class {class_name!r} {known} and the schedule gives no "
            "'queue'; add queue: <name>, or load the module that registers it (--app)"
        )
    try:
        check_queue_name(queue)
        args = layout.job_params(config.get("args"))
        job_class = config.get("custom_job_class")
        payload_class = job_class if job_class and job_class != "Resque::Job" else class_name
        payload = layout.encode_job(str(payload_class), args)
    except (TypeError, ValueError) as exc:
        raise ScheduleError(f"schedule {name!r}: {exc}") from None
    return Entry(name, dict(config), class_name, queue, args, payload, trigger, target)


def _trigger(name: str, config: Mapping[str, Any]) -> Cron | Every:
    """When the schedule fires: ``cron`` wins over ``every``, as in resque-scheduler."""
    try:
        if config.get("cron"):
            return Cron(config["cron"])
        if config.get("every"):
            return Every(config["every"])
        raise ValueError("no cron / every found")
    except MissingExtra as exc:
        raise NeedsExtra(f"schedule {name!r}: {exc}") from None
    except ValueError as exc:
        raise ScheduleError(f"schedule {name!r}: {exc}") from None


def with_class_names(schedules: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Ruby's ``Resque.schedule=``: a config without ``class`` runs the class named like it."""
    prepared: dict[str, dict[str, Any]] = {}
    for name, config in schedules.items():
        entry = dict(config) if isinstance(config, Mapping) else config
        if isinstance(entry, dict):
            entry.setdefault("class", str(name))
        prepared[str(name)] = entry
    return prepared


def load_schedule_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a resque-scheduler YAML schedule file (a mapping of name to config)."""
    try:
        import yaml
    except ImportError:
        raise NeedsExtra(f"schedule file {path}: YAML files need PyYAML: {EXTRA}") from None
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScheduleError(f"cannot read schedule file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ScheduleError(f"schedule file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ScheduleError(f"schedule file {path} must map schedule names to configs")
    return with_class_names(data)


# --- dynamic schedules in Redis, and what the dashboard shows --------------------------------


@dataclass
class ScheduleStatus:
    """One row of the dashboard's schedule tab."""

    name: str
    config: dict[str, Any]
    persistent: bool
    description: str
    interval: str
    class_name: str
    queue: str
    args: list[Any]
    last_enqueued_at: str | None
    next_run: float | None
    error: str | None


class Schedules:
    """Schedules stored in Redis (``persistent_schedules``), readable and writable by any
    process, Ruby or ours; a master started with ``--dynamic`` picks changes up."""

    def __init__(self, resque: Client) -> None:
        self.resque = resque
        self.redis = resque.redis
        self.keys = resque.keys

    def set(self, name: str, config: Mapping[str, Any]) -> None:
        """Store a schedule (replacing one of that name) and flag it changed; one round trip.

        It is checked first, so a bad cron or a class without a queue raises
        ``ScheduleError`` here rather than in the scheduler. The stored JSON keeps the
        caller's key order, without ``persist``, as Ruby's ``set_schedule(persist: true)``.
        """
        stored = {key: value for key, value in config.items() if key != "persist"}
        parse_entry(name, stored, self.resque.registry)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.persistent_schedules, name, layout.encode(stored))
            pipe.sadd(self.keys.schedules_changed, name)
            pipe.execute()

    def remove(self, name: str) -> bool:
        """Delete a stored schedule and flag it changed; True if it existed."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self.keys.persistent_schedules, name)
            pipe.sadd(self.keys.schedules_changed, name)
            removed = pipe.execute()[0]
        return bool(removed)

    def get(self, name: str) -> dict[str, Any] | None:
        raw = self.redis.hget(self.keys.persistent_schedules, name)
        return _decode_config(name, raw) if raw is not None else None

    def persistent(self) -> dict[str, Any]:
        """Every stored schedule; a value that is not JSON is returned as its raw text."""
        found: Any = self.redis.hgetall(self.keys.persistent_schedules)
        return {layout.text(name): _decode_config(layout.text(name), raw)
                for name, raw in found.items()}

    def last_enqueued_at(self) -> dict[str, str]:
        found: Any = self.redis.hgetall(self.keys.last_enqueued_at)
        return {layout.text(name): layout.text(value) for name, value in found.items()}

    def master(self, lock_prefix: str = "") -> str | None:
        """The current master scheduler's ``host:pid`` (Ruby or ours), or None."""
        raw = self.redis.get(self.keys.scheduler_master_lock(lock_prefix))
        return layout.text(raw) if raw is not None else None

    def status(
        self, local: Mapping[str, Any] | None = None, now: float | None = None
    ) -> list[ScheduleStatus]:
        """Rows for the schedule tab, sorted by name: stored schedules (and ``local`` ones,
        e.g. a YAML file) with last run and next run. Two round trips."""
        now = time.time() if now is None else now
        stored = self.persistent()
        merged = {**with_class_names(local or {}), **stored}
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.last_enqueued_at)
            pipe.hgetall(self.keys.schedule_last_tick)
            last_texts, last_ticks = pipe.execute()
        rows = []
        for name in sorted(merged):
            config = merged[name]
            last_text = last_texts.get(name.encode())
            row = ScheduleStatus(
                name=name, config=config if isinstance(config, dict) else {},
                persistent=name in stored, description="", interval="", class_name="",
                queue="", args=[], last_enqueued_at=layout.text(last_text) if last_text else None,
                next_run=None, error=None,
            )
            try:
                entry = parse_entry(name, config, self.resque.registry)
            except ScheduleError as exc:
                row.error = str(exc)
                if isinstance(config, Mapping):
                    row.class_name = str(config.get("class") or "")
                rows.append(row)
                continue
            row.description = str(entry.config.get("description") or "")
            row.interval = entry.trigger.describe()
            row.class_name, row.queue, row.args = entry.class_name, entry.queue, entry.args
            last = last_run(last_ticks.get(name.encode()), last_text)
            if isinstance(entry.trigger, Cron):
                row.next_run = entry.trigger.next_after(now)
            elif last is not None:
                row.next_run = max(last + entry.trigger.seconds, now)
            rows.append(row)
        return rows


def _decode_config(name: str, raw: Any) -> Any:
    try:
        return layout.decode(raw)
    except ValueError:
        log.error("stored schedule %r is not JSON: %s", name, layout.raw_text(raw)[:200])
        return layout.raw_text(raw)


def last_run(tick: Any, text: Any) -> float | None:
    """When a schedule last fired: our tick record or Ruby's ``last_enqueued_at`` text."""
    found = []
    if tick is not None:
        try:
            found.append(float(tick))
        except ValueError:
            pass
    if text is not None:
        moment = layout.parse_time(layout.text(text))
        if moment is not None:
            found.append(moment.timestamp())
    return max(found) if found else None
