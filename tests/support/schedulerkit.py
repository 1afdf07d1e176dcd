"""Helpers for the scheduler tests: the golden capture, Redis dumps, scheduler subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import redis

from support.replies import as_text, texts

GOLDEN = "resque-scheduler-5.0-layout.json"


def golden(golden_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((golden_dir / GOLDEN).read_text(encoding="utf-8"))
    return data


def phase(golden_dir: Path, name: str) -> dict[str, Any]:
    for entry in golden(golden_dir)["phases"]:
        if entry["phase"] == name:
            return dict(entry["keys"])
    raise AssertionError(f"no phase {name!r} in {GOLDEN}")


def dump(r: redis.Redis, pattern: str = "*") -> dict[str, dict[str, Any]]:
    """Every key as the golden file shows it: type, TTL and raw value(s) as text."""
    found: dict[str, dict[str, Any]] = {}
    for raw_key in r.keys(pattern):
        key = as_text(raw_key)
        kind = as_text(r.type(raw_key))
        value: Any
        if kind == "string":
            value = as_text(r.get(raw_key))
        elif kind == "list":
            value = texts(r.lrange(raw_key, 0, -1))
        elif kind == "set":
            value = sorted(texts(r.smembers(raw_key)))
        elif kind == "hash":
            value = {as_text(k): as_text(v) for k, v in sorted(r.hgetall(raw_key).items())}
        elif kind == "zset":
            pairs = cast(list[tuple[bytes, float]], r.zrange(raw_key, 0, -1, withscores=True))
            value = [[as_text(m), s] for m, s in pairs]
        else:
            raise AssertionError(f"unexpected type {kind} for {key}")
        found[key] = {"type": kind, "ttl": r.ttl(raw_key), "value": value}
    return found


def restore(r: redis.Redis, keys: dict[str, Any]) -> None:
    """Write a golden phase's keys back into Redis, byte for byte."""
    for key, entry in keys.items():
        kind, value = entry["type"], entry["value"]
        if kind == "string":
            r.set(key, value)
        elif kind == "list":
            r.rpush(key, *value)
        elif kind == "set":
            r.sadd(key, *value)
        elif kind == "hash":
            r.hset(key, mapping=value)
        elif kind == "zset":
            r.zadd(key, {member: score for member, score in value})
        if entry["ttl"] > 0:
            r.expire(key, entry["ttl"])


def wait_for(check: Callable[[], Any], timeout: float = 10.0, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {check}")
        time.sleep(step)


CORE_INSTALL = str(Path(__file__).resolve().parent / "core_install.py")


class SchedulerProcess:
    """``python -m resque scheduler ...`` as a real subprocess, its log in a file;
    ``core=True`` runs it as on the core install (no croniter, no PyYAML)."""

    def __init__(
        self, redis_url: str, log_path: Path, *args: str, env: dict[str, str] | None = None,
        core: bool = False,
    ) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # closed in stop()
        entry = [CORE_INSTALL] if core else ["-m", "resque"]
        command = [sys.executable, *entry, "scheduler", "--redis", redis_url, *args]
        self.proc = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    def wait(self, timeout: float = 10.0) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()

