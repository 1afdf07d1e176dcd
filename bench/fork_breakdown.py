"""Fork mode, taken apart: where each microsecond of a forked job goes on this machine, and
the idle memory floor redis-py allows.

    python bench/fork_breakdown.py [--jobs N] [--markdown FILE]

1. The primitives, each measured alone (median of many):
   * ``fork``: ``os.fork()`` returning in the parent, for parents the size of our fork server
     (``resque`` and light job code; job code that imports redis-py) and of a worker;
   * ``exit + reap``: the child's ``os._exit`` until the parent's ``waitpid`` returns;
   * the CPU each costs (``getrusage``: the parent's, and the reaped children's);
   * ``step``: the worker's one round trip per job (acknowledge one, reserve one:
     ``lua/step.lua``) against a local Redis, and the Redis CPU it takes;
   * ``message``: one JSON line each way over a socket pair between two processes (the
     worker and the fork server speak so, twice per job);
   * ``title``: one ``setproctitle`` (the worker sets two per job, the child one);
   * ``job``: decoding a no-op job, resolving it and running it.
2. End to end: a real forking worker (``resque work --fork``) drains no-op jobs, from a
   module that imports only ``resque`` (bench/lightjobs.py) and from one that imports redis-py
   (bench/benchjobs.py); jobs/s, and the CPU per job of the worker, the fork server, the
   forked children and redis-server.
   The floor: the sum of every process's CPU per job spread over the machine's cores.
3. Memory: the resident size of a bare interpreter, of ``import redis``, of an idle worker,
   of its fork server and of a forked child.

Not a test. The figures are a machine's; the ratios between them are what carries over.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from report import Run, markdown_table, text_table

from resque import Resque, jobs, layout, performing
from resque.embedded import EmbeddedRedis

BENCH = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")

# Run in a fresh interpreter whose imports match a fork server of light job code (``light``),
# one whose job code imports redis-py (``redis``), or a worker (``worker``): fork N children
# that exit at once, timing each part.
FORK_PROBE = """
import json, os, resource, sys, time
import resque.execution.forkserver  # noqa: F401
if sys.argv[1] == "worker":
    import redis, resque.worker  # noqa: F401
elif sys.argv[1] == "redis":
    import benchjobs  # noqa: F401
else:
    import lightjobs  # noqa: F401
import gc; gc.freeze()
n = int(sys.argv[2]); forks, exits, starts = [], [], []
usage = lambda: (resource.getrusage(resource.RUSAGE_SELF),
                 resource.getrusage(resource.RUSAGE_CHILDREN))
self0, kids0 = usage()
for _ in range(n):
    r, w = os.pipe()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        started = time.perf_counter()
        os.write(w, f"{started!r} {time.perf_counter()!r}".encode())
        os._exit(0)
    t1 = time.perf_counter()
    os.close(w)
    started, leaving = map(float, os.read(r, 100).split())
    os.close(r)
    os.waitpid(pid, 0)
    t2 = time.perf_counter()
    forks.append(t1 - t0); starts.append(started - t0); exits.append(t2 - leaving)
