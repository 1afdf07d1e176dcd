"""Logging set-up for the processes the ``resque`` command starts (worker, scheduler, pool,
dashboard, admin verbs). Library code only logs to named ``resque.<area>`` loggers; an
application that embeds it configures logging itself and never calls this.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

FORMAT = "%(asctime)s %(name)s[%(process)d] %(levelname)s: %(message)s"


def verbosity_from_env(environ: Mapping[str, str] | None = None) -> int:
    """Ruby's ``VVERBOSE`` (2, debug), ``VERBOSE`` or ``LOGGING`` (1, info), else 0."""
    env = os.environ if environ is None else environ
    if env.get("VVERBOSE"):
        return 2
    if env.get("VERBOSE") or env.get("LOGGING"):
        return 1
    return 0


def setup_logging(verbosity: int) -> None:
    """Configure the ``resque`` logger only (never the application's root logger):
    0 warnings, 1 info, 2 debug; the environment can raise it, never lower it."""
    verbosity = max(verbosity, verbosity_from_env())
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logger = logging.getLogger("resque")
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        logger.addHandler(handler)
