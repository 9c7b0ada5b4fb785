"""Benchmark: wall time per trial of the REINFORCE oracle's bookkeeping at a given size.

Measures `create_trial` + `update_trial` + `end_trial` (with compact persistence to disk) over
the last trials of a run, so the figure reflects the cost at that number of trials; the target
is a flat cost (the 20k figure within 1.5x of the 1k one). It must not train anything.
"""

from __future__ import annotations

import time

from di_nas.config import ControllerConfig
from di_nas.controller.oracle import make_oracle
from di_nas.search_space import get_space


def oracle_ms_per_trial(num_trials: int, directory: str, warm: int | None = None,
                        space: str = "enas_micro", seed: int = 0) -> float:
    """Mean milliseconds per trial over the trials after the first `warm` of `num_trials`.

    Args:
      num_trials: trials in the run.
      directory: an empty directory for the oracle's files.
      warm: untimed trials run first; default `num_trials - 500` (time the last 500).
      space: search space name.
      seed: oracle seed.

    Returns:
      Mean wall-clock milliseconds of create_trial + update_trial + end_trial per timed trial.
    """
    if warm is None:
        warm = max(0, num_trials - 500)
    if not 0 <= warm < num_trials:
        raise ValueError(f"warm={warm} must lie in [0, num_trials={num_trials})")
    search_space = get_space(space)
    oracle = make_oracle(ControllerConfig(name="reinforce"), search_space, seed, directory)
    oracle.populate_space("warmup")  # Trace the policy's sampler outside the timing.
    elapsed = 0.0
    for i in range(num_trials):
        start = time.perf_counter()
        trial = oracle.create_trial("bench")
        values = trial.hyperparameters.values
        reward = (sum(values.values()) % 97) / 97.0  # Any cheap, deterministic score.
        oracle.update_trial(trial.trial_id, {"reward": reward})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        if i >= warm:
            elapsed += time.perf_counter() - start
    return 1000.0 * elapsed / (num_trials - warm)
