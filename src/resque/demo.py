"""``resque demo``: the whole loop on an embedded Redis, in about ten seconds.

It starts a persistent redis-server (unless ``--redis`` names one), enqueues a batch of jobs on
two queues (a few of them fail on purpose), runs worker processes with ``resque work``, shows a
progress bar while they drain, and ends with a summary.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

import resque
from resque.embedded import EmbeddedRedis
from resque.facade import Resque

QUEUES = ("demo_high", "demo_low")


@resque.job(queue="demo_high", name="Demo::Greet")
def greet(name: str) -> None:
    """A quick job; its name is Ruby-style, so a Ruby worker could define it too."""
    _ = f"hello, {name}"


@resque.job(queue="demo_low", name="Demo::Resize")
def resize(width: int, height: int) -> None:
    """A job that takes a little while."""
    time.sleep(0.002)
    if width <= 0 or height <= 0:
        raise ValueError(f"cannot resize to {width}x{height}")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "resque-demo"


def run_demo(
    job_count: int,
    worker_count: int,
    fork: bool,
    data_dir: str | None,
    redis_url: str | None,
    linger: float = 0.0,
) -> int:
    server = None
    if not redis_url:
        directory = Path(data_dir) if data_dir else default_data_dir()
        server = EmbeddedRedis(directory, persistent=True).start()
        redis_url = server.url
        click.echo(f"Embedded redis-server at {redis_url} (data in {directory})")
    dashboard = None
    try:
        from resque.web.server import start_dashboard
    except ImportError:
        click.echo("Install 'resque[web]' to watch the demo in the dashboard.")
    else:
        dashboard = start_dashboard(redis_url)
        click.echo(f"Dashboard: {dashboard.url}")
    try:
        code = _demo(Resque(redis_url), redis_url, job_count, worker_count, fork)
        if dashboard is not None and linger > 0:
            click.echo(f"The dashboard stays up at {dashboard.url}: press Ctrl-C to stop.")
            try:
                deadline = time.monotonic() + linger
                while time.monotonic() < deadline:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
        return code
    finally:
        if dashboard is not None:
            dashboard.stop()
        if server is not None:
            server.stop()


def _demo(client: Resque, redis_url: str, job_count: int, worker_count: int, fork: bool) -> int:
    rng = random.Random(42)
    before = client.info()
    started = time.monotonic()
    failing = 0
    for i in range(job_count):
        if i % 3:
            client.enqueue(greet, f"user{i}")
        else:
            width = rng.randint(-100, 800)  # a few negative widths fail on purpose
            failing += width <= 0
            client.enqueue(resize, width, 600)
    click.echo(f"Enqueued {job_count} jobs on {', '.join(QUEUES)} "
               f"({failing} will fail on purpose). Queues now: {client.queue_sizes()}")
    command = [sys.executable, "-m", "resque", "work", "--app", "resque.demo",
               "-q", ",".join(QUEUES), "--burst", "--redis", redis_url,
               "--fork" if fork else "--no-fork"]
    # Worker logs (a warning per failed job) go to a file, not over the progress bar.
    log_path = Path(tempfile.gettempdir()) / "resque-demo-workers.log"
    with open(log_path, "ab") as log_file:
        workers = [subprocess.Popen(command, stderr=log_file) for _ in range(worker_count)]
    total = sum(client.size(q) for q in QUEUES)
    with click.progressbar(length=total, label=f"{worker_count} workers draining") as bar:
        done = 0
        while any(w.poll() is None for w in workers):
            left = sum(client.size(q) for q in QUEUES)
            bar.update(max(0, total - left - done))
            done = max(done, total - left)
            time.sleep(0.1)
        bar.update(total - done)
    elapsed = time.monotonic() - started
    after = client.info()
    processed = after["processed"] - before["processed"]
    failed = after["failed"] - before["failed"]
    click.echo(f"Processed {processed} jobs ({failed} failed) in {elapsed:.1f}s: "
               f"{processed / elapsed:.0f} jobs/s with {worker_count} worker processes "
               f"({'fork per job' if fork else 'in-process'}).")
    click.echo(f"Failed jobs are kept in the '{client.keys.failed}' list for retry; "
               f"worker logs are in {log_path}.")
    return 0 if all(w.returncode == 0 for w in workers) else 1
