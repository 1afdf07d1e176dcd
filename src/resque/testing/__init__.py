"""Testing code that uses resque: a fake client, a clock, and a real client that drains.

``FakeResque`` (fake mode: enqueues recorded, no Redis), ``TestResque`` (a real client with its
own clock and ``drain()``), ``Clock``. The pytest plugin (``resque.testing.plugin``, loaded
automatically) provides them as the fixtures ``resque_fake``, ``resque_client`` and
``resque_clock``. The guide is docs/guides/testing.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from resque.testing.clock import Clock

if TYPE_CHECKING:
    from resque.testing.fake import Enqueued, FakeJob, FakeResque
    from resque.testing.kit import Drained, TestResque

__all__ = ["Clock", "Drained", "Enqueued", "FakeJob", "FakeResque", "TestResque"]

# Loaded when asked for: the plugin imports this package in every pytest run, and these
# bring redis-py (and, for the kit, the facade) with them.
_LAZY = {"Enqueued": "fake", "FakeJob": "fake", "FakeResque": "fake", "Drained": "kit",
         "TestResque": "kit"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'resque.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(f"resque.testing.{module}"), name)
