"""Prometheus metrics: a scrape of the dashboard's /metrics and of `resque metrics`, parsed by
prometheus_client's own parser, says exactly what `resque stats` says; the job duration
histograms come from real workers; the other farm gauges from Redis as Ruby lays it out."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient
from support.webkit import BASE_URL, add_worker
from support.workerkit import Workers, push

from resque import Resque, layout
from resque.web import create_app

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape: (name, sorted labels) -> value."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def stats_json(redis_url: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "resque", "stats", "--json", "--redis",
                           redis_url], capture_output=True, text=True, timeout=60, check=True)
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def scrape_dashboard(resque: Resque, **settings: Any) -> str:
    web = TestClient(create_app(resque, **settings), base_url=BASE_URL)
    response = web.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


def a_busy_farm(r: redis.Redis, resque: Resque) -> None:
    """Queues, counters, workers (one working), failures in two lists, a pause."""
    keys = resque.keys
    resque.enqueue_many("Job", [[i] for i in range(5)], queue="high")
    resque.push("low", {"class": "Job", "args": []})
    r.sadd(keys.queues, "empty")
    r.set(keys.stat("processed"), 42)
    r.set(keys.stat("failed"), 4)
    r.rpush(keys.failed, "a", "b")
    r.rpush(keys.failure_list("low_failed"), "c")
    r.sadd(keys.failed_queues, "low_failed")
    add_worker(r, keys, "h:1:high", job=("high", "Job", [1]), processed=30, failed=3)
    add_worker(r, keys, "h:2:high,low", processed=12, failed=1)
    r.set(keys.pause, "true")


def assert_matches_stats(samples: Samples, stats: dict[str, Any]) -> None:
    assert value(samples, "resque_jobs_processed_total") == stats["processed"] == 42
    assert value(samples, "resque_jobs_failed_total") == stats["failed_stat"] == 4
    assert total(samples, "resque_queue_length") == stats["pending"] == 6
    assert value(samples, "resque_queues") == stats["queues"] == 3
    assert total(samples, "resque_workers") == stats["workers"] == 2
    assert value(samples, "resque_workers", state="working") == stats["working"] == 1
    assert value(samples, "resque_failed_list_length", list="failed", queue="") \
        == stats["failed"] == 2
    assert total(samples, "resque_failed_list_length") == stats["failed_all_lists"] == 3
    assert value(samples, "resque_paused") == int(stats["paused"]) == 1


def test_a_dashboard_scrape_says_what_resque_stats_says(
    r: redis.Redis, resque: Resque, redis_url: str
) -> None:
    a_busy_farm(r, resque)
    samples = parse(scrape_dashboard(resque))
    assert_matches_stats(samples, stats_json(redis_url))
    assert value(samples, "resque_queue_length", queue="high") == 5
    assert value(samples, "resque_queue_length", queue="empty") == 0
    assert value(samples, "resque_failed_list_length", list="low_failed", queue="low") == 1
    assert value(samples, "resque_worker_jobs_processed_total", worker="h:1:high") == 30
    assert value(samples, "resque_worker_jobs_failed_total", worker="h:2:high,low") == 1


@pytest.fixture
def exporter(redis_url: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`resque metrics --port 0`, and the address it printed."""
    log = tmp_path / "metrics.log"
    with open(log, "w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "resque", "metrics", "--port", "0", "--redis", redis_url],
            stdout=subprocess.DEVNULL, stderr=sink, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not (found := re.search(r"http://\S+/metrics", log.read_text())):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield process, found.group(0)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def test_resque_metrics_serves_the_same_values_and_stops_cleanly_on_term(
    r: redis.Redis, resque: Resque, redis_url: str,
    exporter: tuple[subprocess.Popen[str], str],
) -> None:
    a_busy_farm(r, resque)
    process, url = exporter
    with urllib.request.urlopen(url, timeout=10) as response:
        samples = parse(response.read().decode())
    assert_matches_stats(samples, stats_json(redis_url))
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0


def test_resque_metrics_without_a_port_prints_one_scrape(
    r: redis.Redis, resque: Resque, redis_url: str
) -> None:
    a_busy_farm(r, resque)
    done = subprocess.run([sys.executable, "-m", "resque", "metrics", "--redis", redis_url],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert_matches_stats(parse(done.stdout), stats_json(redis_url))


def test_delayed_jobs_due_and_waiting(r: redis.Redis, resque: Resque) -> None:
    keys = resque.keys
    now = int(r.time()[0])
    for at, count in ((now - 120, 2), (now - 5, 1), (now + 3600, 4)):
        r.zadd(keys.delayed_schedule, {str(at): at})
        r.rpush(keys.delayed(at), *[layout.delayed_item("Job", [i], "q") for i in range(count)])
    samples = parse(scrape_dashboard(resque))
    assert value(samples, "resque_delayed_jobs") == 7
    assert value(samples, "resque_delayed_jobs_due") == 3
    assert 120 <= value(samples, "resque_delayed_oldest_due_seconds") < 130


def test_junk_keys_do_not_stop_a_scrape(r: redis.Redis, resque: Resque) -> None:
    keys = resque.keys
    resque.push("good", {"class": "Job", "args": []})
    r.sadd(keys.queues, "junk")
    r.set(keys.queue("junk"), "not a list")
    r.set(layout.job_durations_key(keys), "not a hash")
    r.set(keys.delayed_schedule, "not a zset")
    samples = parse(scrape_dashboard(resque))
    assert value(samples, "resque_queue_length", queue="good") == 1
    assert ("resque_queue_length", (("queue", "junk"),)) not in samples
    assert value(samples, "resque_delayed_jobs") == 0


def test_a_read_only_dashboard_writes_nothing(r: redis.Redis, resque: Resque) -> None:
    resque.push("q", {"class": "Job", "args": []})
    before = sorted(r.keys("*"))
    samples = parse(scrape_dashboard(resque, read_only=True))
    assert value(samples, "resque_queue_length", queue="q") == 1
    assert sorted(r.keys("*")) == before


def test_without_prometheus_client_the_route_says_which_extra_to_install(
    redis_url: str
) -> None:
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "from starlette.testclient import TestClient\n"
        "from resque.web import create_app\n"
        f"web = TestClient(create_app({redis_url!r}), base_url='http://127.0.0.1')\n"
        "response = web.get('/metrics')\n"
        "print(response.status_code, response.text)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.startswith("501 /metrics needs the 'prometheus' extra"), done.stderr


# --- job durations, from real workers -----------------------------------------------------------


@pytest.mark.parametrize("mode", ["--fork", "--no-fork"])
def test_workers_with_job_metrics_fill_the_duration_histograms(
    r: redis.Redis, resque: Resque, workers: Workers, mode: str
) -> None:
    for tag in ("a", "b"):
        push(r, "high", "Sleep", 0.3, tag)
    push(r, "high", "Record", "quick")
    push(r, "low", "Fail")
    workers.run("high,low", mode, "--job-metrics")
    samples = parse(scrape_dashboard(resque))
    sleep = {"queue": "high", "class": "Sleep"}
    assert value(samples, "resque_job_duration_seconds_count", **sleep) == 2
    assert value(samples, "resque_job_duration_seconds_bucket", le="0.25", **sleep) == 0
    assert value(samples, "resque_job_duration_seconds_bucket", le="1.0", **sleep) == 2
    assert 0.6 <= value(samples, "resque_job_duration_seconds_sum", **sleep) < 2.0
    assert value(samples, "resque_job_failures_total", **sleep) == 0
    record = {"queue": "high", "class": "Record"}
    assert value(samples, "resque_job_duration_seconds_count", **record) == 1
    fail = {"queue": "low", "class": "Fail"}
    assert value(samples, "resque_job_failures_total", **fail) == 1
    assert value(samples, "resque_job_duration_seconds_count", **fail) == 1
    assert value(samples, "resque_jobs_processed_total") == 4


def test_without_job_metrics_a_worker_records_no_durations(
    r: redis.Redis, resque: Resque, workers: Workers
) -> None:
    push(r, "high", "Record", "x")
    workers.run("high")
    assert not r.exists(layout.job_durations_key(resque.keys))


# --- optional, and only where used ----------------------------------------------------------------


def test_a_worker_without_job_metrics_loads_none_of_it() -> None:
    code = ("import json, sys, resque.worker\n"
            "resque.worker.Worker(['q'], redis='localhost:1')\n"
            "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    loaded = json.loads(done.stdout)
    assert [m for m in loaded if m.split(".")[0] in ("prometheus_client", "flask",
                                                     "sentry_sdk")
            or m.startswith(("resque.durations", "resque.prometheus", "resque.contrib"))] == []


def test_resque_metrics_without_the_extra_says_which_to_install() -> None:
    code = ("import sys; sys.modules['prometheus_client'] = None\n"
            "from resque.cli import main\n"
            "main(['metrics'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert "pip install 'resque[prometheus]'" in done.stderr


def test_the_grafana_dashboard_asks_only_for_metrics_we_export(
    r: redis.Redis, resque: Resque, redis_url: str, workers: Workers
) -> None:
    push(r, "high", "Fail")
    workers.run("high", "--job-metrics")
    a_busy_farm(r, resque)
    exported = {name for name, _ in parse(scrape_dashboard(resque))}
    board = json.loads((Path(__file__).resolve().parent.parent / "docs" / "grafana"
                        / "resque.json").read_text())
    asked = {name for panel in board["panels"] for target in panel["targets"]
             for name in re.findall(r"\bresque_[a-z_]+", target["expr"])}
    assert len(asked) == 11
    assert asked - exported == set()
