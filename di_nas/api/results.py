"""What ``di_nas.search`` and ``di_nas.train`` return: small, printable result objects.

May import the search space and training packages; never ``di_nas.cli``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from di_nas.config import Config


@dataclasses.dataclass
class SearchResult:
    """A finished search.

    Attributes:
      best_architecture: the best candidate (a ``di_nas.search_space.Architecture``).
      candidates: ``[(architecture, search-valid accuracy)]``, best first.
      output_dir: where the search wrote its files (``best_architecture.json``, ...).
      config: the ``Config`` the search ran with.
    """

    best_architecture: Any
    candidates: list[tuple[Any, float]]
    output_dir: str
    config: Config = dataclasses.field(repr=False)

    def summary(self, top: int = 10) -> str:
        """A short text table of the best ``top`` candidates."""
        di = "on" if self.config.di.enabled else "off"
        lines = [f"search in {self.output_dir}: {len(self.candidates)} candidates "
                 f"(space {self.config.space.name}, DI {di})",
                 f"{'rank':>4}  {'accuracy':>8}  architecture"]
        for i, (arch, accuracy) in enumerate(self.candidates[:top]):
            lines.append(f"{i + 1:>4}  {accuracy:>8.4f}  {arch}")
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle):  # IPython / Jupyter
        del cycle
        printer.text(self.summary())

    def build_model(self):
        """The stand-alone Keras network of the best architecture at the final depth and width
        (``final_layers``, ``final_filters``), untrained; input: normalised images."""
        from di_nas.api import models

        return models.model_spec(self.best_architecture, self.config).build()


@dataclasses.dataclass
class TrainResult:
    """A finished final training.

    Attributes:
      model: the trained ``keras.Model`` (input: normalised images; ``di_nas.export`` writes
        a SavedModel that takes raw 0..255 pixels).
      test_accuracy: accuracy on the test split.
      output_dir: where ``metrics.json`` and the checkpoints are.
      metrics: everything ``metrics.json`` holds.
    """

    model: Any = dataclasses.field(repr=False)
    test_accuracy: float
    output_dir: str
    metrics: dict = dataclasses.field(default_factory=dict, repr=False)
