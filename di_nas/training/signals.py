"""Graceful stops: SIGTERM and SIGINT set a flag that the training loops poll at safe points.

A job that sees the flag writes a checkpoint where it stands and ends with `KeyboardInterrupt`
(the CLIs print its message as one line and exit with status 130); the same command then
resumes exactly where it stopped. Imports nothing of di_nas.
"""

from __future__ import annotations

import logging
import signal

log = logging.getLogger("di_nas")


class StopFlag:
    """Context manager: while inside, SIGTERM/SIGINT set `raised` instead of killing the job."""

    def __init__(self):
        self.raised = False
        self._previous = {}

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        del frame
        log.warning("signal %d received: checkpointing and stopping", signum)
        self.raised = True

    def safe_point(self, where: str) -> None:
        """Nothing to do: one process stops through `raised` (see `training.preemption`)."""
        del where

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
