"""REINFORCE with a moving-average baseline and an entropy bonus, for the controller.

Pure functions (`update_baseline`, `reinforce_loss`), each with an analytic test, and
`ReinforceTrainer`, which runs one controller step (sample `aggregate` architectures, score them
with a TF reward function, one Adam step) entirely in TF so the search can compile it in the
same `tf.function` as the supernet's validation pass. This module must not compute rewards
itself, touch the supernet, or talk to Keras Tuner.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf


def update_baseline(baseline, reward_mean, decay):
    """Exponential moving average: `decay * baseline + (1 - decay) * reward_mean`."""
    return decay * baseline + (1.0 - decay) * reward_mean


def reinforce_loss(log_probs, rewards, baseline, entropies, entropy_weight):
    """The REINFORCE surrogate loss, to be minimised.

    `-mean((R - b) * log_prob) - entropy_weight * mean(entropy)`, where the advantage
    `R - b` is a constant (no gradient flows through the rewards or the baseline).

    Args:
      log_probs: float [N], `log pi(a_i)`, differentiable in the policy weights.
      rewards: float [N], `R(a_i)`.
      baseline: scalar `b`.
      entropies: float [N], the policy's entropy along each sample.
      entropy_weight: scalar weight of the entropy bonus.

    Returns:
      A scalar float32 loss.
    """
    advantage = tf.stop_gradient(tf.cast(rewards, tf.float32) - tf.cast(baseline, tf.float32))
    return (-tf.reduce_mean(advantage * log_probs)
            - entropy_weight * tf.reduce_mean(entropies))


class ReinforceTrainer(tf.Module):
    """Trains a `ControllerPolicy` by REINFORCE; its state is checkpointable.

    Holds the Adam optimizer (ENAS: learning rate 0.0035, beta_1 = 0) and the baseline in a
    `tf.Variable`. Checkpoint it with `tf.train.Checkpoint(controller=trainer)`: this saves the
    policy weights, its sampling generator, the optimizer slots and the baseline.

    Args:
      policy: the `ControllerPolicy` to train.
      learning_rate: Adam learning rate.
      baseline_decay: decay of the moving-average baseline.
      entropy_weight: weight of the entropy bonus in the loss.
      aggregate: samples per controller step (ENAS aggregates 10).
    """

    def __init__(self, policy, learning_rate: float = 0.0035, baseline_decay: float = 0.99,
                 entropy_weight: float = 1e-4, aggregate: int = 10):
        super().__init__(name="reinforce_trainer")
        self.policy = policy
        self.baseline_decay = baseline_decay
        self.entropy_weight = entropy_weight
        self.aggregate = aggregate
        self.optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=0.0)
        # Built eagerly so the first traced step creates no variables.
        self.optimizer.build(policy.trainable_variables)
        self.baseline = tf.Variable(0.0, trainable=False, name="baseline")

    @property
    def steps(self) -> tf.Variable:
        """Controller steps taken so far (the optimizer's iteration counter)."""
        return self.optimizer.iterations

    def train_step(self, reward_fn: Callable[[tf.Tensor], tf.Tensor], seed=None):
        """One controller step, sampling and scoring included; callable inside a `tf.function`.

        Args:
          reward_fn: maps int32 archs [N, D] to float rewards [N] (TF ops only).
          seed: optional int or shape-[2] seed of the sampling; None uses the policy's
            generator.

        Returns:
          What `learn` returns.
        """
        archs, _, _ = self.policy.sample(self.aggregate, seed)
        return self.learn(archs, reward_fn(archs))

    def learn(self, archs, rewards):
        """One Adam step on sampled `archs` (int32 [N, D]) and their `rewards` (float [N]).

        The baseline is updated with this step's mean reward first, then used (as ENAS does).
        Callable inside a `tf.function`.

        Returns:
          A dict of tensors: scalars 'reward_mean', 'baseline', 'entropy', 'loss', 'log_prob'
          (means over the samples), 'best_reward', and 'best_arch' (int32 [D], the sample with
          the highest reward).
        """
        rewards = tf.stop_gradient(tf.cast(rewards, tf.float32))
        reward_mean = tf.reduce_mean(rewards)
        self.baseline.assign(update_baseline(self.baseline, reward_mean, self.baseline_decay))
        variables = self.policy.trainable_variables
        with tf.GradientTape() as tape:
            log_probs, entropies = self.policy.log_prob(archs)
            loss = reinforce_loss(log_probs, rewards, self.baseline, entropies,
                                  self.entropy_weight)
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        best = tf.argmax(rewards, output_type=tf.int32)
        return {
            "reward_mean": reward_mean,
            "baseline": tf.identity(self.baseline),
            "entropy": tf.reduce_mean(entropies),
            "loss": loss,
            "log_prob": tf.reduce_mean(log_probs),
            "best_reward": rewards[best],
            "best_arch": archs[best],
        }
