"""Failure-list verbs on a big list: each single-entry verb must stay well under a second.

    python bench/failures.py [--failures N] [--repeat K]

Starts its own redis-server (resque.embedded) on loopback, fills ``failed`` with N records
(default 100,000) in Ruby's, Perl's and our format, with distinct args, and times:

* list:   the first page (newest), a page in the middle and the last page, via the library;
          and ``resque failed list`` as a real process (interpreter start-up included);
* show/retry/remove of one entry in the middle of the list, by id;
* the same by a stale id, after 1,000 entries before it were removed by someone else;
* count, and a filtered page and bulk verbs, which read the whole list (for scale).

Each figure is the median of K runs (default 5). Not a test; never run in CI.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from resque import Resque, layout
from resque.admin import Admin, FailureNotFound, Filter
from resque.embedded import EmbeddedRedis

TARGET = 1.0  # seconds: what a single-entry verb must stay well under
RESQUE = Path(sys.executable).parent / "resque"


def ruby_record(i: int) -> str:
    return (
        '{"failed_at":"2026/11/27 23:46:22 UTC","payload":{"class":"Ruby::Fail","args":['
        + str(i)
        + ']},"exception":"RuntimeError","error":"boom","backtrace":["app/jobs/fail.rb:26:in '
        '`perform\'"],"worker":"vm:1210:high,low","queue":"low"}'
    )


def perl_record(i: int) -> str:
    return (
        '{"queue":"low","backtrace":null,"error":"boom at pr.pl line 82.","exception":'
        '"Resque::Failure::Job","worker":"vm:4429:high,low","payload":{"args":['
        + str(i)
        + '],"class":"Perl::Fail"},"failed_at":"2026/11/27 23:49:13 UTC"}'
    )


def our_record(i: int) -> str:
    return layout.failure_record(
        payload={"class": "py.jobs.fail", "args": [i, "user@example.com"]},
        exception="ValueError", error="boom",
        backtrace=['  File "app/jobs.py", line 12, in fail', "    raise ValueError('boom')"],
        worker="vm:2000:py", queue="py", now=1_795_823_000,
    )


def fill(admin: Admin, count: int) -> None:
    makers = (ruby_record, perl_record, our_record)
    key = admin.keys.failed
    admin.redis.delete(key)
    with admin.redis.pipeline(transaction=False) as pipe:
        for start in range(0, count, 5000):
            pipe.rpush(key, *(makers[i % 3](i) for i in range(start, min(count, start + 5000))))
        pipe.execute()


def median(run: Callable[..., Any], repeat: int, setup: Callable[[], Any] | None = None) -> float:
    """Median seconds of ``run()``, or of ``run(setup())`` with the setup left out."""
    times = []
    for _ in range(repeat):
        arguments = [setup()] if setup else []
        start = time.perf_counter()
        run(*arguments)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(name: str, seconds: float, single: bool = True) -> bool:
    ok = seconds < TARGET or not single
    flag = "" if not single else ("  ok" if ok else "  TOO SLOW")
    print(f"  {name:<52} {seconds * 1000:9.1f} ms{flag}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--failures", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args(argv)
    n, repeat = options.failures, options.repeat

    with EmbeddedRedis() as server:
        admin = Admin(Resque(server.client()))
        failures = admin.failures
        started = time.perf_counter()
        fill(admin, n)
        size = admin.redis.memory_usage(admin.keys.failed) or 0
        version = admin.redis.info("server")["redis_version"]
        print(f"{n:,} failures in 'failed' ({size / 1e6:.1f} MB) on redis-server {version}, "
              f"filled in {time.perf_counter() - started:.1f} s; median of {repeat} runs each\n")
        ok = True

        print("list")
        ok &= report("first page, newest first (20)", median(lambda: failures.page(0, 20), repeat))
        ok &= report("middle page (20)", median(lambda: failures.page(n // 2, 20), repeat))
        ok &= report("last page, oldest first (20)",
                     median(lambda: failures.page(n - 20, 20, newest=False), repeat))
        command = [str(RESQUE), "failed", "list", "--redis", server.url]
        ok &= report("`resque failed list` process, start-up included",
                     median(lambda: subprocess.run(command, check=True, capture_output=True),
                            repeat))

        middle = n // 2

        def a_middle_id() -> str:
            return str(failures.page(middle, 1, newest=False).entries[0].id)

        print("one entry, by id (middle of the list)")
        ok &= report("show", median(failures.get, repeat, a_middle_id))
        ok &= report("retry (mark retried_at, push the job)",
                     median(failures.requeue, repeat, a_middle_id))
        ok &= report("retry and remove", median(
            lambda fid: failures.requeue(fid, remove=True), repeat, a_middle_id))
        ok &= report("remove", median(failures.remove, repeat, a_middle_id))

        appended = iter(range(-1, -1_000_000, -1))  # distinct records for "someone else"

        def stale_id() -> str:
            fid = a_middle_id()
            admin.redis.ltrim(admin.keys.failed, 1000, -1)  # someone removes 1,000 older ones
            admin.redis.rpush(admin.keys.failed, *(our_record(next(appended))
                                                   for _ in range(1000)))
            return fid

        print("one entry, by a stale id (1,000 entries before it removed meanwhile)")
        ok &= report("remove", median(failures.remove, repeat, stale_id))
        ok &= report("retry", median(failures.requeue, repeat, stale_id))

        def gone_id() -> str:
            fid = str(failures.page(0, 1).entries[0].id)
            admin.redis.rpop(admin.keys.failed)  # someone removes it; another is appended
            admin.redis.rpush(admin.keys.failed, our_record(next(appended)))
            return fid

        ok &= report("remove of an entry gone meanwhile (not found)", median(
            lambda fid: _expect_gone(admin, fid), repeat, gone_id))

        print("whole-list verbs (for scale; proportional to the list)")
        report("count (LLEN)", median(failures.count, repeat))
        report("filtered count, --class py.jobs.fail",
               median(lambda: failures.count(Filter(class_name="py.jobs.fail")), repeat), False)
        report("filtered page, --queue low, from the oldest",
               median(lambda: failures.page(n // 3, 20, newest=False,
                                            where=Filter(queue="low")), repeat), False)
        fill(admin, n)
        start = time.perf_counter()
        result = failures.requeue_where(Filter(class_name="Perl::Fail"))
        report(f"retry-all --class Perl::Fail ({result.done:,} retried)",
               time.perf_counter() - start, False)
        start = time.perf_counter()
        result = failures.remove_where(Filter(class_name="Ruby::Fail"))
        report(f"remove --class Ruby::Fail ({result.done:,} removed)",
               time.perf_counter() - start, False)
        start = time.perf_counter()
        removed = failures.clear()
        report(f"clear ({removed:,})", time.perf_counter() - start, False)

    print("\nevery single-entry verb under 1 s" if ok else "\nSOME VERB TOO SLOW")
    return 0 if ok else 1


def _expect_gone(admin: Admin, fid: str) -> None:
    try:
        admin.failures.remove(fid)
    except FailureNotFound:
        return
    raise SystemExit("benchmark broken: a removed entry was found")


if __name__ == "__main__":
    sys.exit(main())
