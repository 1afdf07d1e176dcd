"""A million jobs: 1,000,000 queued over 1,000 queues, 100,000 delayed, 100,000 failures,
500 registered workers and 100,000 status records of tracked jobs; every dashboard page and
admin verb timed on it, then a drain.

    python bench/million.py [--scale F] [--drainers N] [--markdown FILE]

Starts its own redis-server (resque.embedded) on loopback and builds the farm with
tests/support/scalekit.py (``enqueue_many`` for the queued jobs: its rate is the enqueue
figure, and the memory Redis used for them is the memory per queued job). Then each probe of
tests/support/scalekit.py (every page of the dashboard, every admin verb's library call, an
enqueue, a worker's step) runs alone: pages three times (the median is shown), verbs once,
each with the Redis commands and bytes it cost. Each has a documented limit (``LIMITS``); the
bulk verbs (retry-all, clear-retried, a search matching nothing, counting every delayed job,
as the metrics snapshot does, removing a delayed job by its args, which looks for copies that
carry a job id) act on every entry, and their limit is per 100,000 entries. Last,
``--drainers`` in-process workers on ``*`` drain the million jobs (``--burst``): jobs/s and
Redis commands per job.

``--scale 0.1`` builds a tenth of everything (a quick check). Not a test: the CI test of the
same probes at a small size (tests/test_scale.py) counts commands instead of timing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import redis  # noqa: E402
from report import Run, markdown_table, text_table  # noqa: E402
from support import scalekit  # noqa: E402
from support.scalekit import MILLION, Cost, Probe, Sizes, cost  # noqa: E402
from support.webkit import client  # noqa: E402

from resque import Resque, layout  # noqa: E402
from resque.embedded import EmbeddedRedis  # noqa: E402

PAGE_LIMIT = 0.5  # seconds: every page and single-item verb, at a million jobs
BULK_LIMIT = 30.0  # seconds per 100,000 entries a bulk verb acts on (retry-all: the slowest)
LIMITS = {"prune": 1.0, "workers": 1.0,  # read every worker record (500): stated per verb
          "enqueue's warning: workers serving the queue": 1.0}


def limit(probe: Probe, sizes: Sizes) -> float:
    if probe.bulk:
        return BULK_LIMIT * max(sizes.failures, sizes.delayed) / 100_000
    return LIMITS.get(probe.name, PAGE_LIMIT)


def run_probe(r: redis.Redis, probe: Probe) -> Cost:
    """Pages (GETs) three times, the median time; anything else once (it acts)."""
    if not probe.name.startswith("GET "):
        return cost(r, probe.run)
    costs = [cost(r, probe.run) for _ in range(3)]
    costs.sort(key=lambda c: c.seconds)
    return costs[1]


def drain(url: str, r: redis.Redis, drainers: int, jobs: int) -> tuple[float, float, float]:
    """``drainers`` burst workers on ``*`` drain every queue: jobs/s, Redis commands per job
    and Redis CPU microseconds per job."""
    keys = layout.Keys()
    calls_before = sum(int(v["calls"]) for v in r.info("commandstats").values())
    info = r.info("cpu")
    cpu_before = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    processed_before = int(r.get(keys.stat("processed")) or 0)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESQUE_", "QUEUE"))}
    env["PYTHONPATH"] = str(ROOT / "tests" / "support" / "apps")  # --app scalejobs
    started = time.monotonic()
    workers = [subprocess.Popen(
        [sys.executable, "-m", "resque", "work", "--app", "scalejobs", "-q", "*",
         "--no-fork", "--burst", "--redis", url], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL) for _ in range(drainers)]
    for worker in workers:
        worker.wait()
    seconds = time.monotonic() - started
    done = int(r.get(keys.stat("processed")) or 0) - processed_before
    calls = sum(int(v["calls"]) for v in r.info("commandstats").values()) - calls_before
    info = r.info("cpu")
    cpu = float(info["used_cpu_user"]) + float(info["used_cpu_sys"]) - cpu_before
    if done != jobs:
        raise SystemExit(f"bench broken: the drain ran {done:,} of {jobs:,} jobs")
    return jobs / seconds, calls / jobs, cpu / jobs * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--drainers", type=int, default=2)
    parser.add_argument("--markdown", help="write the tables (docs/reports/million-table.md)")
    options = parser.parse_args()
    s = options.scale
    sizes = Sizes(int(MILLION.queued * s), max(10, int(MILLION.queues * s)),
                  int(MILLION.delayed * s), MILLION.per_timestamp, int(MILLION.failures * s),
                  max(20, int(MILLION.workers * s)), int(MILLION.tracked * s))
    run = Run()
    with EmbeddedRedis() as server:
        r = server.client()
        resque = Resque(server.client())
        baseline = scalekit.used_memory(r)
        filled = scalekit.fill(resque, sizes)
        # The payloads as enqueued (each with its job id): the first queue's, on average.
        sample = r.lrange(resque.keys.queue(scalekit.queue_name(0)), 0, -1)
        payload = sum(len(raw) for raw in sample) / max(1, len(sample))
        print(f"filled in {sum(filled.seconds.values()):.0f} s", file=sys.stderr)
        web = client(resque)
        probes = [*scalekit.pages(resque, web, sizes), *scalekit.verbs(resque, sizes)]
        first_bulk = next(i for i, p in enumerate(probes) if p.bulk)
        measured: list[tuple[Probe, Cost]] = []
        for probe in probes[:first_bulk]:
            measured.append((probe, run_probe(r, probe)))
        queued = sum(int(r.llen(resque.keys.queue(q))) for q in resque.queues())
        rate, calls_per_job, cpu_per_job = drain(server.url, r, options.drainers, queued)
        print(f"drained {queued:,} at {rate:,.0f} jobs/s", file=sys.stderr)
        for probe in probes[first_bulk:]:  # the bulk verbs, then those that empty the farm
            measured.append((probe, run_probe(r, probe)))
        total_memory = scalekit.used_memory(r)
    rows, misses = [], 0
    for probe, spent in measured:
        bound = limit(probe, sizes)
        ok = spent.seconds <= bound
        misses += not ok
        rows.append([probe.name, f"{spent.seconds * 1000:,.1f}", f"{spent.calls:,}",
                     f"{spent.sent / 1024:,.1f}", f"<= {bound * 1000:,.0f}",
                     "PASS" if ok else "MISS"])
    head = ["page or verb", "ms", "Redis commands", "KiB sent", "documented limit, ms",
            "result"]
    per_job = filled.memory["queued"] / sizes.queued
    farm = [
        ["enqueue_many, 1,000 per call", f"{sizes.queued / filled.seconds['queued']:,.0f} "
                                         "jobs/s"],
        ["Redis memory per queued job",
         f"{per_job:.1f} bytes (payload {payload:.1f} bytes on average)"],
        ["Redis memory per delayed job", f"{filled.memory['delayed'] / sizes.delayed:.1f} bytes"],
        ["Redis memory per failure", f"{filled.memory['failures'] / sizes.failures:.1f} bytes"],
        ["Redis memory, the whole farm", f"{(total_memory - baseline) / 2**20:,.0f} MiB"],
        [f"drain: {options.drainers} in-process workers on `*`",
         f"{rate:,.0f} jobs/s; {calls_per_job:.2f} Redis commands and {cpu_per_job:.1f} us "
         "of Redis CPU per job"],
    ]
    print(text_table(["farm", "measured"], farm))
    print()
    print(text_table(head, rows))
    if options.markdown:
        described = (f"{sizes.queued:,} queued jobs over {sizes.queues:,} queues, "
                     f"{sizes.delayed:,} delayed ({sizes.per_timestamp} per timestamp), "
                     f"{sizes.failures:,} failures, {sizes.workers} registered workers, "
                     f"{sizes.tracked:,} status records of tracked jobs")
        run.page(options.markdown, server.binary,
                 [markdown_table(["farm", "measured"], farm), markdown_table(head, rows)],
                 [("farm", described)])
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
