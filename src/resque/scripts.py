"""The Lua scripts that make each multi-key step atomic, one file each in ``resque/lua/``.

Each file starts with a header: what the script does, its KEYS, its ARGV, what it returns, and
why it is atomic (and what it refuses, before writing anything). A script that needs another's
code names it: ``compose("push", "act")`` puts ``push.lua`` (which defines local functions)
before ``act.lua``, so shared code is written once and composed, never pasted.
"""

from __future__ import annotations

import functools
from importlib import resources


@functools.cache
def source(name: str) -> str:
    """The text of ``resque/lua/<name>.lua``."""
    return (resources.files("resque") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


@functools.cache
def compose(*names: str) -> str:
    """Several script files as one script, in the order given (libraries first)."""
    return "\n".join(source(name) for name in names)
