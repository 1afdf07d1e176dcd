"""The workloads as dramatiq actors, on ``BENCH_REDIS`` (``dramatiq dramatiq_app``); the
``async def`` ones through dramatiq's AsyncIO middleware, as its docs set them up."""

from __future__ import annotations

import os

import dramatiq
import jobs
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware.asyncio import AsyncIO

broker = RedisBroker(url=os.environ["BENCH_REDIS"])
broker.add_middleware(AsyncIO())
dramatiq.set_broker(broker)

actors = {name: dramatiq.actor(actor_name=f"load_{name}", queue_name="bench",
                               max_retries=0)(function)
          for name, function in jobs.KINDS.items()}
