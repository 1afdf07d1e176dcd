"""Replies of the suite's Redis clients, narrowed to what they are.

The clients here never set ``decode_responses``, so every reply is bytes; redis-py types
them as ``bytes | str``. These say so, and check it on the way.
"""

from __future__ import annotations

from collections.abc import Iterable


def as_bytes(reply: object) -> bytes:
    assert isinstance(reply, bytes), f"a bytes reply, not {reply!r}"
    return reply


def as_text(reply: object) -> str:
    """A reply decoded as UTF-8."""
    return as_bytes(reply).decode()


def bytes_list(replies: Iterable[object]) -> list[bytes]:
    return [as_bytes(reply) for reply in replies]


def texts(replies: Iterable[object]) -> list[str]:
    return [as_text(reply) for reply in replies]
