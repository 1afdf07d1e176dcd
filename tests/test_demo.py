"""`resque demo`, the README's first command: a real run on its own embedded Redis."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import redis

from resque.embedded import EmbeddedRedis


def test_demo_drains_its_jobs_reports_a_summary_and_keeps_its_data(tmp_path: Path) -> None:
    data = tmp_path / "demo-data"
    done = subprocess.run(
        [sys.executable, "-m", "resque", "demo", "--jobs", "40", "--workers", "1",
         "--data-dir", str(data), "--linger", "0"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Embedded redis-server at redis://127.0.0.1:" in out
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
