"""Recurring schedules: cron and every, YAML files, dynamic schedules in Redis, firing each
tick at most once, and the schedule tab's rows."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest
import redis
from support.replies import bytes_list

from resque import Registry, Resque, layout
from resque.scheduler.lock import MasterLock
from resque.scheduler.process import Scheduler
from resque.scheduler.recurring import ALREADY, FIRED, Recurring
from resque.scheduler.schedule import (
    Cron,
    Every,
    ScheduleError,
    env_matches,
    load_schedule_file,
    parse_duration,
    parse_entry,
)
from resque.settings import SchedulerSettings

UTC = dt.timezone.utc
T = dt.datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC).timestamp()  # a Saturday, 10:00 UTC


def noop_queue(r: redis.Redis) -> list[bytes]:
    return bytes_list(r.lrange("resque:queue:noop", 0, -1))


# --- triggers -----------------------------------------------------------------------------------


def test_five_field_cron_runs_in_the_named_zone() -> None:
    # 03:00 in Stockholm is 02:00 UTC in November (CET, UTC+1).
    cron = Cron("0 3 * * * Europe/Stockholm")
    expected = dt.datetime(2026, 11, 29, 2, 0, tzinfo=UTC).timestamp()
    assert cron.next_after(T) == expected
    assert Cron("30 6 * * 1 UTC").next_after(T) == dt.datetime(
        2026, 11, 30, 6, 30, tzinfo=UTC
    ).timestamp()


def test_six_field_cron_has_seconds_first_as_fugit() -> None:
    cron = Cron("*/20 * * * * * UTC")
    assert cron.next_after(T) == T + 20
    assert cron.next_after(T + 45) == T + 60
    assert Cron("15 0 10 * * * UTC").next_after(T) == T + 15  # 10:00:15


def test_cron_without_a_zone_uses_local_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        # 19:00 in Tokyo (UTC+9) is 10:00 UTC
        assert Cron("0 19 * * *").next_after(T - 1) == T
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("expression", ["99 * * * *", "* * *", "a b c d e", "0 3 * * * Mars/Base",
                                        "1 2 3 4 5 6 7", ""])
def test_unparsable_crons_are_refused_with_the_reason(expression: str) -> None:
    with pytest.raises(ValueError, match="cron|zone"):
        Cron(expression)


@pytest.mark.parametrize(("text", "seconds"), [
    ("3s", 3), ("5m", 300), ("1h30m", 5400), ("1d", 86400), ("1w", 604800), ("1.5h", 5400),
    ("2M", 60 * 86400), ("1y", 365 * 86400), ("90", 90), (45, 45), ("500ms", 0.5),
])
def test_every_durations_follow_rufus(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "3x", "-5s", "0s", True])
def test_bad_durations_are_refused(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_every_accepts_first_in_options_as_resque_scheduler() -> None:
    every = Every(["1h", {"first_in": "5m"}])
    assert (every.seconds, every.first_in) == (3600, 300)
    assert every.describe() == "every: 1h (first in 300s)"


# --- entries and files --------------------------------------------------------------------------


def test_entry_takes_queue_from_the_registered_class(registry: Registry) -> None:
    @registry.register
    class Cleanup:
        queue = "maintenance"

    entry = parse_entry("nightly", {"cron": "0 3 * * *", "class": Cleanup.__resque_name__,  # type: ignore[attr-defined]
                                    "args": {"deep": True}}, registry)
    assert entry.queue == "maintenance"
    assert entry.args == [{"deep": True}]  # a hash is one argument, as in Ruby
    assert layout.decode(entry.payload)["args"] == [{"deep": True}]


def test_unknown_class_without_queue_is_a_clear_error(registry: Registry) -> None:
    with pytest.raises(ScheduleError, match="'Ghost' is not a registered job class .* 'queue'"):
        parse_entry("ghost", {"every": "1m", "class": "Ghost"}, registry)
    entry = parse_entry("ghost", {"every": "1m", "class": "Ghost", "queue": "rb"}, registry)
    assert entry.queue == "rb" and entry.target is None  # queued for another app's workers


def test_entry_errors_name_the_schedule(registry: Registry) -> None:
    with pytest.raises(ScheduleError, match="'s1': no cron / every found"):
        parse_entry("s1", {"class": "A", "queue": "q"}, registry)
    with pytest.raises(ScheduleError, match="'s2': cron"):
        parse_entry("s2", {"cron": "61 * * * *", "class": "A", "queue": "q"}, registry)
    with pytest.raises(ScheduleError, match="'s3': no 'class'"):
        parse_entry("s3", {"every": "1m", "queue": "q"}, registry)


def test_cron_wins_over_every_and_custom_job_class_is_queued(registry: Registry) -> None:
    entry = parse_entry("both", {"cron": "0 * * * *", "every": "1s", "class": "Work", "queue": "q",
                                 "custom_job_class": "Resque::JobWithStatus"}, registry)
    assert isinstance(entry.trigger, Cron)
    assert entry.payload == '{"class":"Resque::JobWithStatus","args":[]}'


def test_env_filters_schedules_as_rails_env() -> None:
    assert env_matches({}, None)
    assert env_matches({"rails_env": "production, staging"}, "staging")
    assert not env_matches({"env": "production"}, "development")
    assert not env_matches({"env": "production"}, None)


def test_yaml_schedule_file_in_resque_scheduler_format(tmp_path: Path) -> None:
    path = tmp_path / "schedule.yml"
    path.write_text(
        "CleanupJob:\n  cron: '0 0 * * *'\n  queue: low\n"
        "tick:\n  every: ['30s', {first_in: '1s'}]\n  class: Noop\n  queue: noop\n  args: tick\n"
    )
    loaded = load_schedule_file(path)
    assert loaded["CleanupJob"]["class"] == "CleanupJob"  # the name is the default class
    assert loaded["tick"]["args"] == "tick"
    path.write_text("- not\n- a mapping\n")
    with pytest.raises(ScheduleError, match="must map schedule names"):
        load_schedule_file(path)
    path.write_text("a: [unclosed\n")
    with pytest.raises(ScheduleError, match="not valid YAML"):
        load_schedule_file(path)


# --- dynamic schedules in Redis -----------------------------------------------------------------


def test_set_refuses_a_bad_schedule_and_writes_nothing(r: redis.Redis, client: Resque) -> None:
    with pytest.raises(ScheduleError, match="cron"):
        client.schedules.set("bad", {"cron": "not a cron", "class": "A", "queue": "q"})
    assert r.keys("*") == []


def test_remove_deletes_and_flags_the_change(r: redis.Redis, client: Resque) -> None:
    client.schedules.set("s", {"every": "1m", "class": "A", "queue": "q"})
    r.delete("resque:schedules_changed")
    assert client.schedules.remove("s") is True
    assert client.schedules.get("s") is None
    assert r.smembers("resque:schedules_changed") == {b"s"}
    assert client.schedules.remove("s") is False


def test_status_rows_show_last_run_next_run_and_errors(
    r: redis.Redis, client: Resque
) -> None:
    client.schedules.set("daily", {"cron": "0 3 * * * UTC", "class": "A", "queue": "q",
                                   "description": "nightly"})
    client.schedules.set("often", {"every": "10m", "class": "B", "queue": "q"})
    r.hset("resque:persistent_schedules", "broken", '{"cron":"99 99 * * *","class":"C"}')
    r.hset("resque:delayed:last_enqueued_at", "often", layout.last_enqueued_at(T - 60))
    r.set("resque:resque:resque_scheduler_master_lock", "rubyhost:42")
    rows = {row.name: row for row in client.schedules.status({"local": {"every": "1h",
                                                                         "queue": "q"}}, now=T)}
    assert sorted(rows) == ["broken", "daily", "local", "often"]
    assert rows["daily"].next_run == dt.datetime(2026, 11, 29, 3, tzinfo=UTC).timestamp()
    assert (rows["daily"].interval, rows["daily"].description) == ("cron: 0 3 * * * UTC", "nightly")
    assert rows["often"].last_enqueued_at == layout.last_enqueued_at(T - 60)
    assert rows["often"].next_run == T - 60 + 600
    assert rows["local"].persistent is False and rows["local"].class_name == "local"
    assert rows["broken"].error and "cron" in rows["broken"].error
    assert client.schedules.master() == "rubyhost:42"


# --- firing -------------------------------------------------------------------------------------


def every_10s(r: redis.Redis, client: Resque) -> None:
    client.schedules.set("tick", {"every": "10s", "class": "Noop", "queue": "noop", "args": ["t"]})


def test_every_fires_one_interval_after_load_then_each_interval(
    r: redis.Redis, client: Resque
) -> None:
    every_10s(r, client)
    recurring = Recurring(client)
    recurring.load(client.schedules.persistent(), now=T)
    assert recurring.next_wakeup() == T + 10
    assert recurring.fire_due(T + 9) and noop_queue(r) == []
    assert recurring.fire_due(T + 10) and len(noop_queue(r)) == 1
    assert recurring.fire_due(T + 10) and len(noop_queue(r)) == 1
    assert recurring.fire_due(T + 20.5) and len(noop_queue(r)) == 2
    assert r.hget("resque:scheduler:last_tick", "tick") == str(int(T + 20)).encode()


def test_a_tick_is_enqueued_once_however_many_schedulers_fire_it(
    r: redis.Redis, client: Resque
) -> None:
    every_10s(r, client)
    first, second = Recurring(client), Recurring(Resque(r))
    for recurring in (first, second):
        recurring.load(client.schedules.persistent(), now=T)
    assert first._fire_one(first.entries["tick"], T + 10) == FIRED
    assert second._fire_one(second.entries["tick"], T + 10) == ALREADY
    assert len(noop_queue(r)) == 1


def test_missed_ticks_are_coalesced_into_one_within_the_catch_up_window(
    r: redis.Redis, client: Resque
) -> None:
    client.schedules.set("sec", {"cron": "* * * * * *", "class": "Noop", "queue": "noop"})
    r.hset("resque:scheduler:last_tick", "sec", int(T))  # the last master fired at T, then died
    taker = Recurring(client, catch_up=60)
    taker.load(client.schedules.persistent(), now=T + 30)  # 29 ticks were missed
    assert taker.fire_due(T + 30)
    assert len(noop_queue(r)) == 1, "the missed ticks are enqueued once, not 29 times"
    assert r.hget("resque:scheduler:last_tick", "sec") == str(int(T + 30)).encode()

    late = Recurring(client, catch_up=10)
    r.delete("resque:queue:noop")
    late.load(client.schedules.persistent(), now=T + 300)
    assert late.fire_due(T + 300) and noop_queue(r) == []  # too old: skipped, as cron does
    assert late.next_wakeup() == T + 301


def test_a_ruby_masters_last_enqueued_at_is_honoured_after_failover(
    r: redis.Redis, client: Resque
) -> None:
    every_10s(r, client)
    r.hset("resque:delayed:last_enqueued_at", "tick", layout.last_enqueued_at(T))
    taker = Recurring(client, catch_up=0)
    taker.load(client.schedules.persistent(), now=T + 4)
    assert taker.next_wakeup() == T + 10, "keeps Ruby's cadence instead of firing at once"


def test_a_scheduler_that_lost_the_lock_enqueues_nothing(r: redis.Redis, client: Resque) -> None:
    every_10s(r, client)
    ours = MasterLock(r, client.keys, value="us:1")
    assert MasterLock(r, client.keys, value="them:2").acquire()
    recurring = Recurring(client, fence=ours)
    recurring.load(client.schedules.persistent(), now=T)
    assert recurring.fire_due(T + 10) is False
    assert noop_queue(r) == []


def test_hooks_decline_and_observe_recurring_ticks(r: redis.Redis, registry: Registry,
                                                   client: Resque) -> None:
    seen: list[int] = []

    class Report:
        queue = "noop"

        @staticmethod
        def before_schedule(n: int) -> bool:
            return n > 0

        @staticmethod
        def after_schedule(n: int) -> None:
            seen.append(n)

    registry.register(Report, name="Report")
    recurring = Recurring(client)
    recurring.load({"yes": {"every": "1s", "class": "Report", "args": [1]},
                    "no": {"every": "1s", "class": "Report", "args": [0]}}, now=T)
    recurring.fire_due(T + 1)
    assert [json.loads(raw)["args"] for raw in noop_queue(r)] == [[1]] and seen == [1]


# --- the process's schedule handling, in-process ------------------------------------------------


def test_dynamic_changes_are_picked_up_on_the_next_pass(
    r: redis.Redis, client: Resque, caplog: pytest.LogCaptureFixture
) -> None:
    now = [T]
    scheduler = Scheduler(client, dynamic=True, interval=1, lock_timeout=30, clock=lambda: now[0])
    scheduler.run_once()
    assert scheduler.is_master and scheduler.recurring.entries == {}
    every_10s(r, client)
    r.hset("resque:persistent_schedules", "junk", "{not json")
    r.sadd("resque:schedules_changed", "junk")
    with caplog.at_level(logging.ERROR, logger="resque.scheduler"):
        assert scheduler.run_once() == T + 1
    assert "'junk': the config must be a mapping" in caplog.text
    assert list(scheduler.recurring.entries) == ["tick"]
    assert not r.exists("resque:schedules_changed")
    now[0] = T + 10
    scheduler.run_once()
    assert len(noop_queue(r)) == 1
    client.schedules.remove("tick")
    scheduler.run_once()
    assert scheduler.recurring.entries == {}


def test_a_standby_fires_nothing_and_reports_bad_local_schedules(
    r: redis.Redis, client: Resque, caplog: pytest.LogCaptureFixture
) -> None:
    r.set("resque:resque:resque_scheduler_master_lock", "rubyhost:1", ex=60)
    scheduler = Scheduler(client, schedule={"bad": {"cron": "nope", "queue": "q"},
                                            "tick": {"every": "1s", "class": "N", "queue": "noop"}},
                          interval=1, clock=lambda: T)
    with caplog.at_level(logging.ERROR, logger="resque.scheduler"):
        scheduler.run_once(T + 5)
    assert scheduler.is_master is False and noop_queue(r) == []
    assert "schedule 'bad': cron 'nope'" in caplog.text


# --- settings -----------------------------------------------------------------------------------


def test_the_scheduler_reads_resque_schedulers_variables(r: redis.Redis, client: Resque) -> None:
    settings = SchedulerSettings.from_env({
        "LOCK_TIMEOUT": "30", "RESQUE_SCHEDULER_INTERVAL": "2", "DYNAMIC_SCHEDULE": "true",
        "RESQUE_SCHEDULER_MASTER_LOCK_PREFIX": "shop", "DELAYED_REQUEUE_BATCH_SIZE": "7",
        "RAILS_ENV": "production", "APP_NAME": "shop",
    })
    scheduler = Scheduler(client, settings=settings, clock=lambda: T)
    assert scheduler.run_once() == T + 2
    assert r.ttl("resque:resque:shop:resque_scheduler_master_lock") == 30
    assert (scheduler.dynamic, scheduler.batch_size, scheduler.recurring.env) == (
        True, 7, "production")
    assert scheduler.recurring.catch_up == 30 + 2 * 2
    assert scheduler.title_suffix == "[shop][production]"


def test_keyword_arguments_override_the_settings(client: Resque) -> None:
    settings = SchedulerSettings.from_env({"RESQUE_SCHEDULER_INTERVAL": "2"})
    assert Scheduler(client, settings=settings, interval=0.5).interval == 0.5


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("LOCK_TIMEOUT", "soon", "LOCK_TIMEOUT='soon' is not valid: lock_timeout wants int"),
    ("LOCK_TIMEOUT", "0", "the lock timeout must be at least 1 second, not 0"),
    ("RESQUE_SCHEDULER_INTERVAL", "-1", "the interval must be positive, not -1.0"),
    ("DELAYED_REQUEUE_BATCH_SIZE", "5001", "the batch size must be within 1..5000, not 5001"),
])
def test_a_bad_scheduler_variable_is_refused_saying_why(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ValueError) as refused:
        SchedulerSettings.from_env({variable: value})
    assert str(refused.value) == message
