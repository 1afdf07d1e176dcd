"""An application module for the security tests: allowed as a job prefix, and importing
things a payload must never reach through it (``os``, ``subprocess``, a re-exported
``Popen``, ``eval`` in its namespace)."""

from __future__ import annotations

# The point of these imports: reachable as securityapp.os (and so on), must not be.
import os
import os.path  # noqa: F401
import subprocess  # noqa: F401
from subprocess import Popen  # noqa: F401

import resque

CALLS: list[tuple[str, tuple[object, ...]]] = []
evaluate = eval  # a builtin bound to a module name


class Archive:
    """A job the application allows by prefix (not registered)."""

    @staticmethod
    def perform(*args: object) -> None:
        CALLS.append(("Archive", args))


def task(*args: object) -> None:
    CALLS.append(("task", args))


@resque.job(name="Registered")
def registered(*args: object) -> None:
    CALLS.append(("Registered", args))
