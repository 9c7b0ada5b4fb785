"""`DINASTuner`: Keras Tuner's surface over the weight-sharing search.

A Keras Tuner user knows `tuner.search(...)`, `get_best_hyperparameters()`,
`get_best_models()` and `results_summary()`; here one `search` call is one whole di-nas search
(supernet, controller, candidates scored with the shared weights), not one model per trial.
Each candidate is a "trial": its hyperparameters are the space's `kt.HyperParameters` with the
architecture's values, its score the search-valid accuracy under the shared weights.

May import the library packages below ``api``; never ``di_nas.cli``.
"""

from __future__ import annotations

from typing import Any

from di_nas.api import jobs, models
from di_nas.api.results import SearchResult
from di_nas.errors import UserError


class DINASTuner:
    """A weight-sharing architecture search with Keras Tuner's methods.

    Args:
      output_dir: the search's directory (resumable, as ``di-nas-search``'s).
      data: the data, as ``di_nas.search`` takes it (or pass it to ``search``).
      **overrides: flag-named options (``epochs=2``, ``space="nb201"``, ``di=False``).
    """

    def __init__(self, *, output_dir: str, data: Any = None, **overrides: Any):
        self.output_dir, self.data, self.overrides = output_dir, data, dict(overrides)
        self.result: SearchResult | None = None

    def search(self, data: Any = None, **overrides: Any) -> SearchResult:
        """Runs (or resumes) the search; later overrides win over the constructor's."""
        data = self.data if data is None else data
        if data is None:
            raise UserError("DINASTuner.search needs data: pass it here or to the constructor")
        self.result = jobs.search(data, output_dir=self.output_dir,
                                  **{**self.overrides, **overrides})
        return self.result

    def _searched(self) -> SearchResult:
        if self.result is None:
            raise UserError("no search yet: call DINASTuner.search(...) first")
        return self.result

    def get_best_hyperparameters(self, num_trials: int = 1) -> list:
        """The best candidates as `kt.HyperParameters` (the space's, values set)."""
        from di_nas.search_space import get_space

        space = get_space(self._searched().config.space.name)
        out = []
        for arch, _ in self._searched().candidates[:num_trials]:
            hps = space.hyperparameters()
            hps.values.update(arch.hp_values())
            out.append(hps)
        return out

    def get_best_architectures(self, num: int = 1) -> list:
        """The best `num` candidates' `Architecture`s."""
        return [arch for arch, _ in self._searched().candidates[:num]]

    def get_best_models(self, num_models: int = 1) -> list:
        """Stand-alone Keras networks of the best candidates, UNTRAINED: weight sharing keeps
        no per-candidate weights. Train one with ``di_nas.train(architecture, data, ...)``."""
        result = self._searched()
        return [models.model_spec(arch, result.config).build()
                for arch in self.get_best_architectures(num_models)]

    def results_summary(self, num_trials: int = 10) -> None:
        """Prints the best candidates and their search-valid accuracy."""
        print(self._searched().summary(num_trials))
