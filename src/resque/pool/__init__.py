"""Several supervised worker processes from one config, like resque-pool.

* ``config``     — the config: queue lists and counts, from YAML, JSON or ``-w`` specs.
* ``supervisor`` — ``Pool``: one worker process per slot, restarted per ``RestartPolicy``,
  signals passed on, the config reloaded on HUP.
* ``cli``        — the ``resque pool`` verb (the library never imports it).
"""

from __future__ import annotations

from resque.pool.config import (
    Config,
    PoolConfigError,
    find_config,
    load_config,
    multiply,
    parse_config,
    parse_inline,
)
from resque.pool.supervisor import Pool, RestartPolicy, Slot

__all__ = [
    "Config",
    "Pool",
    "PoolConfigError",
    "RestartPolicy",
    "Slot",
    "find_config",
    "load_config",
    "multiply",
    "parse_config",
    "parse_inline",
]
