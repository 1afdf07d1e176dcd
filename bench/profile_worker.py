"""Where one worker's time goes per job: client CPU, Redis CPU, commands, and (py-spy) frames.

    python bench/profile_worker.py [--fork] [--jobs N] [--py-spy]

Starts its own redis-server, queues N no-op jobs (bench/benchjobs.py), starts one worker
(``python -m resque work``, in-process unless ``--fork``), waits until it is registered, then
releases the jobs (as bench/worker.py does) and measures until every job is counted:

* wall time per job, and the worker's own CPU per job from /proc (user and system), plus its
  reaped children's (the forked jobs, in fork mode);
* redis-server's CPU per job (``INFO cpu``) and ``INFO commandstats`` per job: calls and
  microseconds of every command (those run by a script are counted too: ``EVALSHA`` calls are
  the round trips of the hot path);
* with ``--py-spy`` (``pip install py-spy``, needs ptrace), a sampled profile of the worker
  over the run: the functions where samples land (self) and that are on the stack (total).

A diagnostic for tuning, not a benchmark: sampling slows the worker a little.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from resque import Resque
from resque.embedded import EmbeddedRedis

BENCH = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> tuple[float, float, float, float]:
    """utime, stime, cutime, cstime of ``pid`` in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return tuple(int(fields[i]) / TICK for i in (11, 12, 13, 14))  # type: ignore[return-value]


def collapse(path: Path, top: int) -> None:
    """Self and total samples by function from py-spy's raw (collapsed stacks) output."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        samples += count
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1]
                  + ")" if " (" in f else f for f in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    print(f"\npy-spy: {samples} samples")
    for title, counter in (("self", own), ("total (on the stack)", total)):
        print(f"  {title}:")
        for frame, count in counter.most_common(top):
            print(f"    {100 * count / samples:5.1f}%  {frame}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--fork", action="store_true", help="fork per job (default in-process)")
    parser.add_argument("--jobs", type=int, help="jobs (default 200,000; fork 3,000)")
    parser.add_argument("--py-spy", action="store_true", help="sample the worker with py-spy")
    parser.add_argument("--top", type=int, default=25, help="functions to list")
    options = parser.parse_args(argv)
    jobs = options.jobs or (3_000 if options.fork else 200_000)
    workdir = Path(tempfile.mkdtemp(prefix="resque-profile-"))
    with EmbeddedRedis() as server:
        r = server.client()
        resque = Resque(server.url)
        resque.enqueue_many("benchjobs.noop", [[n] for n in range(jobs)], queue="bench")
        queue_key = resque.keys.queue("bench")
        r.rename(queue_key, "bench:staging")
        env = dict(os.environ, PYTHONPATH=str(BENCH), BENCH_REDIS=server.url)
        command = [sys.executable, "-m", "resque", "work", "--app", "benchjobs", "-q", "bench",
                   "--fork" if options.fork else "--no-fork", "--redis", server.url]
        worker = subprocess.Popen(command, env=env, cwd=workdir)
        spy = None
        try:
            deadline = time.monotonic() + 30
            while not r.scard(resque.keys.workers):
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise SystemExit("the worker did not start")
                time.sleep(0.01)
            time.sleep(0.3)
            if options.py_spy:
                spy_out = workdir / "spy.txt"
                spy = subprocess.Popen(
                    ["py-spy", "record", "--pid", str(worker.pid), "--rate", "500",
                     "--format", "raw", "--output", str(spy_out), "--nonblocking"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.0)  # py-spy attaches
            r.config_resetstat()
            cpu0 = proc_cpu(worker.pid)
            info0 = r.info("cpu")
            started = time.perf_counter()
            with r.pipeline() as pipe:
                pipe.rename("bench:staging", queue_key)
                pipe.publish(resque.keys.wake_channel("bench"), "")
                pipe.execute()
            while resque.stat("processed") < jobs:
                time.sleep(0.002)
            elapsed = time.perf_counter() - started
            cpu1 = proc_cpu(worker.pid)
            info1 = r.info("cpu")
            stats = r.info("commandstats")
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(30)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
            if spy is not None and spy.poll() is None:
                spy.kill()
        redis_cpu = (info1["used_cpu_user"] + info1["used_cpu_sys"]
                     - info0["used_cpu_user"] - info0["used_cpu_sys"])

    per = 1e6 / jobs
    user, system, child_user, child_system = (b - a for a, b in zip(cpu0, cpu1, strict=True))
    print(f"{jobs:,} no-op jobs, one {'forking' if options.fork else 'in-process'} worker: "
          f"{jobs / elapsed:,.0f} jobs/s")
    print(f"  wall                {elapsed * per:8.1f} us/job")
    print(f"  worker CPU          {(user + system) * per:8.1f} us/job "
          f"(user {user * per:.1f}, sys {system * per:.1f}; /proc, 1/{TICK} s ticks)")
    if options.fork:
        print(f"  forked children CPU {(child_user + child_system) * per:8.1f} us/job "
              f"(user {child_user * per:.1f}, sys {child_system * per:.1f})")
    print(f"  redis-server CPU    {redis_cpu * per:8.1f} us/job")
    print("\nINFO commandstats per job (commands run by scripts included):")
    print(f"  {'command':<16} {'calls/job':>10} {'us/job':>8} {'us/call':>8}")
    for name, stat in sorted(stats.items(), key=lambda kv: -kv[1]["usec"]):
        print(f"  {name.removeprefix('cmdstat_'):<16} {stat['calls'] / jobs:>10.3f} "
              f"{stat['usec'] / jobs:>8.2f} {stat['usec_per_call']:>8.2f}")
    if options.py_spy:
        collapse(workdir / "spy.txt", options.top)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
