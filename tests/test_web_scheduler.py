"""The dashboard's scheduler banners: overdue delayed jobs with no master (overview and
Delayed tab), and on the Schedule tab whether anyone follows the schedules stored in Redis."""

from __future__ import annotations

import html
import re
import time

import redis
from support.webkit import client

from resque import Resque
from resque.scheduler.delayed import Delayed

LOCK = "resque:resque:resque_scheduler_master_lock"
RECORD = "resque:scheduler:master"


def banner(page: str, banner_id: str) -> str | None:
    """The text of the banner with this id, whitespace collapsed; None if there is none."""
    found = re.search(rf'<div class="banner [a-z ]+" id="{banner_id}">(.*?)</div>', page, re.S)
    if found is None:
        return None
    text = re.sub(r"<[^>]+>", "", found.group(1))
    return " ".join(html.unescape(text).split())


def delay_overdue(resque: Resque) -> None:
    """Three jobs due 150 s and 30 s ago, stored as if no scheduler had run since."""
    back_then = Delayed(resque, clock=lambda: 0.0)
    now = int(time.time())
    for args, due in (((1,), now - 150), ((2,), now - 150), ((3,), now - 30)):
        back_then.enqueue_at_with_queue("mail", due, "Mailer", *args)


OVERDUE = ("3 delayed jobs are overdue (the oldest due 2 min ago) and no scheduler is running "
           "(no master lock), so nothing moves them to their queues. Start resque scheduler "
           "(or Ruby's resque-scheduler).")


def test_the_overview_warns_of_overdue_jobs_when_no_scheduler_runs(resque: Resque) -> None:
    delay_overdue(resque)
    assert banner(client(resque).get("/").text, "scheduler-overdue") == OVERDUE


def test_the_overview_has_no_scheduler_banner_while_a_master_runs(
    r: redis.Redis, resque: Resque
) -> None:
    delay_overdue(resque)
    r.set(LOCK, "ruby-host:4242")
    assert banner(client(resque).get("/").text, "scheduler-overdue") is None


def test_the_delayed_tab_warns_of_overdue_jobs_when_no_scheduler_runs(resque: Resque) -> None:
    delay_overdue(resque)
    assert banner(client(resque).get("/delayed").text, "scheduler-overdue") == OVERDUE


def test_the_delayed_tab_says_future_jobs_will_wait_when_no_scheduler_runs(
    resque: Resque
) -> None:
    resque.enqueue_in_with_queue("mail", 3600, "Mailer", 1)
    assert banner(client(resque).get("/delayed").text, "scheduler-none") == (
        "No scheduler is running (no master lock): these jobs will wait past their time until "
        "resque scheduler (or Ruby's resque-scheduler) starts.")


def test_the_schedule_tab_warns_when_no_scheduler_runs(resque: Resque) -> None:
    assert banner(client(resque).get("/schedule").text, "scheduler-none") == (
        "No scheduler is running (no master lock): no recurring job is enqueued and no delayed "
        "job is moved. Start resque scheduler (or Ruby's resque-scheduler).")


def test_the_schedule_tab_warns_when_our_master_is_not_dynamic(
    r: redis.Redis, resque: Resque
) -> None:
    r.set(LOCK, "box:77")
    r.set(RECORD, '{"lock":"box:77","dynamic":false,"interval":5.0}')
    assert banner(client(resque).get("/schedule").text, "scheduler-static") == (
        "The master scheduler box:77 runs without --dynamic: schedules stored in Redis (removed "
        "here, set by resque schedule set or Ruby's set_schedule) take effect only when it "
        "restarts or gets USR2.")


def test_the_schedule_tab_says_it_cannot_tell_whether_a_foreign_master_is_dynamic(
    r: redis.Redis, resque: Resque
) -> None:
    r.set(LOCK, "ruby-host:4242")
    assert banner(client(resque).get("/schedule").text, "scheduler-unknown") == (
        "The master scheduler ruby-host:4242 is not one of ours (Ruby's resque-scheduler?): "
        "whether it follows the schedules stored in Redis is unknown. It does only when "
        "started with DYNAMIC_SCHEDULE=true; otherwise a change made here takes effect when it "
        "restarts.")


def test_the_schedule_tab_has_no_banner_with_a_dynamic_master_of_ours(
    r: redis.Redis, resque: Resque
) -> None:
    r.set(LOCK, "box:77")
    r.set(RECORD, '{"lock":"box:77","dynamic":true,"interval":5.0}')
    page = client(resque).get("/schedule").text
    assert re.findall(r'id="(scheduler-[a-z]+)"', page) == []
