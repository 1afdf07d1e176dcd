"""`resque demo`, the README's first command: real runs on its own redis-server, real signals,
and the process table checked after each."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from support.schedulerkit import wait_for

from resque import Resque
from resque.demo import Progress
from resque.embedded import EmbeddedRedis


def demo(data: Path, *args: str, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resque", "demo", "--jobs", "40", "--workers", "1",
         "--data-dir", str(data), "--linger", "0", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )


def stored(data: Path, key: str) -> Any:
    """A key the demo left in its data folder: its append-only file, replayed."""
    with EmbeddedRedis(data, persistent=True) as server:
        client = redis.Redis.from_url(server.url)
        value = client.get(key)
        client.close()
    return value


def test_demo_drains_its_jobs_reports_a_summary_and_keeps_its_data(tmp_path: Path) -> None:
    data = tmp_path / "demo-data"
    done = demo(data)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(rf"^Redis: the demo's own redis-server at redis://127\.0\.0\.1:\d+/0 "
                     rf"\(data and logs in {re.escape(str(data))}\)$", out, re.M)
    assert re.search(r"Dashboard: http://127\.0\.0\.1:\d+/", out)
    processed = re.search(r"Processed (\d+) jobs \((\d+) failed\)", out)
    assert processed and processed.group(1) == "40"
    failing = re.search(r"\((\d+) will fail on purpose\)", out)
    assert failing and failing.group(1) == processed.group(2)
    # The append-only file kept what happened: a restarted server still has the stats.
    with EmbeddedRedis(data, persistent=True) as server:
        client = redis.Redis.from_url(server.url)
        assert client.get("resque:stat:processed") == b"40"
        assert client.llen("resque:failed") == int(processed.group(2))


def test_demo_uses_its_own_redis_server_even_when_resque_redis_is_set(tmp_path: Path) -> None:
    with EmbeddedRedis() as application:
        done = demo(tmp_path / "data", env={"RESQUE_REDIS": application.url})
        assert (done.returncode, application.client().dbsize()) == (0, 0)


def test_a_second_run_starts_from_clean_demo_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    demo(data)
    demo(data)
    assert stored(data, "resque:stat:processed") == b"40"


def test_continue_keeps_the_last_runs_data_and_counters(tmp_path: Path) -> None:
    data = tmp_path / "data"
    demo(data)
    demo(data, "--continue")
    assert stored(data, "resque:stat:processed") == b"80"


def test_worker_logs_are_kept_in_the_demos_data_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = demo(data).stdout
    shown = re.search(r"worker logs are in (.+)\.$", out, re.M)
    assert shown is not None
    assert (shown.group(1), "cannot resize" in Path(shown.group(1)).read_text()) == (
        str(data / "workers.log"), True)


def test_on_a_given_redis_the_demo_never_touches_the_applications_keys(
    r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    application = Resque(r)
    application.enqueue_to("mail", "Mailer", 1)
    r.set("resque:stat:processed", 7)
    before = {key: r.dump(key) for key in r.keys("resque:*")}
    demo(tmp_path / "data", "--redis", redis_url)
    demo(tmp_path / "data", "--redis", redis_url)  # starts clean: only the demo's namespace
    after = {key: r.dump(key) for key in r.keys("resque:*")}
    assert (after, r.get("resque-demo:stat:processed")) == (before, b"40")


# --- signals: everything the demo started is gone -----------------------------------------------


def processes_of(redis_url: str) -> tuple[list[int], list[int]]:
    """Live processes started for the demo whose redis-server is at ``redis_url``: that
    server (its title, or before it sets one its arguments, name its port), and the workers
    with their fork servers and children (``RESQUE_REDIS`` in their environment names it)."""
    port = redis_url.rsplit(":", 1)[1].split("/")[0].encode()
    server_marks = (b"127.0.0.1:" + port, b"--port\0" + port + b"\0")
    worker_mark = f"RESQUE_REDIS={redis_url}".encode()
    servers, workers = [], []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone meanwhile, or not ours
            continue
        if state == "Z":
            continue
        if b"redis-server" in cmdline and any(mark in cmdline for mark in server_marks):
            servers.append(int(entry.name))
        elif worker_mark in environ.split(b"\0"):
            workers.append(int(entry.name))
    return sorted(servers), sorted(workers)


@pytest.mark.parametrize(("signum", "to_group"), [
    (signal.SIGHUP, True),  # the terminal closed: its whole foreground group is hung up
    (signal.SIGTERM, False),  # kill <pid>
    (signal.SIGINT, True),  # Ctrl-C
], ids=["hup", "term", "int"])
def test_a_stop_signal_leaves_no_redis_server_and_no_worker_behind(
    tmp_path: Path, signum: int, to_group: bool
) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "resque", "demo", "--jobs", "5000", "--workers", "2",
         "--data-dir", str(data), "--linger", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    url = re.search(r"at (redis://\S+) ", first)
    assert url, first

    def running() -> bool:
        servers, workers = processes_of(url.group(1))
        return len(servers) == 1 and len(workers) >= 2

    wait_for(running, timeout=30)
    if to_group:
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)
    code = proc.wait(60)
    proc.stdout.close()
    assert (code, processes_of(url.group(1))) == (128 + signum, ([], []))


# --- the progress bar ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_bar(total: int, startup: float, rate: float, until: float) -> Progress:
    """Workers that do nothing for ``startup`` seconds, then ``rate`` jobs a second;
    sampled every 0.1 s up to ``until``, as the demo does."""
    clock = Clock()
    bar = Progress(total, clock=clock)
    steps = int(round(until / 0.1))
    for step in range(steps + 1):
        clock.now = step * 0.1
        bar.update(int(max(0.0, clock.now - startup) * rate))
    return bar


def test_the_progress_bar_shows_no_eta_before_its_warm_up() -> None:
    # a second of start-up, then 100 jobs/s: at 1.5 s, 50 jobs are done in 0.5 s of work
    assert run_bar(300, startup=1.0, rate=100, until=1.5).eta() is None


def test_the_eta_is_the_work_left_at_the_measured_rate_after_the_warm_up() -> None:
    # 2.5 s: 150 jobs done, 150 left at 100 jobs/s (the second of start-up left out)
    assert run_bar(300, startup=1.0, rate=100, until=2.5).eta() == pytest.approx(1.5, abs=0.1)


def test_a_slow_start_never_makes_the_eta_wildly_late() -> None:
    """The report: a 2.9 s run whose bar said 24 s. Three seconds of start-up, then 150
    jobs/s: from the warm-up on, every ETA is within 10% of the real time left."""
    clock = Clock()
    bar = Progress(300, clock=clock)
    worst = 0.0
    for step in range(50):
        clock.now = step * 0.1
        bar.update(int(max(0.0, clock.now - 3.0) * 150))
        eta = bar.eta()
        if eta is not None and bar.done < 300:
            worst = max(worst, abs(eta - (300 - bar.done) / 150) / ((300 - bar.done) / 150))
    assert worst < 0.1


def test_time_left_is_shown_while_jobs_drain_and_done_at_the_end() -> None:
    bar = run_bar(300, startup=1.0, rate=100, until=2.5)
    assert bar.line("2 workers", width=10) == (
        "2 workers [#####-----] 150/300  100 jobs/s  ETA 1.5s")
