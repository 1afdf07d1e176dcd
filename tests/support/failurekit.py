"""Failure records as Ruby, Perl and we write them, taken from the golden captures.

Shared by test_failure.py, test_admin.py and test_admin_cli.py.
"""

from __future__ import annotations

import calendar
import json
import time
from pathlib import Path
from typing import Any

import redis

from resque import layout
from support.peers import require_ruby_resque
from support.replies import bytes_list

RUBY_FILE = "ruby-resque-3.0-layout.json"
PERL_FILE = "perl-resque-layout.json"


def _load(golden_dir: Path, name: str) -> Any:
    return json.loads((golden_dir / name).read_text(encoding="utf-8"))


def ruby_phase_list(golden_dir: Path, phase: str, key: str) -> list[str]:
    for entry in _load(golden_dir, RUBY_FILE)["phases"]:
        if entry["phase"] == phase:
            return list(entry["keys"][key]["value"])
    raise AssertionError(f"no phase {phase!r} in {RUBY_FILE}")


def ruby_phase_keys(golden_dir: Path, phase: str) -> dict[str, Any]:
    for entry in _load(golden_dir, RUBY_FILE)["phases"]:
        if entry["phase"] == phase:
            return dict(entry["keys"])
    raise AssertionError(f"no phase {phase!r} in {RUBY_FILE}")


def ruby_record(golden_dir: Path) -> str:
    """Ruby's failure of ``Fail`` from queue ``low`` (phase ``finished``)."""
    return ruby_phase_list(golden_dir, "finished", "resque:failed")[0]


def ruby_retried_record(golden_dir: Path) -> str:
    """The same record after Ruby's requeue (phase ``retried``)."""
    return ruby_phase_list(golden_dir, "retried", "resque:failed")[0]


def perl_records(golden_dir: Path) -> list[str]:
    """Every Perl failure record in the captures: random key order, ``backtrace`` null."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                if name == "resque:failed" and isinstance(value, dict):
                    found.extend(v for v in value["value"] if v not in found)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(_load(golden_dir, PERL_FILE)["scenarios"])
    return found


def perl_null_backtrace_record(golden_dir: Path) -> str:
    return next(r for r in perl_records(golden_dir) if '"backtrace":null' in r)


# Perl's requeue appends retried_at without a zone and re-encodes in its own key order.
PERL_RETRIED = (
    '{"retried_at":"2026/11/27 23:50:01","queue":"low","backtrace":[],"error":"boom at pr.pl '
    'line 82.","exception":"Resque::Failure::Job","worker":"vm:4429:high,low","payload":'
    '{"args":["x"],"class":"Fail"},"failed_at":"2026/11/27 23:49:13 UTC"}'
)


def our_record(class_name: str = "Ours", args: list[Any] | None = None, queue: str = "py",
               error: str = "boom") -> str:
    return layout.failure_record(
        payload={"class": class_name, "args": args if args is not None else [1]},
        exception="ValueError", error=error, backtrace=['  File "app.py", line 3, in run'],
        worker="host:42:py", queue=queue, now=1_795_823_000,
    )


MALFORMED = [
    b"not json at all",
    b"",  # what Ruby's LSET "" leaves if its LREM never ran
    b"[1,2]",
    b"{}",
    b'{"payload":"x","failed_at":"2026/11/27 23:46:22 UTC","queue":"low","worker":"w"}',
    b'{"payload":{"class":"NoTime","args":[]},"queue":"low","worker":"w"}',
]


def utc_epoch(text: str) -> float:
    """Epoch seconds of ``2026/11/27 23:46:25`` read as UTC."""
    return float(calendar.timegm(time.strptime(text, "%Y/%m/%d %H:%M:%S")))


def failed(r: redis.Redis, list_name: str = "failed") -> list[bytes]:
    return bytes_list(r.lrange(f"resque:{list_name}", 0, -1))


# Ruby's side of tests/test_admin.py's Ruby specs: fail a job with a real worker, read the
# failures back as Failure.all and resque-web (DateTime.parse) do, requeue/remove by index.
RUBY_SCRIPT = r"""
require "json"
require "date"
require "resque"
Resque.redis = ARGV.shift
class Flaky
  @queue = :low
  def self.perform(*args)
    raise "boom #{args.inspect}"
  end
end
case ARGV.shift
when "fail"
  ARGV.each { |arg| Resque.enqueue(Flaky, arg.to_i) }
  Resque::Worker.new("low").work(0)
when "read"
  all = Resque::Failure.all(0, Resque::Failure.count)
  all = [all] if all.is_a?(Hash)
  puts JSON.generate((all || []).map { |job|
    {"args" => job["payload"]["args"], "failed_at" => DateTime.parse(job["failed_at"]).to_s,
     "retried_at" => job["retried_at"] && DateTime.parse(job["retried_at"]).to_s,
     "worker_host" => job["worker"].split(":").first, "backtrace" => job["backtrace"].join}
  })
when "remove"
  Resque::Failure.remove(ARGV.first.to_i)
end
"""


def ruby_resque_lib() -> str:
    """Ruby resque's ``lib`` from the real peers; skips the test where they are absent."""
    return require_ruby_resque()
