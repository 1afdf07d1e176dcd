"""Times read back with their zones, as Ruby reads them (resque/rubytime.py).

Expected instants come from the real Ruby, e.g.
``ruby -rdate -e 'p DateTime.parse("2026/12/01 15:01:31 EST").new_offset(0)'``; one test asks
it about every abbreviation in our table, another checks the table against the tz database.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import zoneinfo
from collections.abc import Callable

import pytest

from resque import layout, rubytime

UTC = dt.timezone.utc
GOLDEN_NOW = 1795823182  # 2026-11-27 23:46:22 UTC
GOLDEN_MOMENT = dt.datetime(2026, 11, 27, 23, 46, 22, tzinfo=UTC)

# Ruby's DateTime.parse places these one hour off; the tz database: NST -3:30, NDT -2:30.
RUBY_DIFFERS = {"NST": -2.5, "NDT": -1.5}


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        # A Ruby worker in a zone without a letter abbreviation writes its offset.
        ("2026/12/01 00:01:30 +04", "2026-11-30 20:01:30"),
        ("2026/12/01 00:01:30 +11", "2026-11-30 13:01:30"),
        ("2026/12/01 00:01:30 +0530", "2026-11-30 18:31:30"),
        ("2026/12/01 00:01:30 -03", "2026-12-01 03:01:30"),
        ("2026/12/01 15:01:31 +05:30", "2026-12-01 09:31:31"),
        ("2026/12/01 15:01:31 -0330", "2026-12-01 18:31:31"),
        ("2026/12/01 15:01:31 GMT+2", "2026-12-01 13:01:31"),
        ("2026/12/01 15:01:31 UTC+05:30", "2026-12-01 09:31:31"),
        # Abbreviations, as Ruby's resque-web (DateTime.parse) places them.
        ("2026/12/01 15:01:31 EST", "2026-12-01 20:01:31"),
        ("2026/12/01 15:01:31 CET", "2026-12-01 14:01:31"),
        ("2026/12/01 15:01:31 PDT", "2026-12-01 22:01:31"),
        ("2026/12/01 15:01:31 AEST", "2026-12-01 05:01:31"),
        ("2026/12/01 15:01:31 NZDT", "2026-12-01 02:01:31"),
        ("2026/12/01 15:01:31 MSK", "2026-12-01 12:01:31"),
        ("2026/12/01 15:01:31 ChST", "2026-12-01 05:01:31"),
        ("2026/12/01 15:01:31 utc", "2026-12-01 15:01:31"),
        ("2026/12/01 15:01:31 NST", "2026-12-01 18:31:31"),  # the tz database's -3:30
    ],
)
def test_zones_ruby_writes_are_read_at_the_instant_they_mean(
    utc: None, text: str, instant: str
) -> None:
    assert layout.parse_time(text) == dt.datetime.fromisoformat(instant).replace(tzinfo=UTC)
    assert layout.is_time(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "2026/12/01 15:01:31 CST",  # Chicago, Havana or Shanghai
        "2026/12/01 15:01:31 IST",  # Kolkata, Jerusalem or Dublin
        "2026/12/01 15:01:31 PST",  # Los Angeles or Manila
        "2026/12/01 15:01:31 XYZ",  # no zone we know
        "2026/12/01 15:01:31 Eastern Standard Time",
        "2026/12/01 15:01:31 +25",
    ],
)
def test_a_time_whose_zone_cannot_be_placed_is_a_time_without_an_instant(
    utc: None, text: str
) -> None:
    assert layout.parse_time(text) is None
    assert layout.is_time(text) is True


@pytest.mark.parametrize(
    ("zone", "text", "instant"),
    [
        ("Asia/Shanghai", "2026/12/01 15:01:31 CST", "2026-12-01 07:01:31"),
        ("America/Chicago", "2026/12/01 15:01:31 CST", "2026-12-01 21:01:31"),
        ("America/Havana", "2026/12/01 15:01:31 CST", "2026-12-01 20:01:31"),
        ("Asia/Kolkata", "2026/12/01 15:01:31 IST", "2026-12-01 09:31:31"),
        ("Europe/Dublin", "2026/06/01 15:01:31 IST", "2026-06-01 14:01:31"),
        ("Asia/Manila", "2026/12/01 15:01:31 PST", "2026-12-01 07:01:31"),
    ],
)
def test_an_ambiguous_abbreviation_of_this_machines_own_zone_is_read_with_its_offset(
    set_tz: Callable[[str], None], zone: str, text: str, instant: str
) -> None:
    set_tz(zone)
    assert layout.parse_time(text) == dt.datetime.fromisoformat(instant).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "zone",
    ["UTC", "America/New_York", "Asia/Dubai", "Asia/Kolkata", "Asia/Shanghai", "Asia/Kathmandu",
     "America/Sao_Paulo", "America/St_Johns", "Australia/Sydney", "Pacific/Chatham",
     "Europe/Dublin", "Asia/Manila", "America/Havana", "Africa/Casablanca"],
)
def test_failed_at_written_in_any_zone_reads_back_as_the_same_instant(
    set_tz: Callable[[str], None], zone: str
) -> None:
    set_tz(zone)
    assert layout.parse_time(layout.failed_at(GOLDEN_NOW)) == GOLDEN_MOMENT


def _abbreviations_in_use() -> dict[str, set[float]]:
    """Every letter abbreviation the tz database gives a zone from 2024 to 2026, with the
    offsets (hours) it stands for."""
    found: dict[str, set[float]] = {}
    for name in zoneinfo.available_timezones():
        if name.startswith(("Etc/", "SystemV/")) or name in ("posixrules", "Factory"):
            continue
        zone = zoneinfo.ZoneInfo(name)
        for month in range(1, 37):
            moment = dt.datetime(2024 + (month - 1) // 12, (month - 1) % 12 + 1, 15, 12,
                                 tzinfo=UTC).astimezone(zone)
            abbreviation = moment.tzname() or ""
            offset = moment.utcoffset()
            if abbreviation[:1].isalpha() and offset is not None:
                found.setdefault(abbreviation.upper(), set()).add(offset.total_seconds() / 3600)
    return found


def test_the_table_places_every_abbreviation_the_tz_database_writes_today() -> None:
    in_use = _abbreviations_in_use()
    assert len(in_use) > 40, "no tz database here?"
    ambiguous = {name for name, offsets in in_use.items() if len(offsets) > 1}
    assert ambiguous == rubytime.AMBIGUOUS_ZONES
    placed = {name: offsets.pop() for name, offsets in in_use.items() if name not in ambiguous}
    assert {name: rubytime.ZONE_OFFSETS.get(name) for name in placed} == placed


def test_the_table_agrees_with_real_rubys_date_parse_but_for_newfoundland() -> None:
    try:
        done = subprocess.run(
            ["ruby", "-rdate", "-e",
             'ARGV.each { |z| puts "#{z} #{Date._parse("2026/12/01 15:01:31 #{z}")[:offset]}" }',
             *rubytime.ZONE_OFFSETS],
            capture_output=True, text=True, timeout=60, check=True,
        )
    except FileNotFoundError:
        pytest.skip("ruby is not installed")
    ruby = {}
    for line in done.stdout.splitlines():
        name, _, seconds = line.partition(" ")
        ruby[name] = int(seconds) / 3600 if seconds else None
    expected = {**rubytime.ZONE_OFFSETS, **RUBY_DIFFERS}
    assert {name: float(hours) for name, hours in expected.items()} == ruby
