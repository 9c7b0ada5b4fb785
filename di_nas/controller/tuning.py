"""ReinforceOracle inside a plain Keras Tuner `Tuner`: finished trials teach the policy.

Each trial a `kt.Tuner` ends (the user's own `HyperModel` and `run_trial`) is a sample of the
policy with a reward, its score (negated when the objective is minimised). Every `aggregate`
such trials the policy takes one REINFORCE step on them (`ReinforceTrainer.learn`, the step the
search's controller rounds take), and later trials are drawn from the updated policy.
Trials the search's own rounds record (`record_round`) are not fed back: the round has learned
from them already. Pending trials of an unfinished aggregate are not checkpointed.

`oracle.reinforce_oracle(...)` builds one for a user: a space by name, controller options as the
`controller_*` flags name them, any Keras Tuner objective.

Imports Keras Tuner, TensorFlow and the controller's own modules only: no weights, no loop.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from keras_tuner.src.engine import trial as trial_module

ROUND_METRIC = "reward_mean"  # written by record_round only: marks the search's own trials


class TrialFeedback:
    """The finished tuner trials waiting for the next policy step."""

    def __init__(self):
        self.archs: list[list[int]] = []
        self.rewards: list[float] = []

    def observe(self, oracle, trial) -> dict[str, float] | None:
        """Queues a finished trial; steps the policy when `aggregate` are queued.

        Returns:
          The step's scalars when the policy stepped, else None.
        """
        if (trial.status != trial_module.TrialStatus.COMPLETED or trial.score is None
                or trial.metrics.exists(ROUND_METRIC)):
            return None
        direction = getattr(oracle.objective, "direction", "max")
        reward = float(trial.score) if direction == "max" else -float(trial.score)
        self.archs.append(list(oracle.space.from_hp_values(trial.hyperparameters.values).values))
        self.rewards.append(reward)
        if len(self.archs) < oracle.trainer.aggregate:
            return None
        archs = tf.constant(np.asarray(self.archs, np.int32))
        rewards = tf.constant(np.asarray(self.rewards, np.float32))
        self.archs, self.rewards = [], []
        metrics = oracle._learn(archs, rewards)  # pylint: disable=protected-access
        return {k: float(v) for k, v in metrics.items() if k != "best_arch"}
