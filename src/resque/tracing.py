"""Where a tracer (``resque.contrib.otel``) hooks in: ``tracer`` is None unless one is
installed, so an untraced enqueue or job pays one global lookup and imports nothing.

Three places ask: the clients' enqueue (``Client.submit``, the delayed enqueue,
``resque.aio``) open ``sending`` around the push, which may add the span's context to the
payload (``layout.with_trace``); ``current.execute``, which every way of performing a job goes
through (``current.execute_awaited`` for the ``async def`` jobs a ``-c N`` worker awaits on its
loop), opens ``performing`` around the job; a forked child calls ``flush`` before it
leaves with ``os._exit``, which skips every exit handler. This module imports nothing: the fork
server's children load it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from resque.client import Prepared


class Tracer(Protocol):
    def sending(self, prepared: Prepared, client: Any) -> AbstractContextManager[None]:
        """Around one enqueue (a producer span); may rewrite ``prepared.payload``."""

    def performing(self, payload: dict[str, Any], queue: str,
                   worker: object) -> AbstractContextManager[None]:
        """Around one job (a consumer span); raises what the job raised."""

    def flush(self) -> None:
        """A forked child is about to exit: send what is buffered now."""


tracer: Tracer | None = None
"""The installed tracer (``resque.contrib.otel.instrument()``), or None."""
