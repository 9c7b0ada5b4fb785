"""di-nas's REINFORCE controller inside a plain Keras Tuner `Tuner`, with your own objective.

Every finished trial's score is a reward; the policy takes a REINFORCE step after every
`aggregate` trials. The toy objective here (the fraction of an nb201 cell's edges that carry
op 1) stands in for your own `run_trial` or `HyperModel`; random search with the same budget
is the yardstick. Prints one JSON line with both best scores.

    python examples/tuner_reinforce.py [--trials=100] [--seed=1]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_tuner as kt  # noqa: E402
import numpy as np  # noqa: E402

import di_nas  # noqa: E402
from di_nas.search_space import get_space  # noqa: E402

SPACE = get_space("nb201")


class ToyTuner(kt.Tuner):
    """A tuner whose trial score is computed from the architecture alone."""

    def run_trial(self, trial, *args, **kwargs):
        values = SPACE.from_hp_values(trial.hyperparameters.values).values
        return float(np.mean(np.asarray(values) == 1))


def best_score(oracle) -> float:
    ToyTuner(oracle=oracle, directory=tempfile.mkdtemp(), project_name="toy").search(verbose=0)
    return float(oracle.get_best_trials(1)[0].score)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    objective = kt.Objective("reward", "max")
    oracle = di_nas.reinforce_oracle(
        SPACE, objective=objective, max_trials=args.trials, seed=args.seed, aggregate=4,
        learning_rate=0.2, lstm_units=16, baseline_decay=0.5, temperature=1.0, op_prior=False)
    random = kt.oracles.RandomSearchOracle(objective=objective, max_trials=args.trials,
                                           hyperparameters=SPACE.hyperparameters(),
                                           seed=args.seed)
    print(json.dumps({"reinforce_best": best_score(oracle), "random_best": best_score(random),
                      "policy_steps": int(oracle.trainer.steps.numpy())}))


if __name__ == "__main__":
    main()
