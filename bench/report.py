"""What every generated table in docs/reports/ says about itself: when, how and on what.

A table is only worth as much as the conditions it was measured in, so each one opens with
the date, the command, the machine (CPU, cores, Python, Redis) and the load average at the
start and the end of the run: on a shared 2-core machine the load moves the figures by tens
of per cent, which is why tables compare frameworks side by side in one run.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import redis


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def redis_server_version(binary: str) -> str:
    done = subprocess.run([binary, "--version"], capture_output=True, text=True)
    for part in done.stdout.split():
        if part.startswith("v="):
            return part[2:]
    return "?"


def load() -> float:
    return os.getloadavg()[0]


class Run:
    """Notes the start of a run; ``page`` writes its table as a Markdown fragment."""

    def __init__(self) -> None:
        self.started = datetime.datetime.now(datetime.timezone.utc)
        self.load_at_start = load()
        self.command = "python " + " ".join(
            [os.path.relpath(sys.argv[0]) if sys.argv[0] else "?", *sys.argv[1:]])

    def facts(self, redis_binary: str, extra: Sequence[tuple[str, str]] = ()
              ) -> list[tuple[str, str]]:
        minutes = (datetime.datetime.now(datetime.timezone.utc) - self.started
                   ).total_seconds() / 60
        return [
            ("date", self.started.strftime("%Y-%m-%d %H:%M UTC")),
            ("command", f"`{self.command}` ({minutes:.1f} min)"),
            ("CPU", f"{cpu_model()}, {os.cpu_count()} cores"),
            ("system", f"{platform.system()} {platform.release()}, load average "
                       f"{self.load_at_start:.1f} at the start, {load():.1f} at the end"),
            ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
            ("Redis", f"redis-server {redis_server_version(redis_binary)}; redis-py "
                      f"{redis.__version__} (hiredis: "
                      f"{'yes' if redis.utils.HIREDIS_AVAILABLE else 'no'})"),
            *extra,
        ]

    def page(self, path: str, redis_binary: str, sections: Sequence[str],
             extra: Sequence[tuple[str, str]] = ()) -> None:
        """Write the facts, then each section (Markdown), to ``path``."""
        facts = self.facts(redis_binary, extra)
        lines = [f"<!-- Written by `{self.command}`; do not edit by hand. -->", "",
                 "| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in facts), ""]
        Path(path).write_text("\n".join(lines) + "\n" + "\n\n".join(sections) + "\n")


def markdown_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    every = [list(head), ["---"] * len(head), *[list(row) for row in rows]]
    return "\n".join("| " + " | ".join(cell.replace("|", "\\|") or " " for cell in row) + " |"
                     for row in every)


def text_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(len(head))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([line.format(*head), "  ".join("-" * w for w in widths),
                      *(line.format(*row).rstrip() for row in rows)])
