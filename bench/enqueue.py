"""Enqueue throughput against the physical limit: one RPUSH round trip per job.

    python bench/enqueue.py [--jobs N] [--bulk-jobs M] [--repeat K]

Starts its own redis-server (resque.embedded) on loopback and measures, interleaved and
repeated K times so that drift on the machine hits every method alike:

* raw:     a redis-py loop of ``RPUSH queue:<q> <payload>``, one round trip per job, the
           floor any client that sends one job per call pays;
* enqueue: ``Resque.enqueue_to`` one job per call (one EVALSHA round trip doing SADD + RPUSH
           + PUBLISH);
* bulk:    ``Resque.enqueue_many``, chunked RPUSHes in one pipeline;
* and, to tell server cost from client cost, a diagnostic row: a bare ``EVALSHA`` loop of the
  client's push script (what enqueue sends, without any of its Python).

Every method pushes the same payload bytes, and each run is checked (LLEN) before it counts.
Targets: enqueue / raw >= 0.80, bulk >= 200,000 jobs/s. Not a test; never run in CI.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from resque import Resque, ids, layout
from resque.client import PUSH_SCRIPT
from resque.embedded import EmbeddedRedis

QUEUE = "bench"
CLASS = "Bench::Job"
ARGS = [12345, "user@example.com", {"plan": "pro"}]

RATIO_TARGET = 0.80
BULK_TARGET = 200_000


@dataclass
class Sample:
    rate: float  # jobs per second, wall clock
    cpu_us: float  # this process's CPU time per job, in microseconds


def without_id(raw: bytes | str) -> str:
    """A payload with its job id blanked out (ids differ per job, not in length)."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    return re.sub(r'"id":"[^"]*"', '"id":""', text)


def run_raw(client: redis.Redis, key: str, payload: str, jobs: int) -> None:
    rpush = client.rpush
    for _ in range(jobs):
        rpush(key, payload)


def run_enqueue(queue: Resque, jobs: int) -> None:
    enqueue_to = queue.enqueue_to
    for _ in range(jobs):
        enqueue_to(QUEUE, CLASS, *ARGS)


def run_evalsha(client: redis.Redis, sha: str, keys: list[str], payload: str, jobs: int) -> None:
    evalsha = client.evalsha
    for _ in range(jobs):
        evalsha(sha, len(keys), *keys, QUEUE, payload)


def run_bulk(queue: Resque, jobs: int) -> None:
    queue.enqueue_many(CLASS, [ARGS] * jobs, queue=QUEUE)


def timed(run: Callable[[int], None], client: redis.Redis, key: str, jobs: int) -> Sample:
    """One run on an empty queue; the queue must then hold exactly ``jobs`` items."""
    client.delete(key)
    gc.collect()
    cpu = time.process_time()
    start = time.perf_counter()
    run(jobs)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    stored = client.llen(key)
    if stored != jobs:
        raise SystemExit(f"benchmark broken: expected {jobs} items in {key}, found {stored}")
    return Sample(rate=jobs / elapsed, cpu_us=cpu / jobs * 1e6)


def redis_server_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    version = next((part for part in out.split() if part.startswith("v=")), "v=?")
    return version[2:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per raw/enqueue run")
    parser.add_argument(
        "--bulk-jobs", type=int, default=None, help="jobs per bulk run (default 10 x --jobs)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds (default 5)")
    options = parser.parse_args(argv)
    jobs = options.jobs
    bulk_jobs = options.bulk_jobs or jobs * 10

    with EmbeddedRedis() as server:
        client = server.client()
        queue = Resque(server.client())
        key = queue.keys.queue(QUEUE)
        # What enqueue writes, job id included (the raw loops push the same bytes each time).
        payload = layout.encode_job(CLASS, ARGS, ids.new_id()) if queue.job_ids else (
            layout.encode_job(CLASS, ARGS))

        sha = client.script_load(PUSH_SCRIPT)
        # The script's KEYS, as documented next to PUSH_SCRIPT; the warm-up checks the bytes.
        script_keys = [queue.keys.queues, key, queue.keys.wake_channel(QUEUE)]

        methods: dict[str, Callable[[int], None]] = {
            "raw RPUSH loop": lambda n: run_raw(client, key, payload, n),
            "Resque.enqueue": lambda n: run_enqueue(queue, n),
            "enqueue_many": lambda n: run_bulk(queue, n),
            "(EVALSHA loop)": lambda n: run_evalsha(client, sha, script_keys, payload, n),
        }
        counts = {name: jobs for name in methods}
        counts["enqueue_many"] = bulk_jobs

        # Warm up connections and the script cache, and check every method writes the same bytes
        # (but for the job id, which differs per job and has the same length).
        for name, run in methods.items():
            client.delete(key)
            run(10)
            if {without_id(raw) for raw in client.lrange(key, 0, -1)} != {without_id(payload)}:
                raise SystemExit(f"{name} does not write the reference payload {payload}")

        samples: dict[str, list[Sample]] = {name: [] for name in methods}
        ratios: list[float] = []
        names = list(methods)
        for round_number in range(options.repeat):
            # Rotate the order each round so no method always runs first or last.
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(timed(methods[name], client, key, counts[name]))
            ratios.append(samples["Resque.enqueue"][-1].rate / samples["raw RPUSH loop"][-1].rate)
        client.delete(key)
        binary = server.binary

    print(
        f"python {platform.python_version()}, redis-py {redis.__version__}"
        f" (hiredis: {'yes' if redis.utils.HIREDIS_AVAILABLE else 'no'}),"
        f" redis-server {redis_server_version(binary)} on loopback TCP, {os.cpu_count()} CPUs"
    )
    print(f"payload {len(payload)} bytes: {payload}")
    print(f"{options.repeat} interleaved rounds; {jobs} jobs per single run, {bulk_jobs} per bulk")
    print("(EVALSHA loop) is a diagnostic: the push script alone, without the client's Python")
    print()
    print(
        f"{'method':<16} {'median jobs/s':>14} {'min - max jobs/s':>22} {'client CPU us/job':>18}"
    )
    noisy = False
    for name, runs in samples.items():
        rates = [run.rate for run in runs]
        noisy = noisy or max(rates) > 1.5 * min(rates)
        spread = f"{min(rates):,.0f} - {max(rates):,.0f}"
        cpu = statistics.median(run.cpu_us for run in runs)
        print(f"{name:<16} {statistics.median(rates):>14,.0f} {spread:>22} {cpu:>18.1f}")
    print()

    def median_rate(name: str) -> float:
        return statistics.median(run.rate for run in samples[name])

    # Rounds are paired (raw and enqueue run back to back), so the median of the per-round
    # ratios resists drift on a shared machine better than a ratio of medians.
    ratio = statistics.median(ratios)
    bulk = median_rate("enqueue_many")
    ratio_ok = ratio >= RATIO_TARGET
    bulk_ok = bulk >= BULK_TARGET
    print(
        f"enqueue / raw RPUSH: {ratio:.2f} median of rounds ({min(ratios):.2f} - {max(ratios):.2f};"
        f" ratio of medians {median_rate('Resque.enqueue') / median_rate('raw RPUSH loop'):.2f})"
        f"  target >= {RATIO_TARGET:.2f}  {'PASS' if ratio_ok else 'MISS'}"
    )
    script = median_rate("(EVALSHA loop)") / median_rate("raw RPUSH loop")
    print(f"  diagnostic: bare push script / raw RPUSH: {script:.2f}; the rest is client Python")
    print(
        f"enqueue_many: {bulk:,.0f} jobs/s  target >= {BULK_TARGET:,}"
        f"  {'PASS' if bulk_ok else 'MISS'}"
    )
    if noisy:
        print("note: runs of one method differ by more than 1.5x; the machine is busy, so")
        print("      trust the paired ratio and CPU us/job more than the jobs/s, or rerun.")
    return 0 if ratio_ok and bulk_ok else 1


if __name__ == "__main__":
    sys.exit(main())
