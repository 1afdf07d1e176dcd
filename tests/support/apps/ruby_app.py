"""Jobs the Ruby compatibility tests run in Python workers, under Ruby-style names."""

from __future__ import annotations

import json
import time

import resque


@resque.job(name="Hello", queue="high")
def hello(*args: object) -> None:
    # The tests start workers with RESQUE_REDIS set, so a plain client finds the same Redis.
    resque.Resque().redis.rpush("python-ran", json.dumps(list(args), separators=(",", ":")))


@resque.job(name="Sleepy", queue="slow")
def sleepy(seconds: float) -> None:
    time.sleep(seconds)


@resque.job(name="Broken", queue="high")
def broken(*args: object) -> None:
    raise RuntimeError("broken on purpose")
