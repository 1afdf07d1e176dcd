"""The worker benchmark's samples, targets and table (bench/worker.py measures, this judges).

Each scenario's rows are built by one function from the samples a run noted; a target
missed is counted, so the benchmark's exit status says whether every target was met.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

TARGET_INPROC = 20_000
TARGET_INPROC_X = 10.0
TARGET_FORK = 1_000
TARGET_FORK_X = 20.0
TARGET_REDIS_US = 30.0
TARGET_P50_MS = 0.5
TARGET_P99_MS = 2.0
TARGET_ENQ_RATIO = 0.80
TARGET_BULK = 200_000
TARGET_RSS_MB = 25.0
SCALING = (1, 2, 4, 8)
FLAT = 1.25  # "Redis CPU per job stays flat": every process count within 25% of the lowest
NOISE = 0.95  # "never falls": each process count at least 95% of the one before (run noise)


@dataclass
class Throughput:
    rate: float  # jobs/s, first job start to last job end
    redis_us: float  # redis-server CPU per job, microseconds
    jobs: int


@dataclass
class Enqueue:
    raw: float
    single: float
    bulk: float
    rq_single: float
    rq_bulk: float


@dataclass
class Samples:
    """Every figure a run measured, by name ("resque fork", "RQ latency inproc", ...), in
    the order measured; and the modules our idle worker had imported."""

    by_name: dict[str, list[Any]] = field(default_factory=dict)
    modules: list[str] = field(default_factory=list)

    def note(self, name: str, value: Any) -> None:
        """Keep a sample and show it on stderr as it comes."""
        self.by_name.setdefault(name, []).append(value)
        print(f"  {name}: {shown(value)}", file=sys.stderr, flush=True)

    def get(self, name: str) -> list[Any]:
        return self.by_name.get(name, [])

    def rates(self, name: str) -> list[float]:
        return [s.rate for s in self.get(name)]

    def cpus(self, name: str) -> list[float]:
        return [s.redis_us for s in self.get(name)]


def shown(value: Any) -> str:
    if isinstance(value, Throughput):
        return (f"{value.rate:,.0f} jobs/s, Redis {value.redis_us:.1f} us/job "
                f"({value.jobs:,} jobs)")
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], float):
        return f"{value[0]:.2f} / {value[1]:.2f}"
    return f"{value:,.2f}" if isinstance(value, float) else str(value)


# --- the table ------------------------------------------------------------------------------


def fmt(value: float, unit: str) -> str:
    if unit in ("jobs/s",):
        return f"{value:,.0f}"
    if unit == "x":
        return f"{value:.2f}"
    return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"


def spread(values: Sequence[float], unit: str) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt(med, unit)
    return f"{fmt(med, unit)} [{fmt(min(values), unit)}-{fmt(max(values), unit)}]"


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str, str]] = []
        self.misses = 0

    def add(self, measure: str, ours: Sequence[float], rq: Sequence[float], unit: str,
            higher_is_better: bool, targets: Sequence[tuple[str, bool]] = ()) -> None:
        ratio = "-"
        if ours and rq:
            a, b = statistics.median(ours), statistics.median(rq)
            better = a / b if higher_is_better else b / a
            ratio = f"{better:.1f}x"
        target = "; ".join(text for text, _ in targets)
        verdict = " ".join("PASS" if ok else "MISS" for _, ok in targets)
        self.misses += sum(not ok for _, ok in targets)
        self.rows.append((measure, spread(ours, unit), spread(rq, unit), ratio, target, verdict))

    def markdown(self) -> str:
        head = ("measure", "ours: median [min-max]", "RQ: median [min-max]", "vs RQ",
                "target", "result")
        rows = [head, ("---",) * len(head), *self.rows]
        return "\n".join("| " + " | ".join(cell.replace("|", "\\|") or " " for cell in row)
                         + " |" for row in rows)

    def print(self) -> None:
        head = ("measure", "ours: median [min-max]", "RQ: median [min-max]", "vs RQ",
                "target", "result")
        widths = [max(len(row[i]) for row in [head, *self.rows]) for i in range(6)]
        line = "  ".join(f"{{:<{w}}}" for w in widths)
        print(line.format(*head))
        print("  ".join("-" * w for w in widths))
        for row in self.rows:
            print(line.format(*row).rstrip())


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- one function per scenario: its rows and targets ----------------------------------------


def inproc_rows(table: Table, samples: Samples) -> None:
    ours, rq = samples.rates("resque inproc x1"), samples.rates("RQ inproc x1")
    table.add("1 in-process jobs/s", ours, rq, "jobs/s", True, [
        (f">= {TARGET_INPROC:,}", median(ours) >= TARGET_INPROC),
        (f">= {TARGET_INPROC_X:.0f}x RQ", median(ours) >= TARGET_INPROC_X * median(rq)),
    ])


def fork_rows(table: Table, samples: Samples) -> None:
    ours, rq = samples.rates("resque fork"), samples.rates("RQ fork")
    table.add("2 fork-per-job jobs/s", ours, rq, "jobs/s", True, [
        (f">= {TARGET_FORK:,}", median(ours) >= TARGET_FORK),
        (f">= {TARGET_FORK_X:.0f}x RQ", median(ours) >= TARGET_FORK_X * median(rq)),
    ])


def redis_cpu_rows(table: Table, samples: Samples) -> None:
    for label, name in (("in-process", "inproc x1"), ("fork", "fork")):
        ours = samples.cpus(f"resque {name}")
        table.add(f"3 Redis CPU us/job, {label}", ours, samples.cpus(f"RQ {name}"), "us", False,
                  [(f"<= {TARGET_REDIS_US:.0f} us", median(ours) <= TARGET_REDIS_US)])


def latency_rows(table: Table, samples: Samples) -> None:
    for mode in ("inproc", "fork"):
        got = samples.get(f"resque latency {mode}")
        theirs = samples.get(f"RQ latency {mode}")
        if not got:
            continue
        label = "in-process" if mode == "inproc" else "fork (info)"
        p50, p99 = [g[0] for g in got], [g[1] for g in got]
        checks = mode == "inproc"
        table.add(f"4 latency p50 ms, {label}", p50, [t[0] for t in theirs], "ms", False,
                  [(f"<= {TARGET_P50_MS}", median(p50) <= TARGET_P50_MS)] if checks else [])
        table.add(f"4 latency p99 ms, {label}", p99, [t[1] for t in theirs], "ms", False,
                  [(f"<= {TARGET_P99_MS}", median(p99) <= TARGET_P99_MS)] if checks else [])


def enqueue_rows(table: Table, samples: Samples) -> None:
    runs: list[Enqueue] = samples.get("enqueue")
    table.add("5 raw RPUSH loop jobs/s", [e.raw for e in runs], [], "jobs/s", True)
    table.add("5 enqueue, 1 per call jobs/s", [e.single for e in runs],
              [e.rq_single for e in runs], "jobs/s", True)
    ratios = [e.single / e.raw for e in runs]
    table.add("5 enqueue / raw RPUSH", ratios, [], "x", True,
              [(f">= {TARGET_ENQ_RATIO:.2f}", median(ratios) >= TARGET_ENQ_RATIO)])
    bulk = [e.bulk for e in runs]
    table.add("5 bulk enqueue_many jobs/s", bulk, [e.rq_bulk for e in runs], "jobs/s", True,
              [(f">= {TARGET_BULK:,}", median(bulk) >= TARGET_BULK)])


def rss_rows(table: Table, samples: Samples) -> None:
    ours = samples.get("resque rss")
    table.add("6 idle worker peak RSS MB", ours, samples.get("RQ rss"), "MB", False,
              [(f"<= {TARGET_RSS_MB:.0f} MB", median(ours) <= TARGET_RSS_MB)])
    heavy = [m for m in samples.modules if m.split(".")[:2] in (["resque", "web"],
                                                                ["resque", "scheduler"])]
    table.add("6 imports resque.web/.scheduler", [float(len(heavy))], [], "n", False,
              [("none", not heavy)])


def scaling_rows(table: Table, samples: Samples) -> None:
    previous = 0.0
    ours_cpu: list[float] = []
    for count in SCALING:
        ours = samples.rates(f"resque inproc x{count}")
        falls = [(f"never falls (>= {NOISE:.2f}x previous)", median(ours) >= NOISE * previous)
                 ] if previous else []
        table.add(f"7 {count} process(es) jobs/s", ours, samples.rates(f"RQ inproc x{count}"),
                  "jobs/s", True, falls)
        previous = median(ours)
        ours_cpu.append(median(samples.cpus(f"resque inproc x{count}")))
    for count in SCALING:
        table.add(f"7 {count} process(es) Redis us/job", samples.cpus(f"resque inproc x{count}"),
                  samples.cpus(f"RQ inproc x{count}"), "us", False)
    flat = max(ours_cpu) <= FLAT * min(ours_cpu)
    table.add("7 Redis us/job max/min over 1-8", [max(ours_cpu) / min(ours_cpu)], [], "x",
              False, [(f"<= {FLAT:.2f} (flat)", flat)])


ROWS: dict[int, Callable[[Table, Samples], None]] = {
    1: inproc_rows, 2: fork_rows, 3: redis_cpu_rows, 4: latency_rows, 5: enqueue_rows,
    6: rss_rows, 7: scaling_rows,
}


def judge(samples: Samples, only: set[int]) -> Table:
    """The table of the scenarios run, in scenario order."""
    table = Table()
    for number, rows in ROWS.items():
        if number in only:
            rows(table, samples)
    return table
