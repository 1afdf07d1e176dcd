"""JSON and text as Ruby resque 3.0 spells them: the codec every other part of the layout uses.

Payloads, records and delayed items are written with Ruby's json gem spelling (floats
included, ``resque.rubyjson``) and read strictly; names read from Redis come back as text
without losing a byte.
"""

from __future__ import annotations

import json
from typing import Any

from resque import rubyjson

# Spelled as Ruby's MultiJson/json gem spells it, floats included (resque.rubyjson).
encode = rubyjson.encode
decode = rubyjson.decode


def canonical(value: Any) -> str:
    """JSON with sorted keys, to compare payloads written in any key order (Perl's)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


# --- Names and items read from Redis, as text -----------------------------------------------


def text(value: str | bytes) -> str:
    """A name read from Redis (queue, worker id) as text; odd bytes survive a round trip."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def raw_text(raw: str | bytes | None) -> str:
    """A queued item as text, for error messages and failure records (never loses bytes)."""
    if raw is None:
        return ""
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="backslashreplace")
    return raw
