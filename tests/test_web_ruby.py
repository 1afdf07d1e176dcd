"""The dashboard shows what Ruby's resque-web shows for the same Redis: the same counts, the
same workers and jobs, the same failures, with Ruby and Python workers both at work.

resque-web itself needs Sinatra; ``tests/ruby/web_view.rb`` makes the library calls its views
make and prints them as JSON. Skipped where Ruby or the resque source is absent.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import redis
from support.peers import ruby_app_worker
from support.webkit import client, live_counts, number, queue_sizes
from support.workerkit import wait_for

from resque import Resque
from resque.web.dashboard import quote_segment

pytestmark = pytest.mark.ruby

VIEW = Path(__file__).parent / "ruby" / "web_view.rb"
HARNESS = Path(__file__).parent / "ruby" / "harness.rb"


def ruby(lib: str, script: Path, url: str, *args: str) -> str:
    done = subprocess.run(["ruby", "-I", lib, str(script), url, *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def mixed_farm(
    ruby_lib: str, r: redis.Redis, redis_url: str
) -> Iterator[Resque]:
    """Ruby and Python workers, jobs, failures in ``failed`` and in ``<q>_failed``."""
    resque = Resque(r)
    processes: list[subprocess.Popen[Any]] = []
    try:
        resque.enqueue_many("Hello", [[i] for i in range(5)], queue="pending_q")
        ruby(ruby_lib, HARNESS, redis_url, "enqueue", "pending_q", "Hello", '["from ruby"]')
        for i in range(3):
            resque.enqueue_to("high", "Hello", i)
        resque.enqueue_to("high", "Broken", "x")
        processes.append(ruby_app_worker(redis_url, "high", "--burst"))  # 3 done, 1 failed
        assert processes[-1].wait(30) == 0
        ruby(ruby_lib, HARNESS, redis_url, "enqueue", "ruby_only", "Missing", "[1]")
        ruby(ruby_lib, HARNESS, redis_url, "enqueue", "ruby_only", "Missing", "[2]")
        ruby(ruby_lib, VIEW, redis_url, "work", "ruby_only", "multi")  # 2 in ruby_only_failed
        ruby(ruby_lib, HARNESS, redis_url, "enqueue", "ruby_plain", "Missing", "[3]")
        ruby(ruby_lib, VIEW, redis_url, "work", "ruby_plain")  # 1 more in failed
        resque.enqueue_to("slow", "Sleepy", 30)
        processes.append(ruby_app_worker(redis_url, "slow", "--no-fork"))
        processes.append(ruby_app_worker(redis_url, "idle_q"))
        processes.append(subprocess.Popen(
            ["ruby", "-I", ruby_lib, str(VIEW), redis_url, "serve", "ruby_q"]))
        wait_for(lambda: r.scard(resque.keys.workers) == 3 and len(resque.working()) == 1,
                 timeout=20)
        time.sleep(0.3)  # the Ruby worker registers after its startup prune
        wait_for(lambda: r.scard(resque.keys.workers) == 3 and len(resque.working()) == 1)
        yield resque
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def rows(page: str, attribute: str) -> list[str]:
    return [html.unescape(v) for v in re.findall(rf'{attribute}="([^"]*)"', page)]


def failure_entries(page: str) -> list[dict[str, str]]:
    entries = []
    for chunk in page.split('data-failure="')[1:]:
        def grab(pattern: str, chunk: str = chunk) -> str:
            found = re.search(pattern, chunk, re.S)
            return html.unescape(found.group(1)) if found else ""
        entries.append({
            "class": grab(r'class="cls"[^>]*><code>(.*?)</code>'),
            "exception": grab(r'<span class="exc">(.*?)</span>'),
            "error": grab(r'<pre class="error">(.*?)</pre>'),
            "queue": grab(r'<a class="qtag" href="[^"]*">(.*?)</a>'),
            "worker": grab(r'<dt>Worker</dt><dd><a class="mono" href="/workers/([^"]*)"'),
        })
    for entry in entries:
        entry["worker"] = unquote(entry["worker"])
    return entries


def test_dashboard_matches_resque_web(
    mixed_farm: Resque, ruby_lib: str, redis_url: str
) -> None:
    ruby_view = json.loads(ruby(ruby_lib, VIEW, redis_url, "view"))
    multi_view = json.loads(ruby(ruby_lib, VIEW, redis_url, "view", "multi"))
    web = client(mixed_farm)

    # Overview and Stats: Resque.info, field by field.
    info = ruby_view["info"]
    counts = live_counts(web.get("/").text)
    for field in ("pending", "processed", "workers", "working"):
        assert number(counts[field]) == info[field], field
    assert (info["pending"], info["workers"], info["working"]) == (6, 3, 1)
    stats = dict(re.findall(r'<th>(\w+)</th><td class="mono">([^<]*)</td>',
                            web.get("/stats/raw").text))
    for field in ("pending", "processed", "queues", "workers", "working", "failed"):
        assert int(stats[field]) == info[field], field
    assert info["failed"] == 2  # Ruby's info counts the failed list only
    figures = dict(re.findall(r'<th>([A-Za-z ]+)</th><td class="num value">([^<]*)</td>',
                              web.get("/stats").text))
    for label, field in (("Pending", "pending"), ("Processed", "processed"),
                         ("Queues", "queues"), ("Workers", "workers")):
        assert number(figures[label]) == info[field], label

    # Queues: every queue and its size.
    assert queue_sizes(web.get("/queues").text) == dict(ruby_view["queues"])

    # Failures: each list's count (redis_multi_queue too), and the first page entry by entry.
    failed_page = web.get("/failed").text
    lists = {html.unescape(name): number(count) for name, count in re.findall(
        r'href="/failed/([^"]+)"[^>]*>[^<]*<span class="badge[^"]*">([\d,]+)<', failed_page)}
    assert lists == {"failed": ruby_view["failure_total"], **dict(multi_view["failure_lists"])}
    assert lists == {"failed": 2, "ruby_only_failed": 2}
    assert number(counts["failed_all_lists"]) == ruby_view["failure_total"] + (
        multi_view["failure_total"])
    ours = failure_entries(web.get("/failed/failed").text)
    theirs = [{k: e[k] for k in ("class", "exception", "error", "queue", "worker")}
              for e in ruby_view["failed_page"]]
    assert ours == theirs
    assert [e["class"] for e in ours] == ["Missing", "Broken"]
    ours_multi = failure_entries(web.get("/failed/ruby_only_failed").text)
    theirs_multi = [{k: e[k] for k in ("class", "exception", "error", "queue", "worker")}
                    for e in multi_view["failed_page"] if e["list"] == "ruby_only_failed"]
    assert ours_multi == theirs_multi and len(ours_multi) == 2

    # Workers: the same ids and states; each worker's page shows Ruby's numbers and times.
    workers_page = web.get("/workers").text
    ruby_workers = {w["id"]: w for w in ruby_view["workers"]}
    assert rows(workers_page, "data-worker") == sorted(ruby_workers)
    assert dict(zip(rows(workers_page, "data-worker"), rows(workers_page, "data-state"),
                    strict=True)) == {w: v["state"] for w, v in ruby_workers.items()}
    for worker_id, theirs_worker in ruby_workers.items():
        page = web.get("/workers/" + quote_segment(worker_id)).text
        facts = dict(re.findall(r"<dt>(\w+)</dt><dd[^>]*>(.*?)</dd>", page, re.S))
        assert number(facts["Processed"]) == theirs_worker["processed"], worker_id
        assert number(facts["Failed"]) == theirs_worker["failed"], worker_id
        assert f'title="{theirs_worker["started"]}"' in facts["Started"], worker_id
        if theirs_worker["heartbeat"]:
            assert f'title="{theirs_worker["heartbeat"]}"' in facts["Heartbeat"], worker_id
        job = theirs_worker["job"]
        if job:
            assert html.escape(job["payload"]["class"]) in page and job["queue"] in page
    assert any(":ruby_q" in w for w in ruby_workers)  # a live Ruby worker is listed too

    # Working: the same workers at work.
    assert rows(web.get("/working").text, "data-worker") == ruby_view["working"]
    assert [w["id"] for w in web.get("/live.json").json()["working"]] == ruby_view["working"]
    hosts = ruby_view["hosts"]
    assert sum(hosts.values()) == 3 and len(hosts) == 1


def test_ruby_reads_what_dashboard_actions_wrote(
    ruby_lib: str, r: redis.Redis, redis_url: str
) -> None:
    """A retry, a removal and a queue removal made in the dashboard, seen by Ruby."""
    from support.webkit import add_failure, hidden, post

    resque = Resque(r)
    for i in range(3):
        add_failure(r, resque.keys, class_name="Hello", args=[i], queue="high")
    resque.push("doomed", {"class": "Hello", "args": []})
    web = client(resque)
    ids = hidden(web.get("/failed").text, "id")[::3]  # one per entry, newest first
    post(web, "/actions/failed/retry", id=ids[0])
    post(web, "/actions/failed/remove", id=ids[1])
    post(web, "/actions/queues/remove", queue="doomed")
    failures = json.loads(ruby(ruby_lib, HARNESS, redis_url, "failures"))
    assert [f["payload"]["args"] for f in failures] == [[0], [2]]
    assert "retried_at" in failures[1] and "retried_at" not in failures[0]
    info = json.loads(ruby(ruby_lib, HARNESS, redis_url, "info"))
    assert (info["pending"], info["queues"], info["failed"]) == (1, 1, 2)
