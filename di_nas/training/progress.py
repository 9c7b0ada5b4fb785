"""What a training job shows the user: a tqdm bar per epoch and one log line per epoch.

Bars go to stderr and only when it is a terminal (tqdm's own rule), so logs of batch jobs and
tests hold just the per-epoch lines, which go to stdout. Shared by the search and the final
training; this module must not know about models, data or TensorFlow.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping

from tqdm.auto import tqdm  # a widget in Jupyter, a text bar elsewhere


def log(message: str) -> None:
    """Prints one line to stdout without breaking an active progress bar."""
    tqdm.write(message, file=sys.stdout)
    sys.stdout.flush()


def format_seconds(seconds: float) -> str:
    """``75.2`` -> ``1m15s``; ``3725`` -> ``1h02m05s``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _format_value(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class EpochBar:
    """A tqdm bar over the steps of one epoch, with the ETA of the epoch.

    Use as a context manager: ``with EpochBar(epoch, epochs, steps) as bar: bar.update(n, loss=x)``.
    """

    def __init__(self, epoch: int, epochs: int, steps: int, desc: str = "epoch",
                 disable: bool | None = None):
        self._bar = tqdm(total=steps, desc=f"{desc} {epoch}/{epochs}", unit="step",
                         leave=False, dynamic_ncols=True, disable=disable, file=sys.stderr)

    def update(self, steps: int, **postfix: float) -> None:
        """Advances by ``steps`` and shows ``postfix`` values (e.g. the running loss)."""
        if postfix:
            self._bar.set_postfix({k: _format_value(v) for k, v in postfix.items()},
                                  refresh=False)
        self._bar.update(steps)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> EpochBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class JobClock:
    """Times the epochs of a job (resumed ones too) to estimate when it will finish."""

    def __init__(self, epochs: int, done: int = 0):
        self.epochs = epochs
        self.done = done
        self._last = time.monotonic()
        self._durations: list[float] = []

    def epoch_done(self) -> None:
        now = time.monotonic()
        self._durations.append(now - self._last)
        self._last = now
        self.done += 1

    def eta_seconds(self) -> float:
        """Seconds left at the mean pace of this process's epochs after its first one.

        The first epoch of a process also traces the step function, so it is left out (NaN
        until a second epoch has run).
        """
        steady = self._durations[1:]
        if not steady:
            return float("nan")
        return sum(steady) / len(steady) * (self.epochs - self.done)


def epoch_line(epoch: int, epochs: int, metrics: Mapping[str, float], seconds: float,
               eta_seconds: float | None = None) -> str:
    """One line summarising an epoch: ``epoch 3/30 loss=0.41 accuracy=0.88 (4s, ETA 1m52s)``."""
    values = " ".join(f"{k}={_format_value(v)}" for k, v in metrics.items())
    timing = format_seconds(seconds)
    if eta_seconds is not None and eta_seconds == eta_seconds:  # not NaN
        timing += f", ETA {format_seconds(eta_seconds)}"
    return f"epoch {epoch}/{epochs} {values} ({timing})"