self1, kids1 = usage()
rss = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0])
cpu = lambda a, b: (b.ru_utime + b.ru_stime - a.ru_utime - a.ru_stime) / n
print(json.dumps({"fork": sorted(forks)[n // 2], "start": sorted(starts)[n // 2],
                  "exit": sorted(exits)[n // 2], "parent_cpu": cpu(self0, self1),
                  "child_cpu": cpu(kids0, kids1), "rss_mb": rss / 1024}))
"""

# One JSON line each way between two processes, as the worker and the fork server exchange.
MESSAGE_PROBE = """
import json, os, socket, sys, time
n = int(sys.argv[1]); ours, theirs = socket.socketpair()
pid = os.fork()
if pid == 0:
    ours.close(); reader = theirs.makefile("rb")
    while line := reader.readline():
        reply = {"status": 0, "report": json.loads(line)["raw"][:1]}
        theirs.sendall(json.dumps(reply).encode() + b"\\n")
    os._exit(0)
theirs.close(); reader = ours.makefile("rb")
message = {"queue": "bench", "raw": '{"class":"benchjobs.noop","args":[1]}', "title": "x" * 60}
t0 = time.perf_counter()
for _ in range(n):
    ours.sendall(json.dumps(message).encode() + b"\\n")
    json.loads(reader.readline())
print((time.perf_counter() - t0) / n)
reader.close(); ours.close(); os.waitpid(pid, 0)
"""


def probe(code: str, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(BENCH))
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, timeout=600)
    if done.returncode:
        raise SystemExit(f"probe failed: {done.stderr[-2000:]}")
    return done.stdout.strip()


def timed(action: object, n: int) -> float:
    """Median seconds of ``action()`` over ``n`` runs, in 10 rounds."""
    rounds = []
    for _ in range(10):
        started = time.perf_counter()
        for _ in range(n // 10):
            action()  # type: ignore[operator]
        rounds.append((time.perf_counter() - started) / (n // 10))
    return statistics.median(rounds)


def step_cost(url: str, n: int) -> tuple[float, float]:
    """Seconds per worker step (acknowledge one job, reserve the next), and Redis CPU per
    step: tests/support/scalekit.py's probe, on a queue of ``n`` jobs."""
    sys.path.insert(0, str(BENCH.parent / "tests"))
    from support.scalekit import worker_steps

    resque = Resque(url)
    resque.redis.flushall()
    resque.enqueue_many("benchjobs.noop", [[i] for i in range(n + 1)], queue="bench")
    step = worker_steps(resque, "bench")
    cpu0 = redis_cpu(resque.redis)
    seconds = timed(step, n)
    return seconds, (redis_cpu(resque.redis) - cpu0) / n


def redis_cpu(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def job_cost(n: int) -> float:
    """Seconds to decode, resolve and run a no-op job, as the child does."""
    import benchjobs  # noqa: F401 - registers the job

    raw = layout.encode_job("benchjobs.noop", [1]).encode()

    def one() -> None:
        payload = layout.decode_job(raw, "bench")
        target = jobs.registry.resolve(payload["class"], ())
        performing.run(target, payload["args"], payload["class"])

    return timed(one, n)


def title_cost(n: int) -> float:
    import setproctitle

    title = "resque-3.0.0: Processing bench since 1764547200 [benchjobs.noop]"
    return timed(lambda: setproctitle.setproctitle(title), n)


# --- end to end -------------------------------------------------------------------------------


def proc_cpu(pid: int) -> tuple[float, float]:
    """(own user + sys, reaped children's user + sys) of ``pid``, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return ((int(fields[11]) + int(fields[12])) / TICK, (int(fields[13]) + int(fields[14])) / TICK)


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def end_to_end(url: str, jobs_count: int, workdir: Path, app: str) -> dict[str, float]:
    """A real forking worker drains ``jobs_count`` no-op jobs of module ``app``; rates, CPU
    and sizes."""
    resque = Resque(url)
    r = resque.redis
    r.flushall()
    resque.enqueue_many(f"{app}.noop", [[n] for n in range(jobs_count)], queue="bench")
    key = resque.keys.queue("bench")
    r.rename(key, "bench:staging")
    env = dict(os.environ, PYTHONPATH=str(BENCH), BENCH_REDIS=url)
    worker = subprocess.Popen([sys.executable, "-m", "resque", "work", "--app", app,
                               "-q", "bench", "--fork", "--redis", url], env=env, cwd=workdir)
    try:
        deadline = time.monotonic() + 30
        while not r.scard(resque.keys.workers) or not children(worker.pid):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit("the worker did not start")
            time.sleep(0.01)
        time.sleep(1.0)
        (server,) = children(worker.pid)
        spare = children(server)
        sizes = {"worker idle": rss_mb(worker.pid), "fork server": rss_mb(server),
                 "forked child (waiting)": rss_mb(spare[0]) if spare else float("nan")}
        before = (proc_cpu(worker.pid), proc_cpu(server), redis_cpu(r))
        started = time.perf_counter()
        with r.pipeline() as pipe:
            pipe.rename("bench:staging", key)
            pipe.publish(resque.keys.wake_channel("bench"), "")
            pipe.execute()
        while resque.stat("processed") < jobs_count:
            time.sleep(0.002)
        elapsed = time.perf_counter() - started
        after = (proc_cpu(worker.pid), proc_cpu(server), redis_cpu(r))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    per = 1e6 / jobs_count
    return {
        "jobs/s": jobs_count / elapsed, "wall": elapsed * per,
        "worker": (after[0][0] - before[0][0]) * per,
        "fork server": (after[1][0] - before[1][0]) * per,
        "children": (after[1][1] - before[1][1]) * per,
        "redis": (after[2] - before[2]) * per, **{f"rss {k}": v for k, v in sizes.items()},
    }


def memory_floor() -> dict[str, float]:
    """Resident MB of a bare interpreter and with ``import redis`` (whatever it imports)."""
    code = ("import sys\nif sys.argv[1] == 'redis': import redis\n"
            "print(int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) / 1024)")
    return {"python": float(probe(code, "none")), "import redis": float(probe(code, "redis"))}


def fork_rows(forks: dict[str, dict[str, float]]) -> list[list[str]]:
    """Fork and exit, by the size of the forking process, and what a megabyte costs."""
    us = 1e6
    names = {"light": "fork server, light job code", "redis": "fork server, job code imports "
             "redis-py", "worker": "worker (redis-py loaded)"}
    rows = [[names[kind], f"{f['rss_mb']:.1f}", f"{f['fork'] * us:,.0f}",
             f"{f['parent_cpu'] * us:,.0f}", f"{f['start'] * us:,.0f}", f"{f['exit'] * us:,.0f}",
             f"{f['child_cpu'] * us:,.0f}"] for kind, f in forks.items()]
    light, heavy = forks["light"], forks["redis"]
    size = heavy["rss_mb"] - light["rss_mb"]
    slope = ((heavy["parent_cpu"] + heavy["child_cpu"]) - (light["parent_cpu"]
             + light["child_cpu"])) / size * us if size > 0 else float("nan")
    rows.append(["per MB of the forking process", "1", "", "", "", "",
                 f"{slope:,.0f} (fork + exit CPU)"])
    return rows


def summary_rows(e2e: dict[str, dict[str, float]], on_path: float) -> list[list[str]]:
    cores = os.cpu_count() or 1
    rows = []
    for app, m in e2e.items():
        total = m["worker"] + m["fork server"] + m["children"] + m["redis"]
        rows.append([app, f"{m['jobs/s']:,.0f}", f"{m['rss fork server']:.1f}",
                     f"{m['worker']:,.0f}", f"{m['fork server']:,.0f}", f"{m['children']:,.0f}",
                     f"{m['redis']:,.0f}", f"{total:,.0f}", f"{cores * 1e6 / total:,.0f}"])
    rows.append(["(on the job's path: step, messages, titles, job)", "", "", "", "", "", "",
                 f"{on_path * 1e6:,.0f} wall", f"{1 / on_path:,.0f}"])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=3000, help="end-to-end jobs")
    parser.add_argument("--markdown", help="write the tables (docs/reports/fork-table.md)")
    options = parser.parse_args()
    run = Run()
    forks = {kind: json.loads(probe(FORK_PROBE, kind, "400"))
             for kind in ("light", "redis", "worker")}
    message = float(probe(MESSAGE_PROBE, "5000"))
    title, job = title_cost(20_000), job_cost(20_000)
    with EmbeddedRedis() as server, tempfile.TemporaryDirectory() as workdir:
        step, step_redis = step_cost(server.url, 5000)
        e2e = {app: end_to_end(server.url, options.jobs, Path(workdir), app)
               for app in ("lightjobs", "benchjobs")}
        binary = server.binary
    floor = memory_floor()
    us = 1e6
    path = [
        ["step: one round trip to Redis (acknowledge + reserve)", f"{step * us:,.0f}",
         f"Redis CPU {step_redis * us:.0f} us of it"],
        ["messages: the job to the fork server, its pid and result back",
         f"{2 * message * us:,.0f}", "two JSON-line exchanges between processes"],
        ["titles: setproctitle, 3 per job", f"{3 * title * us:,.0f}", "worker 2, child 1"],
        ["job: decode, resolve, run a no-op", f"{job * us:,.0f}", "in the child"],
    ]
    on_path = step + 2 * message + 3 * title + job
    fork_head = ["forking process", "RSS MB", "fork us", "fork CPU us", "child running after us",
                 "exit + reap us", "child CPU us"]
    e2e_head = ["job module", "jobs/s", "fork server MB", "worker CPU us/job",
                "fork server CPU us/job", "children CPU us/job", "Redis CPU us/job",
                "all CPU us/job", "CPU ceiling jobs/s"]
    memory = [
        ["python, nothing imported", f"{floor['python']:.1f}"],
        [f"python + import redis (redis-py {redis.__version__}: asyncio and ssl come along)",
         f"{floor['import redis']:.1f}"],
        ["our worker, idle", f"{e2e['benchjobs']['rss worker idle']:.1f}"],
        ["its fork server (job code importing redis-py)",
         f"{e2e['benchjobs']['rss fork server']:.1f}"],
        ["its fork server (light job code)", f"{e2e['lightjobs']['rss fork server']:.1f}"],
        ["a forked child, waiting for its job (light)",
         f"{e2e['lightjobs']['rss forked child (waiting)']:.1f}"],
    ]
    tables = [(["on the job's path", "us", "note"], path), (fork_head, fork_rows(forks)),
              (e2e_head, summary_rows(e2e, on_path)), (["resident memory", "MB"], memory)]
    for head, rows in tables:
        print(text_table(head, rows))
        print()
    if options.markdown:
        run.page(options.markdown, binary, [markdown_table(h, r) for h, r in tables])
    return 0


if __name__ == "__main__":
    sys.exit(main())
