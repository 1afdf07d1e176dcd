"""The workloads as our jobs (``--app ours``), named ``load.<kind>``."""

from __future__ import annotations

import jobs

import resque

for _name, _function in jobs.KINDS.items():
    resque.job(name=f"load.{_name}")(_function)
