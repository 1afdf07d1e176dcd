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
when both are given). Cron expressions are evaluated by croniter, durations follow rufus
(``1y 1M 1w 1d 1h 1m 1s``).

``Recurring`` is the master's side: it knows when each schedule fires next and enqueues a
tick with one script that checks the master lock and records the tick, so that a tick is
enqueued at most once however many schedulers (ours) run, and missed ticks are coalesced.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import re
import time
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    import croniter as _croniter
    import yaml
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        f"recurring schedules need croniter and PyYAML: pip install 'resque[scheduler]' ({exc})"
    ) from exc

from resque import jobs, layout
from resque.errors import NoQueueError, ResqueError
from resque.layout import check_queue_name

if TYPE_CHECKING:
    from resque.client import Resque
    from resque.scheduler.lock import MasterLock

log = logging.getLogger("resque.scheduler")


class ScheduleError(ResqueError, ValueError):
    """A schedule that cannot run: the message names the schedule and what to fix."""


# --- triggers ---------------------------------------------------------------------------------

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
        try:
            _croniter.croniter(self.fields, _dt.datetime(2000, 1, 1),
                               second_at_beginning=self.seconds_first)
        except (_croniter.CroniterError, ValueError, KeyError) as exc:
            raise ValueError(f"cron {expression!r} cannot be parsed: {exc}") from None

    def next_after(self, moment: float) -> float:
        """The first tick strictly after ``moment`` (Unix seconds)."""
        if self.zone is not None:
            start = _dt.datetime.fromtimestamp(moment, self.zone)
        else:  # naive local time; .timestamp() maps it back through the local zone's rules
            start = _dt.datetime.fromtimestamp(moment)
        found = _croniter.croniter(
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
    try:
        trigger: Cron | Every
        if config.get("cron"):
            trigger = Cron(config["cron"])
        elif config.get("every"):
            trigger = Every(config["every"])
        else:
            raise ValueError("no cron / every found")
    except ValueError as exc:
        raise ScheduleError(f"schedule {name!r}: {exc}") from None
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

    def __init__(self, resque: Resque) -> None:
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
            last = _last_run(last_ticks.get(name.encode()), last_text)
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


def _last_run(tick: Any, text: Any) -> float | None:
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


# --- the master's recurring schedules ---------------------------------------------------------

# KEYS: master lock, scheduler:last_tick, delayed:last_enqueued_at, queues, queue:<q>.
# ARGV: lock value ('' = no fence), name, tick (Unix seconds), last_enqueued_at text, queue,
# payload, wake channel. Returns 1 enqueued, 0 the tick was enqueued already, -2 not master.
FIRE_SCRIPT = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return -2 end
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[2]))
if last and last >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[4], ARGV[5])
redis.call('RPUSH', KEYS[5], ARGV[6])
redis.call('PUBLISH', ARGV[7], '')
redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
return 1
"""

FIRED, ALREADY, LOST = 1, 0, -2


class Recurring:
    """The schedules a master fires: each one's next time, and firing a tick at most once.

    Missed ticks (downtime, failover) are coalesced: a master that takes over fires each
    schedule at most once for what it missed since its last recorded run, and only if that
    run is within ``catch_up`` seconds; older misses are skipped, as cron and Ruby do.
    """

    def __init__(
        self,
        resque: Resque,
        *,
        env: str | None = None,
        catch_up: float = 0.0,
        fence: MasterLock | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.resque = resque
        self.keys = resque.keys
        self.env = env
        self.catch_up = catch_up
        self.fence = fence
        self.clock = clock
        self.entries: dict[str, Entry] = {}
        self.next_at: dict[str, float] = {}
        self._fire = resque.redis.register_script(FIRE_SCRIPT)

    def load(self, configs: Mapping[str, Any], now: float | None = None) -> None:
        """Replace every schedule, resuming from the runs recorded in Redis (one round trip).
        A bad schedule is logged and skipped; the others load."""
        now = self.clock() if now is None else now
        self.entries.clear()
        self.next_at.clear()
        with self.resque.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.schedule_last_tick)
            pipe.hgetall(self.keys.last_enqueued_at)
            ticks, texts = pipe.execute()
        for name, config in configs.items():
            key = name.encode()
            self._add(name, config, now, _last_run(ticks.get(key), texts.get(key)))
        log.info("schedules loaded: %s", ", ".join(sorted(self.entries)) or "none")

    def clear(self) -> None:
        """Forget every schedule (a standby fires nothing)."""
        self.entries.clear()
        self.next_at.clear()

    def update(self, name: str, config: Any | None, now: float | None = None) -> None:
        """A dynamic change: (re)schedule ``name`` from now, or unschedule it (None)."""
        now = self.clock() if now is None else now
        old = self.entries.get(name)
        if config is not None and old is not None and old.config == config:
            return  # flagged but unchanged: keep its cadence
        if old is not None:
            log.info("removing schedule %s", name)
            del self.entries[name]
            self.next_at.pop(name, None)
        if config is not None:
            self._add(name, config, now, None)

    def _add(self, name: str, config: Any, now: float, last: float | None) -> None:
        if isinstance(config, Mapping) and not env_matches(config, self.env):
            log.info("skipping schedule %s: its env does not include %r", name, self.env)
            return
        try:
            entry = parse_entry(name, config, self.resque.registry)
        except ScheduleError as exc:
            log.error("%s; skipped", exc)
            return
        if entry.target is None:
            log.info("schedule %s: class %s is not registered here; it is queued on %s for "
                     "whichever worker knows it", name, entry.class_name, entry.queue)
        self.entries[name] = entry
        self.next_at[name] = self._first_time(entry, now, last)
        log.info("scheduling %s (%s)", name, entry.trigger.describe())

    def _first_time(self, entry: Entry, now: float, last: float | None) -> float:
        trigger = entry.trigger
        if isinstance(trigger, Cron):
            if last is not None:
                missed = trigger.next_after(last)
                if missed <= now and now - missed <= self.catch_up:
                    return missed
            return trigger.next_after(now)
        if last is not None:
            following = last + trigger.seconds
            if following > now or now - following <= self.catch_up:
                return following
        first = trigger.first_in if trigger.first_in is not None else trigger.seconds
        return now + first

    def next_wakeup(self) -> float | None:
        return min(self.next_at.values(), default=None)

    def fire_due(self, now: float | None = None) -> bool:
        """Enqueue every schedule due at ``now``, once each; False if we lost the lock."""
        now = self.clock() if now is None else now
        for name in sorted(self.next_at, key=self.next_at.__getitem__):
            if self.next_at[name] > now:
                break
            if self._fire_one(self.entries[name], now) == LOST:
                return False
        return True

    def _fire_one(self, entry: Entry, now: float) -> int:
        trigger = entry.trigger
        due = self.next_at[entry.name]
        if isinstance(trigger, Cron):
            tick = trigger.last_at_or_before(due, now)
            self.next_at[entry.name] = trigger.next_after(now)
        else:
            tick = due
            following = due + trigger.seconds
            self.next_at[entry.name] = following if following > now else now + trigger.seconds
        try:
            return self._enqueue(entry, int(tick), now)
        except Exception:  # a failing hook or a bad value: report, keep the other schedules
            log.exception("schedule %s could not be enqueued", entry.name)
            return ALREADY

    def _enqueue(self, entry: Entry, tick: int, now: float) -> int:
        delayed = self.resque.delayed
        target, args = entry.target, entry.args
        if target is not None and not delayed.before_queueing(target, args):
            log.info("schedule %s: a hook declined this tick", entry.name)
            return ALREADY
        result = int(self._fire(
            keys=[self.fence.key if self.fence else self.keys.scheduler_master_lock(),
                  self.keys.schedule_last_tick, self.keys.last_enqueued_at, self.keys.queues,
                  self.keys.queue(entry.queue)],
            args=[self.fence.value if self.fence else "", entry.name, tick,
                  layout.last_enqueued_at(now), entry.queue, entry.payload,
                  self.keys.wake_channel(entry.queue)],
        ))
        if result == FIRED:
            log.info("queueing %s (%s)", entry.class_name, entry.name)
            if target is not None:
                delayed.after_queueing(target, args)
        elif result == ALREADY:
            log.info("schedule %s: tick %d was already enqueued", entry.name, tick)
        else:
            log.warning("schedule %s not enqueued: this process is no longer master", entry.name)
        return result
