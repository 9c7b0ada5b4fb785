"""Keras Tuner oracles for the search: REINFORCE (ENAS) and the random / Bayesian baselines.

Every oracle implements the search's protocol, so the search loop names none of them:

- `sample(num, seed=None)`: int32 [num, D] architectures, in-graph, for the shared-weight
  phase (the policy for REINFORCE; uniform for the baselines, i.e. random search with weight
  sharing); a shape-[2] seed samples statelessly;
- `round(reward_fn, seed)`: one controller round; `reward_fn` maps int32 archs [N, D] to
  float rewards [N]; returns host scalars, at least `reward_mean`;
- `candidates(num, seed)`: the architectures the search scores at the end;
- `checkpoint_items()`: the TF state that belongs in the search's `tf.train.Checkpoint`.

Each records finished trials compactly (`persistence.CompactPersistenceMixin`). This module
must not train the supernet or compute rewards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import keras_tuner as kt
import numpy as np
import tensorflow as tf
from keras_tuner.src.engine import objective as objective_module
from keras_tuner.src.engine import trial as trial_module

from di_nas.config import ControllerConfig
from di_nas.controller.persistence import STATE_FILE, TRIALS_FILE, CompactPersistenceMixin  # noqa: F401 (file names: public)
from di_nas.controller.policy import ControllerPolicy
from di_nas.controller.reinforce import ReinforceTrainer
from di_nas.controller.samplers import UniformSampler, uniform_sample
from di_nas.controller.tuning import TrialFeedback
from di_nas.errors import UserError

OBJECTIVE = kt.Objective("reward", "max")


class _BaselineProtocol:
    """The search protocol for Keras Tuner's own oracles: each controller round asks the
    oracle's `populate_space` (random or Bayesian) for `aggregate` trials, one at a time, and
    ends each with its reward; the shared-weight phase samples uniformly (random search with
    weight sharing)."""

    def __init__(self, space, cfg: ControllerConfig, seed: int = 0,
                 max_trials: int | None = None):
        super().__init__(objective=OBJECTIVE, max_trials=max_trials, seed=seed + 1,
                         hyperparameters=space.hyperparameters(), allow_new_entries=False,
                         tune_new_entries=False)
        self.space = space
        self.aggregate = cfg.aggregate
        self.sampler = UniformSampler(space, seed)

    def sample(self, num, seed=None) -> tf.Tensor:
        """int32 [num, D] uniform architectures; usable inside a `tf.function`.

        A shape-[2] `seed` samples statelessly; None advances the checkpointed generator.
        """
        if seed is None:
            return self.sampler.sample(num)
        return uniform_sample(self.space, num, seed)

    def round(self, reward_fn, seed=None, tuner_id: str = "search") -> dict[str, float]:
        """Up to `aggregate` trials, each proposed by the oracle after the previous one ended;
        `seed` is unused (Keras Tuner's oracles keep their own random state)."""
        del seed
        rewards = []
        for _ in range(self.aggregate):
            trial = self.create_trial(tuner_id)
            if trial.status != trial_module.TrialStatus.RUNNING:
                break
            arch = self.space.from_hp_values(trial.hyperparameters.values)
            reward = float(reward_fn(tf.constant([arch.values], tf.int32))[0])
            self.update_trial(trial.trial_id, {"reward": reward})
            trial.status = trial_module.TrialStatus.COMPLETED
            self.end_trial(trial)
            rewards.append(reward)
        return {"reward_mean": float(np.mean(rewards)) if rewards else 0.0}

    def candidates(self, num: int, seed: int) -> list[tuple[int, ...]]:
        """The `num` best trials' architectures, topped up with uniform samples."""
        archs = [self.space.from_hp_values(t.hyperparameters.values).values
                 for t in self.get_best_trials(num)]
        extra = uniform_sample(self.space, max(num - len(archs), 0), [seed, 1]).numpy()
        return [tuple(int(v) for v in a) for a in [*archs, *extra.tolist()]]

    def checkpoint_items(self) -> dict[str, tf.Module]:
        return {"sampler": self.sampler}


class CompactRandomSearchOracle(_BaselineProtocol, CompactPersistenceMixin,
                                kt.oracles.RandomSearchOracle):
    """Keras Tuner random search with compact persistence and uniform in-graph sampling."""


class CompactBayesianOracle(_BaselineProtocol, CompactPersistenceMixin,
                            kt.oracles.BayesianOptimizationOracle):
    """Keras Tuner GP Bayesian optimisation with compact persistence (its GP fit still grows
    with the number of trials) and uniform in-graph sampling."""


class ReinforceOracle(CompactPersistenceMixin, kt.Oracle):
    """ENAS's REINFORCE controller as a Keras Tuner oracle.

    Two ways to use it:
    - the search protocol: `sample(num, seed)` in the shared-weight step (in-graph), `round`
      for one controller step (sample `aggregate` architectures, score them, one REINFORCE
      update), recorded as ONE trial per round (values: the round's best architecture, score:
      its reward, metrics: mean reward, baseline, entropy, ...), and `candidates`;
    - plain Keras Tuner: `create_trial` samples one architecture from the policy
      (`populate_space`), `update_trial` / `end_trial` record its reward. Host-side samples are
      drawn in blocks of `sample_block` and redrawn after each controller step.
    The policy, optimizer, baseline and sampling state go into the search's checkpoint via
    `checkpoint_items()`; `get_state` only carries the small Keras Tuner state.

    Args:
      space: the `SearchSpace`.
      cfg: the `ControllerConfig` (policy shape, REINFORCE settings, `aggregate`).
      seed: seeds the policy weights and its sampling.
      max_trials: stop after this many trials (None: no limit).
      sample_block: architectures drawn per host-side policy call.
    """

    def __init__(self, space, cfg: ControllerConfig, seed: int = 0,
                 max_trials: int | None = None, sample_block: int = 64):
        super().__init__(objective=OBJECTIVE, max_trials=max_trials, seed=seed + 1,
                         hyperparameters=space.hyperparameters(), allow_new_entries=False,
                         tune_new_entries=False)
        self.space = space
        self.policy = ControllerPolicy(
            space, lstm_units=cfg.lstm_units, tanh_constant=cfg.tanh_constant,
            op_tanh_reduce=cfg.op_tanh_reduce, temperature=cfg.temperature,
            op_prior=cfg.op_prior, seed=seed)
        self.trainer = ReinforceTrainer(
            self.policy, learning_rate=cfg.learning_rate, baseline_decay=cfg.baseline_decay,
            entropy_weight=cfg.entropy_weight, aggregate=cfg.aggregate)
        self._sample_block = sample_block
        self._block_fn = tf.function(lambda: self.policy.sample(sample_block)[0])
        self._propose = tf.function(lambda seed: self.sample(self.trainer.aggregate, seed))
        self._learn = tf.function(self.trainer.learn)
        self._block, self._block_step = [], None
        self._pending_values = None
        self._feedback = TrialFeedback()  # plain Keras Tuner use: trials teach the policy

    def sample(self, num, seed=None) -> tf.Tensor:
        """int32 [num, D] architectures from the policy; usable inside a `tf.function`."""
        return self.policy.sample(num, seed)[0]

    def round(self, reward_fn, seed=None, tuner_id: str = "controller") -> dict[str, float]:
        """One controller step: `aggregate` samples (stateless in a shape-[2] `seed`), their
        rewards `reward_fn(archs)` (int32 [N, D] -> float [N]), one REINFORCE update; recorded
        as one trial. Returns the step's scalars (reward_mean, baseline, entropy, ...). Without
        a seed the policy's checkpointed generator samples."""
        archs = self._propose(None if seed is None else tf.convert_to_tensor(seed, tf.int64))
        metrics = self._learn(archs, reward_fn(archs))
        self.record_round(metrics, tuner_id)
        return {k: float(v) for k, v in metrics.items() if k != "best_arch"}

    def candidates(self, num: int, seed: int) -> list[tuple[int, ...]]:
        """`num` architectures sampled from the trained policy."""
        archs = self.sample(num, [seed + 104729, 0]).numpy()
        return [tuple(int(v) for v in a) for a in archs]

    def checkpoint_items(self) -> dict[str, tf.Module]:
        return {"controller": self.trainer}

    def populate_space(self, trial_id):
        if self._pending_values is not None:
            values, self._pending_values = self._pending_values, None
        else:
            step = int(self.trainer.steps.numpy())
            if not self._block or step != self._block_step:  # Stale after a policy update.
                self._block = self._block_fn().numpy().tolist()[::-1]
                self._block_step = step
            values = self.space.architecture(self._block.pop()).hp_values()
        return {"status": trial_module.TrialStatus.RUNNING, "values": values}

    def end_trial(self, trial):
        """Ends a trial; a plain tuner's finished trial is a reward for the policy, which
        steps every `aggregate` of them (`di_nas.controller.tuning`)."""
        super().end_trial(trial)
        self._feedback.observe(self, trial)

    def record_round(self, metrics: Mapping[str, Any], tuner_id: str = "controller"):
        """Records one controller round as one ended trial.

        Args:
          metrics: the dict `ReinforceTrainer.learn` returned (tensors or numbers): 'best_arch' and
            'best_reward' give the trial's values and score; other scalars become metrics.
          tuner_id: Keras Tuner's id of the caller.

        Returns:
          The ended `Trial` (status 'STOPPED' with no values once `max_trials` is reached).
        """
        arch = self.space.architecture(np.asarray(metrics["best_arch"]).tolist())
        self._pending_values = arch.hp_values()
        trial = self.create_trial(tuner_id)
        self._pending_values = None
        if trial.status != trial_module.TrialStatus.RUNNING:
            return trial
        trial.hyperparameters.values = arch.hp_values()  # Also when a retry was handed out.
        scalars = {k: float(np.asarray(v)) for k, v in metrics.items()
                   if k not in ("best_arch", "best_reward") and np.ndim(v) == 0}
        scalars["reward"] = float(np.asarray(metrics["best_reward"]))
        self.update_trial(trial.trial_id, scalars)
        trial.status = trial_module.TrialStatus.COMPLETED
        self.end_trial(trial)
        return trial


ORACLES = {"reinforce": ReinforceOracle, "random": CompactRandomSearchOracle,
           "bayesian": CompactBayesianOracle}


def make_oracle(cfg: ControllerConfig, space, seed: int = 0, directory: str | None = None,
                max_trials: int | None = None):
    """The oracle `cfg.name` names, resumed from `directory` when that holds a previous run.

    Args:
      cfg: the `ControllerConfig`.
      space: the `SearchSpace`.
      seed: random seed.
      directory: where trials.jsonl and oracle_state.json live; None keeps trials in memory
        only.
      max_trials: stop after this many trials (None: no limit).

    Raises:
      UserError: for an unknown name.
    """
    if cfg.name not in ORACLES:
        raise UserError(f"unknown controller '{cfg.name}': choose one of "
                        f"{', '.join(repr(n) for n in ORACLES)}")
    oracle = ORACLES[cfg.name](space, cfg, seed, max_trials)
    if directory:
        oracle.set_directory(directory)
        if oracle.has_saved_state():
            oracle.reload()
    return oracle


def reinforce_oracle(space: Any = "enas_micro", *, objective: Any = "val_accuracy",
                     max_trials: int | None = None, seed: int = 0, **controller: Any):
    """A `ReinforceOracle` for a plain `kt.Tuner`.

    Args:
      space: a `SearchSpace` or its name (``enas_micro``, ``nb201``).
      objective: any Keras Tuner objective (name, `kt.Objective` or list).
      max_trials: trials before the tuner stops.
      seed: seeds the policy and its sampling.
      **controller: `ControllerConfig` fields (``aggregate=5``, ``learning_rate=0.05``),
        validated as the ``--controller_*`` flags are.

    Raises:
      UserError: an unknown space or controller option, or a value out of range.
    """
    from di_nas.search_space import get_space

    names = {f.name for f in dataclasses.fields(ControllerConfig)}
    unknown = sorted(set(controller) - names)
    if unknown:
        raise UserError(f"unknown controller option(s) {', '.join(unknown)}: use "
                        f"{', '.join(sorted(names - {'name'}))}")
    cfg = ControllerConfig(**controller)
    space = get_space(space) if isinstance(space, str) else space
    oracle = ReinforceOracle(space, cfg, seed, max_trials)
    oracle.objective = objective_module.create_objective(objective)
    return oracle
