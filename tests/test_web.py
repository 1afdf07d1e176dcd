"""The dashboard's pages and actions, server-side, against the real Redis.

Each page shows what Ruby's resque-web shows for the same keys (counts from ``Resque.info``
and the failure lists), and each action changes Redis as the admin library specifies.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import redis
from support.replies import as_bytes, as_text
from support.webkit import (
    add_failure,
    add_worker,
    client,
    flash,
    hidden,
    live_counts,
    number,
    post,
    queue_sizes,
)

from resque import Resque, layout
from resque.admin import Admin
from resque.metrics import RECENT, record_sample

WORKER = "vm:1210:high,low"
IDLE = "vm:1211:low"
OTHER_HOST = "box:77:high"


@pytest.fixture
def farm(r: redis.Redis, resque: Resque) -> Resque:
    """A small farm: two queues, three workers on two hosts (one working), two failures."""
    keys = resque.keys
    resque.enqueue_many("Hello", [[i] for i in range(25)], queue="high")
    resque.push("low", {"class": "Sleep", "args": [3]})
    r.set(keys.stat("processed"), 120)
    add_worker(r, keys, WORKER, job=("high", "Sleep", [3]), processed=7, failed=2,
               heartbeat=time.time() - 5, started=time.time() - 600)
    add_worker(r, keys, IDLE, processed=1)
    add_worker(r, keys, OTHER_HOST)
    add_failure(r, keys, class_name="Fail", args=[1], queue="low", error="boom",
                backtrace=["jobs.rb:26:in `perform'", "worker.rb:9"])
    add_failure(r, keys, class_name="Other", args=["x"], queue="high", error="bang")
    return resque


# --- pages ------------------------------------------------------------------------------


def test_overview_shows_resque_info_busiest_queues_and_working(farm: Resque) -> None:
    web = client(farm)
    page = web.get("/").text
    info = farm.info()
    counts = live_counts(page)
    assert number(counts["pending"]) == info["pending"] == 26
    assert number(counts["processed"]) == info["processed"] == 120
    assert number(counts["failed_all_lists"]) == info["failed"] == 2
    assert number(counts["workers"]) == info["workers"] == 3
    assert number(counts["working"]) == info["working"] == 1
    assert queue_sizes(page) == {"high": 25, "low": 1}
    assert "vm:1210" in page and "Sleep" in page
    assert "1</span> of 3 workers working" in page
    assert web.get("/overview").headers["location"] == "/"


def test_queues_page_lists_every_queue_fifty_a_page_and_by_size(
    r: redis.Redis, resque: Resque
) -> None:
    for n in range(60):
        resque.push(f"q{n:02d}", {"class": "Job", "args": []})
    resque.enqueue_many("Job", [[i] for i in range(5)], queue="q59")
    web = client(resque)
    first = queue_sizes(web.get("/queues").text)
    assert list(first) == [f"q{n:02d}" for n in range(50)]
    second = queue_sizes(web.get("/queues?start=50").text)
    assert list(second) == [f"q{n:02d}" for n in range(50, 60)]
    assert list(queue_sizes(web.get("/queues?sort=size").text))[0] == "q59"
    assert "failed" in web.get("/queues?start=50").text  # the failure row ends the list


def test_queue_page_pages_through_jobs_oldest_first(farm: Resque, r: redis.Redis) -> None:
    web = client(farm)
    page = web.get("/queues/high").text
    assert "25</strong> pending jobs" in page
    shown = re.compile(r"<code class=\"args wrap\">\[(\d+)\]")
    assert shown.findall(page) == [str(i) for i in range(20)]
    last = web.get("/queues/high?start=20").text
    assert shown.findall(last) == [str(i) for i in range(20, 25)]
    assert "rel=\"prev\"" in last and "rel=\"next\"" not in last
    r.rpush(farm.keys.queue("high"), b"not json")
    assert "unreadable item" in web.get("/queues/high?start=20").text
    missing = web.get("/queues/nothing-here").text
    assert "There are no pending jobs" in missing and "not in the" in missing


def test_working_page_lists_busy_workers_only(farm: Resque) -> None:
    page = client(farm).get("/working").text
    assert "/workers/vm%3A1210%3Ahigh%2Clow" in page
    assert "vm%3A1211" not in page
    assert re.search(r"data-live-working-count>1<", page)


def test_workers_page_all_and_by_host(farm: Resque) -> None:
    web = client(farm)
    page = web.get("/workers").text
    assert "3 workers" in page
    assert all(layout.text(w) in page for w in ("vm:1210", "vm:1211", "box:77"))
    assert 'href="/workers?host=box"' in page
    by_host = web.get("/workers?host=vm").text
    assert "2 workers" in by_host and "box:77" not in by_host


def test_worker_page_shows_what_resque_web_shows(farm: Resque) -> None:
    web = client(farm)
    page = web.get("/workers/vm%3A1210%3Ahigh%2Clow").text
    facts = dict(re.findall(r"<dt>(\w+)</dt><dd[^>]*>(.*?)</dd>", page, re.S))
    assert facts["Processed"] == "7" and facts["Failed"] == "2"
    assert "1210" in facts["Pid"] and "working" in facts["State"]
    assert "high" in facts["Queues"] and "low" in facts["Queues"]
    assert "ago" in facts["Heartbeat"] and "ago" in facts["Started"]
    assert "Sleep" in page and "[3]" in page
    assert web.get("/workers/nobody%3A1%3Aq").status_code == 404


def test_failed_page_lists_newest_first_with_everything_resque_web_shows(
    farm: Resque,
) -> None:
    page = client(farm).get("/failed").text
    assert page.index("Other") < page.index("Fail</code>")  # newest first
    for shown in ("boom", "bang", "RuntimeError", "jobs.rb:26:in `perform&#39;",
                  "/workers/vm%3A1210%3Ahigh%2Clow", "Backtrace (2 lines)"):
        assert shown in page
    assert len(hidden(page, "id")) == 2 * 3 + 0  # retry, retry & remove, remove each
    oldest = client(farm).get("/failed?order=asc").text
    assert oldest.index("Fail</code>") < oldest.index("Other")


def test_failed_page_per_list_and_filters(r: redis.Redis, resque: Resque) -> None:
    keys = resque.keys
    for i in range(3):
        add_failure(r, keys, "low_failed", class_name="A", args=[i], queue="low")
    add_failure(r, keys, "high_failed", class_name="B", queue="high")
    add_failure(r, keys, class_name="A", queue="high")
    web = client(resque)
    page = web.get("/failed").text
    assert "all lists <span class=\"badge\">5</span>" in page
    assert 'href="/failed/low_failed"' in page
    low = web.get("/failed/low_failed").text
    assert len(hidden(low, "id")) == 9
    assert all(i.startswith("low_failed:") for i in hidden(low, "id"))
    by_class = web.get("/failed?class=A").text
    assert len(set(hidden(by_class, "id"))) == 4 and "Remove matching" in by_class
    by_queue = web.get("/failed?queue=high").text
    assert len(set(hidden(by_queue, "id"))) == 2
    assert web.get("/failed/nope").status_code == 404
    assert web.get("/failed/queue:high").status_code == 404  # never a job queue


def test_failed_page_pages_twenty_at_a_time(r: redis.Redis, resque: Resque) -> None:
    for i in range(45):
        add_failure(r, resque.keys, args=[i])
    web = client(resque)
    assert "1–20 of 45" in web.get("/failed").text
    last = web.get("/failed?start=40").text
    assert "41–45 of 45" in last and len(set(hidden(last, "id"))) == 5
    assert web.get("/failed?start=4000").status_code == 303  # past the end: back to page 1


def test_failure_page_shows_one_entry_by_id(farm: Resque) -> None:
    web = client(farm)
    (entry,) = farm_failures(farm)[:1]
    page = web.get(f"/failures/{entry}").text
    assert "jobs.rb:26" in page and "Stored record" in page and "boom" in page
    assert web.get("/failures/0-000000000000").status_code == 404
    assert web.get("/failures/garbage").status_code == 404


def farm_failures(resque: Resque) -> list[str]:
    return [str(e.id) for e in Admin(resque).failures.page(0, 100, newest=False).entries]


def test_stats_pages(farm: Resque, r: redis.Redis) -> None:
    web = client(farm)
    raw = web.get("/stats/raw").text
    for key, value in farm.info().items():
        if not isinstance(value, list):
            assert f'<th>{key}</th><td class="mono">{value}</td>' in raw, key
    for key, value in (("failed_all_lists", "2"), ("failed_stat", "0"), ("paused", "false")):
        assert f'<th>{key}</th><td class="mono">{value}</td>' in raw, key  # JSON, not Python
    keys_page = web.get("/stats/keys").text
    for name in ("queues", "queue:high", "failed", "workers", "stat:processed"):
        assert f'href="/stats/keys/{name.replace(":", "%3A")}"' in keys_page
    assert web.get("/stats/keys/queue%3Ahigh").text.count('<code class="args wrap">') == 20
    assert "A <strong>set</strong>" in web.get("/stats/keys/queues").text
    assert "A <strong>hash</strong>" in web.get("/stats/keys/workers%3Aheartbeat").text
    assert "120" in web.get("/stats/keys/stat%3Aprocessed").text
    record_sample(r, farm.keys)
    assert "A <strong>zset</strong>" in web.get("/stats/keys/metrics%3Arecent").text
    assert web.get("/stats.txt").text.splitlines() == [
        "resque.pending=26", "resque.processed+=120", "resque.failed+=2", "resque.workers=3",
        "resque.working=1", "queues.high=25", "queues.low=1",
    ]


def test_keys_tab_pages_with_scan(r: redis.Redis, resque: Resque) -> None:
    with r.pipeline(transaction=False) as pipe:
        for i in range(450):
            pipe.set(f"resque:k{i}", i)
        pipe.set("elsewhere", 1)
        pipe.execute()
    web = client(resque)
    seen: set[str] = set()
    path = "/stats/keys"
    for _ in range(20):
        page = web.get(path).text
        seen |= set(re.findall(r'href="/stats/keys/(k\d+)"', page))
        more = re.search(r'href="(/stats/keys\?cursor=\d+)" rel="next"', page)
        if not more:
            break
        path = more.group(1)
    assert seen == {f"k{i}" for i in range(450)}
    assert "elsewhere" not in page


def test_delayed_pages(resque: Resque) -> None:
    due = int(time.time()) + 3600
    resque.delayed.enqueue_at_with_queue("mail", due, "Remind", 1, "a")
    resque.delayed.enqueue_at_with_queue("mail", due, "Remind", 2, "b")
    resque.delayed.enqueue_at_with_queue("mail", due + 60, "Later", 3)
    web = client(resque)
    page = web.get("/delayed").text
    assert "2 timestamps" in page and f'href="/delayed/{due}"' in page and "Remind" in page
    detail = web.get(f"/delayed/{due}").text
    assert "2 jobs" in detail and '[1, "a"]' in detail.replace("&#34;", '"')
    assert web.get("/delayed/notanumber").status_code == 404


def test_schedule_page_shows_stored_and_file_schedules_and_the_master(
    r: redis.Redis, resque: Resque, tmp_path: Path
) -> None:
    resque.schedules.set("nightly", {"cron": "0 2 * * *", "class": "Report", "queue": "low",
                                     "args": ["daily"], "description": "The report"})
    schedule_file = tmp_path / "schedule.yml"
    schedule_file.write_text("cleanup:\n  every: 1h\n  class: Cleanup\n  queue: low\n")
    r.set(resque.keys.scheduler_master_lock(), "sched-host:99")
    page = client(resque, schedule_file=str(schedule_file)).get("/schedule").text
    assert "nightly" in page and "cron: 0 2 * * *" in page and "The report" in page
    assert "cleanup" in page and "every: 1h" in page
    assert "sched-host:99" in page
    assert hidden(page, "name").count("nightly") == 2  # queue now + remove (dynamic)
    assert hidden(page, "name").count("cleanup") == 1  # queue now only (from the file)


def test_live_json_has_the_counts_and_the_asked_queue_sizes(farm: Resque) -> None:
    data = client(farm).get("/live.json?q=high&q=nothing").json()
    assert data["counts"] == {"pending": 26, "processed": 120, "workers": 3, "working": 1,
                              "failed_all_lists": 2, "queues": 2}
    assert data["queues"] == {"high": 25, "nothing": 0}
    assert [w["id"] for w in data["working"]] == [WORKER]
    assert data["working"][0]["class"] == "Sleep" and data["paused"] is False


def test_charts_are_svg_drawn_from_the_samples(farm: Resque, r: redis.Redis) -> None:
    if time.time() % RECENT.bucket > RECENT.bucket - 2:  # the page's own sample must land
        time.sleep(2)  # in the same bucket as our last one
    now = int(time.time())
    for step in range(0, 601, RECENT.bucket):
        r.incrby(farm.keys.stat("processed"), 50)
        record_sample(r, farm.keys, now=now - 600 + step)
    web = client(farm)
    for kind in ("throughput", "depth"):
        response = web.get(f"/charts/{kind}.svg?window=15m")
        assert response.headers["content-type"].startswith("image/svg+xml")
        svg = ET.fromstring(response.text)
        assert svg.tag.endswith("svg")
        assert response.text.count("<polyline") >= 1
    assert "processed/min 300" in web.get("/charts/throughput.svg").text
    assert web.get("/charts/other.svg").status_code == 404


def test_pages_take_metrics_samples(farm: Resque, r: redis.Redis) -> None:
    client(farm).get("/")
    assert r.zcard(layout.metrics_key(farm.keys, "recent")) == 1


def test_redis_down_gives_a_503_page() -> None:
    web = client(Resque("redis://127.0.0.1:1/0"))
    response = web.get("/")
    assert response.status_code == 503 and "reach Redis" in response.text


# --- actions ----------------------------------------------------------------------------


def test_remove_queue(farm: Resque, r: redis.Redis) -> None:
    web = client(farm)
    response = post(web, "/actions/queues/remove", queue="high")
    assert flash(response) == "queue_removed"
    assert response.headers["location"].startswith("/queues?")
    assert "n=25" in response.headers["location"]
    assert farm.queues() == ["low"] and not r.exists(farm.keys.queue("high"))
    assert "Removed the queue and its 25 job(s)." in web.get(response.headers["location"]).text


def test_retry_remove_and_retry_and_remove_one_failure(farm: Resque, r: redis.Redis) -> None:
    web = client(farm)
    first, second = farm_failures(farm)
    assert flash(post(web, "/actions/failed/retry", id=first)) == "retried"
    assert farm.size("low") == 2 and b"retried_at" in as_bytes(r.lindex(farm.keys.failed, 0))
    assert flash(post(web, "/actions/failed/retry", id=first)) == "gone"  # its id changed
    assert flash(post(web, "/actions/failed/remove", id=second)) == "removed"
    assert r.llen(farm.keys.failed) == 1
    (retried,) = farm_failures(farm)
    assert flash(post(web, "/actions/failed/retry-remove", id=retried)) == "retried_removed"
    assert r.llen(farm.keys.failed) == 0 and farm.size("low") == 3


def test_retry_all_and_clear_per_list_and_filter(r: redis.Redis, resque: Resque) -> None:
    keys = resque.keys
    for i in range(3):
        add_failure(r, keys, "low_failed", class_name="A", args=[i], queue="low")
    add_failure(r, keys, class_name="B", queue="high")
    add_failure(r, keys, class_name="C", queue="high")
    web = client(resque)
    assert flash(post(web, "/actions/failed/retry-all", list="low_failed")) == "retried"
    assert resque.size("low") == 3 and resque.size("high") == 0
    assert flash(post(web, "/actions/failed/retry-all", list="low_failed")) == "retried"
    assert resque.size("low") == 3  # already retried: not again (resque #924)
    assert flash(post(web, "/actions/failed/retry-all", **{"class": "B"})) == "retried"
    assert resque.size("high") == 1
    assert flash(post(web, "/actions/failed/clear-retried")) == "removed"
    assert r.llen(keys.failed) == 1 and r.llen(keys.failure_list("low_failed")) == 0
    add_failure(r, keys, "low_failed", class_name="A", queue="low")
    assert flash(post(web, "/actions/failed/clear", **{"class": "C"})) == "removed"
    assert r.llen(keys.failed) == 0 and r.llen(keys.failure_list("low_failed")) == 1
    response = post(web, "/actions/failed/clear", list="low_failed")
    assert flash(response) == "cleared" and "n=1" in response.headers["location"]
    add_failure(r, keys, class_name="D")
    add_failure(r, keys, "low_failed", class_name="E")
    assert flash(post(web, "/actions/failed/clear")) == "cleared"
    assert Admin(resque).failures.count() == 0
    assert r.sismember(keys.failed_queues, "low_failed")  # kept, as Ruby keeps it
    assert post(web, "/actions/failed/clear", list="queue:high").status_code == 400


def test_retry_all_and_remove(r: redis.Redis, resque: Resque) -> None:
    for i in range(3):
        add_failure(r, resque.keys, args=[i])
    web = client(resque)
    assert flash(post(web, "/actions/failed/retry-all", remove="1")) == "retried_removed"
    assert r.llen(resque.keys.failed) == 0 and resque.size("low") == 3


def test_pause_and_resume(farm: Resque, r: redis.Redis) -> None:
    web = client(farm)
    assert "Pause all workers" in web.get("/").text
    assert flash(post(web, "/actions/pause")) == "paused"
    assert r.get(farm.keys.pause) == b"true"
    page = web.get("/").text
    assert "Workers are paused" in page and "Resume workers" in page
    assert flash(post(web, "/actions/resume")) == "resumed"
    assert not r.exists(farm.keys.pause)


def test_delayed_actions(r: redis.Redis, resque: Resque) -> None:
    due = int(time.time()) + 3600
    delayed = resque.delayed
    delayed.enqueue_at_with_queue("mail", due, "Remind", 1)
    delayed.enqueue_at_with_queue("mail", due, "Remind", 2)
    delayed.enqueue_at_with_queue("mail", due + 1, "Remind", 3)
    delayed.enqueue_at_with_queue("mail", due + 2, "Remind", 4)
    web = client(resque)
    page = web.get(f"/delayed/{due}").text
    first, second = dict.fromkeys(hidden(page, "item"))
    assert flash(post(web, "/actions/delayed/item-now", timestamp=due, item=first)) == "queued_now"
    assert resque.size("mail") == 1
    assert flash(post(web, "/actions/delayed/remove", timestamp=due, item=second)) == (
        "delayed_removed")
    assert delayed.delayed_timestamp_size(due) == 0
    assert flash(post(web, "/actions/delayed/remove", timestamp=due, item=second)) == "not_found"
    response = post(web, "/actions/delayed/queue-now", timestamp=due + 1)
    assert flash(response) == "queued_now" and resque.size("mail") == 2
    assert delayed.delayed_queue_schedule_size() == 1
    assert post(web, "/actions/delayed/queue-now", timestamp="soon").status_code == 400


def test_schedule_actions(r: redis.Redis, resque: Resque) -> None:
    resque.schedules.set("nightly", {"cron": "0 2 * * *", "class": "Report", "queue": "low",
                                     "args": ["daily"]})
    web = client(resque)
    assert flash(post(web, "/actions/schedule/enqueue", name="nightly")) == "schedule_queued"
    queued = resque.peek("low")
    assert {key: queued[key] for key in ("class", "args")} == {"class": "Report",
                                                              "args": ["daily"]}
    assert isinstance(queued["id"], str)  # enqueued from Python: the job has an id
    assert flash(post(web, "/actions/schedule/enqueue", name="nope")) == "not_found"
    assert flash(post(web, "/actions/schedule/remove", name="nightly")) == "schedule_removed"
    assert resque.schedules.persistent() == {}


def test_an_action_goes_back_to_the_page_it_came_from_and_never_elsewhere(
    farm: Resque,
) -> None:
    web = client(farm)
    back = post(web, "/actions/pause", next="/failed?class=Fail&done=old&n=9")
    assert back.headers["location"] == "/failed?class=Fail&done=paused&n=0"
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"):
        location = post(web, "/actions/resume", next=target).headers["location"]
        assert location == "/?done=resumed&n=0", target


def test_an_empty_working_record_is_not_at_work_as_in_ruby(r: redis.Redis, resque: Resque
                                                          ) -> None:
    add_worker(r, resque.keys, "vm:5:q")
    r.set(resque.keys.worker("vm:5:q"), "")
    web = client(resque)
    assert "data-worker=" not in web.get("/working").text
    assert live_counts(web.get("/").text)["working"] == "0" == str(resque.info()["working"])
    assert 'data-state="working"' in web.get("/workers").text  # Ruby's Worker#state says so


def test_names_that_are_not_utf8_link_to_their_own_pages(r: redis.Redis, resque: Resque) -> None:
    """Another tool's bytes: the link written for a name must lead back to that name (ASGI
    servers decode paths replacing such bytes, which would name something else)."""
    r.sadd(resque.keys.workers, b"caf\xe9:1:q\xff")
    r.set(b"resque:worker:caf\xe9:1:q\xff", layout.working_on("q", '{"class":"A","args":[]}'))
    r.sadd(resque.keys.queues, b"q\xff")
    r.rpush(b"resque:queue:q\xff", b'{"class":"Odd","args":[7]}')
    r.rpush(b"resque:list\xfa", b"item")
    web = client(resque)
    assert 'href="/workers/caf%E9%3A1%3Aq%FF"' in web.get("/workers").text
    worker = web.get("/workers/caf%E9%3A1%3Aq%FF")
    assert worker.status_code == 200 and "<dt>Pid</dt><dd class=\"mono\">1</dd>" in worker.text
    assert 'href="/queues/q%FF"' in web.get("/queues").text
    queue = web.get("/queues/q%FF")
    assert queue.status_code == 200 and "1</strong> pending job" in queue.text
    assert 'href="/stats/keys/list%FA"' in web.get("/stats/keys").text
    key = web.get("/stats/keys/list%FA")
    assert key.status_code == 200 and '<code class="args wrap">item</code>' in key.text
    (row,) = web.get("/live.json").json()["working"]
    assert row["path"] == "caf%E9%3A1%3Aq%FF"  # the script links with it as it is


def test_the_stats_page_explains_each_number(farm: Resque, r: redis.Redis) -> None:
    r.set(farm.keys.stat("failed"), 9)
    page = client(farm).get("/stats").text
    figures = dict(re.findall(
        r'<th>([A-Za-z ]+)</th><td class="num value">([^<]*)</td><td class="meaning">', page))
    version = r.info("server")["redis_version"]
    assert list(figures) == ["Processed", "Failed", "Failed now", "Pending", "Queues",
                             "Workers", "Paused", "Redis version", "Memory", "Clients",
                             "Uptime", "Hit rate"]
    assert {k: figures[k] for k in list(figures)[:8]} == {
        "Processed": "120", "Failed": "9", "Failed now": "2", "Pending": "26", "Queues": "2",
        "Workers": "3", "Paused": "no", "Redis version": version}
    assert re.fullmatch(r"\d+", figures["Clients"])
    assert re.fullmatch(r"[\d.,]+ (bytes|KB|MB|GB)", figures["Memory"])
    assert re.fullmatch(r"\d+ (min \d+ s|h \d+ min|d \d+ h)", figures["Uptime"])
    assert re.fullmatch(r"\d+%", figures["Hit rate"])
    meanings = re.findall(r'<td class="meaning">([^<]+)</td>', page)
    assert len(meanings) == 12 and all(len(m) > 30 for m in meanings)
    assert "1 of them running a job now" in page
    assert "False" not in page and "failed_stat" not in page  # no raw dump here
    assert 'href="/stats/raw"' in page


def test_the_redis_tab_groups_info_by_section_in_redis_order(farm: Resque,
                                                               r: redis.Redis) -> None:
    page = client(farm).get("/stats/redis").text
    shown = re.findall(r'<h2 id="info-[a-z]+">([A-Za-z]+)</h2>', page)
    plain = redis.Redis(connection_pool=r.connection_pool)
    plain.response_callbacks.pop("INFO", None)
    told = [line[2:] for line in as_text(plain.info()).splitlines() if line.startswith("# ")]
    assert shown == told and shown[:3] == ["Server", "Clients", "Memory"]
    server = page.split('<h2 id="info-server">')[1].split("</table>")[0]
    assert server.index("redis_version") < server.index("uptime_in_seconds")  # Redis's order
    assert "connected_clients" not in server
