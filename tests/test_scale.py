"""Nothing on a hot path reads a whole list: every dashboard page, admin verb, enqueue and
worker step costs Redis the same commands, and the same bytes, on a farm and on one with twice
the queued jobs, delayed jobs and failures. Counted (``INFO commandstats``, bytes Redis sent),
never timed; ``bench/million.py`` runs the same probes (tests/support/scalekit.py) at a million
jobs and times them.

The bulk verbs (retry-all, clear-retried, a search that matches nothing, counting every
delayed job) act on every entry by design: they must grow, which also shows the counting
sees growth when there is some.
"""

from __future__ import annotations

import redis
from support.scalekit import Cost, Probe, Sizes, cost, fill, pages, verbs
from support.webkit import client

from resque import Resque

SIZES = Sizes(queued=20_000, queues=20, delayed=2_000, per_timestamp=10, failures=2_500,
              workers=40, tracked=2_000)
SLACK = 64  # bytes: a number in a reply may gain a digit when the farm doubles


def measure(r: redis.Redis, resque: Resque, sizes: Sizes) -> list[tuple[Probe, Cost]]:
    """Every probe's cost on a fresh farm of ``sizes`` (scripts loaded anew, as at start)."""
    r.flushall()
    r.script_flush()
    fill(resque, sizes)
    web = client(resque)
    return [(probe, cost(r, probe.run))
            for probe in [*pages(resque, web, sizes), *verbs(resque, sizes)]]


def grows(probe: Probe, small: Cost, big: Cost) -> bool:
    if not probe.exact:  # a SCAN page: other keys, as many of them
        return big.calls > small.calls * 1.1 or big.sent > small.sent * 1.1 + SLACK
    return small.commands != big.commands or big.sent > small.sent * 1.02 + SLACK


def test_no_page_verb_or_step_reads_more_when_the_lists_are_twice_as_long(
    r: redis.Redis, resque: Resque
) -> None:
    small = measure(r, resque, SIZES)
    big = measure(r, resque, SIZES.times(2))
    growing = [(probe.name, probe.bulk, dict(b.commands - a.commands), b.sent - a.sent)
               for (probe, a), (_, b) in zip(small, big, strict=True) if grows(probe, a, b)]
    assert [g for g in growing if not g[1]] == []
    assert [name for name, *_ in growing] == [p.name for p, _ in small if p.bulk]
