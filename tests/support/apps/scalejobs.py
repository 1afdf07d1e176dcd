"""The job of tests/support/scalekit.py's farm, for workers that drain it
(``--app scalejobs``)."""

from __future__ import annotations

import resque


@resque.job(name="Scale::Job")
def scale_job(n: int, email: str, plan: dict[str, str]) -> None:
    """Nothing: the drain measures the queue, not the job."""
