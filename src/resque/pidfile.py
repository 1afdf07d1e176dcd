"""The ``--pidfile`` of a worker, a scheduler and a pool.

Written only once the process handles its signals: a supervisor that signals as soon as it
reads the pid would otherwise meet the default action, which kills. Removed on the way out.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def held(path: str | None) -> Iterator[None]:
    """Hold ``path`` with this process's pid for the block (nothing when ``path`` is None)."""
    if not path:
        yield
        return
    with open(path, "w") as handle:
        handle.write(str(os.getpid()))
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
