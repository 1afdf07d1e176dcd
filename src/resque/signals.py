"""Signals, as a few intents of the worker: the handlers only translate, the worker acts.

TERM, INT  STOP        take no more jobs; the running job gets ``term_timeout`` to end, then
                       is killed (a child) or interrupted (in process) and requeued; a second
                       one: at once. ``TERM_CHILD`` sends the child TERM first, then KILL;
                       ``GRACEFUL_TERM`` makes TERM a QUIT.
QUIT       FINISH      finish the running job, then exit.
USR1       KILL_CHILD  kill the running job's child (a DirtyExit), keep working.
USR2       PAUSE       take no more jobs until CONT.
CONT       RESUME      take jobs again.
ALRM       TIME_UP     the grace period of a stop is over (the worker set that timer).
"""

from __future__ import annotations

import enum
import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

log = logging.getLogger("resque.worker")


class Intent(enum.Enum):
    STOP = "stopping: no new jobs; the running job gets the grace period, then goes back to " \
           "its queue"
    FINISH = "finishing the running job(s), then exiting"
    KILL_CHILD = "killing the running job's child"
    PAUSE = "pausing: no new jobs until CONT; the running job goes on"
    RESUME = "resuming: taking jobs again"
    TIME_UP = "the grace period is over"


INTENTS = {
    signal.SIGTERM: Intent.STOP,
    signal.SIGINT: Intent.STOP,
    signal.SIGQUIT: Intent.FINISH,
    signal.SIGUSR1: Intent.KILL_CHILD,
    signal.SIGUSR2: Intent.PAUSE,
    signal.SIGCONT: Intent.RESUME,
    signal.SIGALRM: Intent.TIME_UP,
}


def intent_of(signum: int, graceful_term: bool = False) -> Intent:
    if signum == signal.SIGTERM and graceful_term:
        return Intent.FINISH
    return INTENTS[signal.Signals(signum)]


class SignalHandlers:
    """The worker's handlers, installed over the process's own and given back at exit."""

    def __init__(self, graceful_term: bool = False) -> None:
        self.graceful_term = graceful_term
        self._previous: dict[int, Any] = {}
        self._previous_fd: int | None = None

    def install(self, act: Callable[[Intent], None], wakeup_fd: int,
                explain: Callable[[Intent], str] = lambda intent: intent.value) -> None:
        """Send every worker signal to ``act`` as an intent, and a byte to ``wakeup_fd`` (so
        a waiting worker wakes at once); log what it does (``explain``) first, since acting
        may interrupt a job. Main thread only, as Python's signals are."""

        def handle(signum: int, frame: FrameType | None) -> None:
            intent = intent_of(signum, self.graceful_term)
            if intent is not Intent.TIME_UP:
                log.info("%s: %s", signal.Signals(signum).name, explain(intent))
            act(intent)

        # An embedding application (an asyncio loop, say) may have its own wake-up fd.
        self._previous_fd = signal.set_wakeup_fd(wakeup_fd, warn_on_full_buffer=False)
        self._previous = {signum: signal.signal(signum, handle) for signum in INTENTS}

    def restore(self) -> None:
        if self._previous_fd is None:
            return
        signal.set_wakeup_fd(self._previous_fd)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous, self._previous_fd = {}, None
