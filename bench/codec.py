"""Per-job cost of the payload codec: ``layout.encode_job`` (every enqueue) and
``layout.decode_job`` (every job a worker takes), in nanoseconds per call.

    python bench/codec.py [--repeat K] [--baseline GIT_REV]

No Redis: this isolates the client CPU that the JSON rules (Ruby's float spelling, strict
decoding) add to the hot paths. Each figure is the best of K timing runs, so noise from other
processes on the machine shows up as spread, not as a slower minimum (and the timer counts
this process's CPU time only). ``--baseline`` loads
the payload codec as it was at a git revision (``layout/payloads.py``, or ``layout.py`` before
the package) and times both, interleaved, for a before/after on the same busy machine. Not a
test.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import timeit
import types
from pathlib import Path
from typing import Any

from resque import layout

# name -> (class, args): typical payloads, and the rare shapes that take a slower path.
PAYLOADS: dict[str, tuple[str, list[Any]]] = {
    "small": ("Hello", ["world", 1]),
    "bench": ("Bench::Job", [12345, "user@example.com", {"plan": "pro"}]),
    "floats": ("Report", [0.1, 2.5, 12.0, {"ratio": 0.75}]),
    "prose 1 KB": ("Mail::Send", [{"to": "a@example.com", "body": "Thanks for your order. We "
                                   "will write again when it ships. " * 18}]),
    "hyphens 1 KB": ("Mail::Send", [{"to": "a@example.com", "body": "re-send the e-mail " * 50}]),
    "exponent float": ("Physics", [1e20, 1.5e-7]),
    "surrogate pair": ("Emoji", ["\U0001f600 smile"]),
}


def measure(statement: Any, number: int, repeat: int) -> float:
    """Best CPU time per call, in nanoseconds (CPU time: other processes on a busy machine
    do not count, though they still share its caches)."""
    times = timeit.repeat(statement, number=number, repeat=repeat, timer=time.process_time)
    return min(times) / number * 1e9


def layout_at(revision: str) -> types.ModuleType:
    """The payload codec as committed at a revision, loaded as a separate module: the
    package's ``payloads.py`` (whose imports of other ``resque`` modules are today's), or
    ``layout.py`` at revisions before the package."""
    root = Path(__file__).resolve().parent.parent
    for path in ("src/resque/layout/payloads.py", "src/resque/layout.py"):
        shown = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=root,
                               capture_output=True, text=True)
        if shown.returncode == 0:
            break
    else:
        raise SystemExit(f"no payload codec at {revision}: {shown.stderr.strip()}")
    module = types.ModuleType(f"layout_{revision}")
    sys.modules[module.__name__] = module  # dataclasses and the like look themselves up here
    exec(compile(shown.stdout, f"{revision}:{path}", "exec"), module.__dict__)
    return module


def timings(module: Any, class_name: str, args: list[Any], number: int) -> tuple[float, float]:
    raw = module.encode_job(class_name, args).encode("utf-8")
    return (measure(lambda: module.encode_job(class_name, args), number, 1),
            measure(lambda: module.decode_job(raw, "q"), number, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--baseline", metavar="GIT_REV", help="Also time the payload "
                        "codec at this revision, interleaved.")
    options = parser.parse_args()
    modules: dict[str, Any] = {"now": layout}
    if options.baseline:
        modules = {options.baseline: layout_at(options.baseline), "now": layout}
    header = "".join(f"{'encode ' + name:>16}{'decode ' + name:>16}" for name in modules)
    print(f"{'payload (ns/call)':<18}{'bytes':>6}{header}")
    for name, (class_name, args) in PAYLOADS.items():
        best = {label: [float("inf"), float("inf")] for label in modules}
        for _ in range(options.repeat):  # interleaved, so load on the machine hits both
            for label, module in modules.items():
                encode_ns, decode_ns = timings(module, class_name, args, options.number)
                best[label] = [min(best[label][0], encode_ns), min(best[label][1], decode_ns)]
        size = len(layout.encode_job(class_name, args).encode("utf-8"))
        cells = "".join(f"{enc:>16.0f}{dec:>16.0f}" for enc, dec in best.values())
        print(f"{name:<18}{size:>6}{cells}")


if __name__ == "__main__":
    main()
