"""A no-op job in a module that imports nothing but ``resque``: what a forking worker's fork
server costs when the job code is light (bench/fork_breakdown.py; ``benchjobs`` imports
redis-py, as many applications' job modules do)."""

from __future__ import annotations

import resque


@resque.job
def noop(*args: object) -> None:
    """Does nothing."""
