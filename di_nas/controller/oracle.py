"""Keras Tuner oracles for the search: REINFORCE (ENAS) and the random / Bayesian baselines.

Every oracle here records finished trials compactly (`CompactPersistenceMixin`): one appended
JSON line per ended trial in `<directory>/trials.jsonl` plus a small `oracle_state.json`, with
O(1) work per trial, where Keras Tuner 1.4.8 writes a directory per trial and rewrites a list
of all trials on every save. Each oracle also offers `sample_architectures(num)`, an in-graph
sampler for the shared-weight phase (the policy for REINFORCE; uniform for the baselines, i.e.
random search with weight sharing), and `checkpoint_items()`, the TF state that belongs in the
search's `tf.train.Checkpoint`. This module must not train the supernet or compute rewards.
"""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Mapping
from typing import Any

import keras_tuner as kt
import numpy as np
import tensorflow as tf
from keras_tuner.src.engine import trial as trial_module

from di_nas.controller.policy import ControllerPolicy
from di_nas.controller.reinforce import ReinforceTrainer
from di_nas.controller.samplers import UniformSampler
from di_nas.errors import UserError

OBJECTIVE = kt.Objective("reward", "max")
TRIALS_FILE = "trials.jsonl"
STATE_FILE = "oracle_state.json"
_ENDED = (trial_module.TrialStatus.COMPLETED, trial_module.TrialStatus.FAILED)


class _FastCopyHyperParameters(kt.HyperParameters):
    """`copy()` copies the containers but shares the hyperparameter objects: O(#hps), with no
    config round trip (Keras Tuner's copy re-deserialises every hp, ~1 ms for 40 choices)."""

    def copy(self):
        new = _FastCopyHyperParameters.__new__(_FastCopyHyperParameters)
        new.__dict__.update(self.__dict__)
        new._hps = collections.defaultdict(list, {k: list(v) for k, v in self._hps.items()})
        for name in ("_space", "_name_scopes", "_conditions", "active_scopes",
                     "inactive_scopes"):
            setattr(new, name, list(getattr(self, name)))
        new.values = dict(self.values)
        return new


def _fast_copying(hps) -> _FastCopyHyperParameters:
    new = _FastCopyHyperParameters.__new__(_FastCopyHyperParameters)
    new.__dict__.update(hps.__dict__)
    return new


def _is_local(path: str) -> bool:
    return "://" not in path


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"{type(x).__name__} is not JSON serialisable")


class CompactPersistenceMixin:
    """Replaces Keras Tuner's per-trial files with one JSON line per ended trial.

    Mix in before a `keras_tuner.Oracle` subclass. Per trial it appends at most one line and
    rewrites a state file whose size does not grow with the number of trials; it also replaces
    the base class's O(trials) scans (consecutive-failure check, best trial). A trial still
    running or waiting for a retry lives in the state file and is retried after `reload()`,
    as in Keras Tuner. The trial directory Keras Tuner would create is never made.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.hyperparameters = _fast_copying(self.hyperparameters)
        self.verbose = 0  # The display scans all trials on each end; the search logs instead.
        self._consecutive_failures = 0
        self._best_trial_id = None
        self._written = set()
        self._made_dir = None
        self._hp_config = None
        self._directory, self._project_name = None, None  # No directory: keep all in memory.

    def set_directory(self, directory: str) -> None:
        """Persist into `directory` itself (a Keras Tuner `Tuner` uses directory/project)."""
        self._set_project_dir(directory, "")

    @property
    def _project_dir(self):
        d = str(self._directory)
        if self._project_name:
            d = os.path.join(d, self._project_name)
        if d != self._made_dir:
            tf.io.gfile.makedirs(d)
            self._made_dir = d
        return d

    def _get_oracle_fname(self):
        return os.path.join(self._project_dir, STATE_FILE)

    def _trial_record(self, trial) -> dict[str, Any]:
        return {"trial_id": trial.trial_id, "values": trial.hyperparameters.values,
                "status": trial.status, "score": trial.score, "best_step": trial.best_step,
                "metrics": trial.metrics.get_config(), "message": trial.message}

    def _trial_from_record(self, record, template) -> kt.engine.trial.Trial:
        hps = _fast_copying(template).copy()  # O(#hps), no config round trip.
        hps.values = dict(record["values"])
        trial = trial_module.Trial(hps, trial_id=record["trial_id"], status=record["status"])
        trial.metrics = trial.metrics.from_config(record["metrics"])
        trial.score, trial.best_step = record["score"], record["best_step"]
        trial.message = record["message"]
        return trial

    def _save_trial(self, trial):
        if trial.status not in _ENDED or trial.trial_id in self._written:
            return  # Running / retrying trials are kept in the state file instead.
        if self._directory is None:
            self._note_ended(trial)
            return
        line = json.dumps(self._trial_record(trial), default=_json_default)
        path = os.path.join(self._project_dir, TRIALS_FILE)
        # Plain files are appended directly (TF's file layer costs ~10x more per call).
        with (open(path, "a") if _is_local(path) else tf.io.gfile.GFile(path, "a")) as f:
            f.write(line + "\n")
        self._note_ended(trial)

    def _note_ended(self, trial):
        self._written.add(trial.trial_id)
        if trial.status == trial_module.TrialStatus.COMPLETED and trial.score is not None:
            best = self.trials.get(self._best_trial_id)
            if best is None or self.objective.better_than(trial.score, best.score):
                self._best_trial_id = trial.trial_id

    def _check_consecutive_failures(self):
        # Called once per ended trial, right after it joins `end_order`: O(1) not O(trials).
        trial = self.trials[self.end_order[-1]]
        if trial.status == trial_module.TrialStatus.FAILED:
            self._consecutive_failures += 1
        else:
            self._consecutive_failures = 0
        if self._consecutive_failures >= self.max_consecutive_failed_trials:
            raise RuntimeError("Number of consecutive failures exceeded the limit of "
                               f"{self.max_consecutive_failed_trials}.\n" + (trial.message or ""))

    def get_best_trials(self, num_trials=1):
        if num_trials == 1 and self._best_trial_id is not None:
            return [self.trials[self._best_trial_id]]
        return super().get_best_trials(num_trials)

    def get_state(self):
        pending = [t.trial_id for t in self.ongoing_trials.values()] + list(self._retry_queue)
        if self._hp_config is None or len(self._hp_config["space"]) != len(
                self.hyperparameters.space):
            self._hp_config = self.hyperparameters.get_config()
        return {
            "format": 1,
            "hyperparameters": self._hp_config,
            "seed": self.seed,
            "seed_state": self._seed_state,
            "ongoing_trials": {k: t.trial_id for k, t in self.ongoing_trials.items()},
            "retry_queue": list(self._retry_queue),
            "run_times": {i: self._run_times[i] for i in pending},
            "pending": [self._trial_record(self.trials[i]) for i in dict.fromkeys(pending)],
            "num_ended": len(self.end_order),
        }

    def set_state(self, state):
        self.hyperparameters = _fast_copying(
            kt.HyperParameters.from_config(state["hyperparameters"]))
        self._hp_config = None
        self.seed, self._seed_state = state["seed"], state["seed_state"]
        for record in state["pending"]:
            if record["trial_id"] not in self._written:  # Not ended after the last save.
                trial = self._trial_from_record(record, self.hyperparameters)
                self.trials[trial.trial_id] = trial
                self.start_order.append(trial.trial_id)
                self._record_values(trial)
        live = lambda i: i in self.trials and i not in self._written  # noqa: E731
        self.ongoing_trials = {k: self.trials[i] for k, i in state["ongoing_trials"].items()
                               if live(i)}
        self._retry_queue = [i for i in state["retry_queue"] if live(i)]
        self._run_times.update(state["run_times"])

    def save(self):
        if self._directory is None:
            return
        path = self._get_oracle_fname()
        text = json.dumps(self.get_state(), default=_json_default)
        if _is_local(path):
            with open(path + ".tmp", "w") as f:
                f.write(text)
            os.replace(path + ".tmp", path)  # Atomic: a reader never sees half a state.
        else:
            with tf.io.gfile.GFile(path + ".tmp", "w") as f:
                f.write(text)
            tf.io.gfile.rename(path + ".tmp", path, overwrite=True)

    def reload(self):
        """Rebuilds trials, order, hashes, best and failure count from the directory."""
        state_path = self._get_oracle_fname()
        state = None
        if tf.io.gfile.exists(state_path):
            with tf.io.gfile.GFile(state_path) as f:
                state = json.load(f)
            self.hyperparameters = _fast_copying(
                kt.HyperParameters.from_config(state["hyperparameters"]))
        trials_path = os.path.join(self._project_dir, TRIALS_FILE)
        if tf.io.gfile.exists(trials_path):
            with tf.io.gfile.GFile(trials_path) as f:
                lines = f.read().splitlines()
            for n, line in enumerate(lines):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    if n == len(lines) - 1:
                        break  # A line cut short by a crash mid-append: that trial re-runs.
                    raise UserError(f"{trials_path} line {n + 1} is not JSON: the oracle "
                                    "directory is corrupt; start with a new --output_dir"
                                    ) from None
                trial = self._trial_from_record(record, self.hyperparameters)
                self.trials[trial.trial_id] = trial
                self.start_order.append(trial.trial_id)
                self.end_order.append(trial.trial_id)
                self._record_values(trial)
                self._consecutive_failures = (
                    self._consecutive_failures + 1
                    if trial.status == trial_module.TrialStatus.FAILED else 0)
                self._note_ended(trial)
        if state is not None:
            self.set_state(state)
        # As Keras Tuner does: trials that were running when the job stopped are retried.
        self._retry_queue.extend(t.trial_id for t in self.ongoing_trials.values())
        self.ongoing_trials = {}

    def has_saved_state(self) -> bool:
        """Whether the directory holds a previous run of this oracle."""
        return any(tf.io.gfile.exists(os.path.join(self._project_dir, name))
                   for name in (STATE_FILE, TRIALS_FILE))


class _UniformSharing:
    """Shared-weight phase of the baselines: uniform in-graph sampling."""

    def _init_sampler(self, space, seed: int):
        self.space = space
        self.sampler = UniformSampler(space, seed)

    def sample_architectures(self, num) -> tf.Tensor:
        """int32 [num, D] uniform architectures; usable inside a `tf.function`."""
        return self.sampler.sample(num)

    def checkpoint_items(self) -> dict[str, tf.Module]:
        return {"sampler": self.sampler}


class CompactRandomSearchOracle(_UniformSharing, CompactPersistenceMixin,
                                kt.oracles.RandomSearchOracle):
    """Keras Tuner random search with compact persistence and uniform in-graph sampling."""

    def __init__(self, space, seed: int = 0, max_trials: int | None = None):
        super().__init__(objective=OBJECTIVE, max_trials=max_trials, seed=seed + 1,
                         hyperparameters=space.hyperparameters(), allow_new_entries=False,
                         tune_new_entries=False)
        self._init_sampler(space, seed)


class CompactBayesianOracle(_UniformSharing, CompactPersistenceMixin,
                            kt.oracles.BayesianOptimizationOracle):
    """Keras Tuner GP Bayesian optimisation with compact persistence (its GP fit still grows
    with the number of trials) and uniform in-graph sampling."""

    def __init__(self, space, seed: int = 0, max_trials: int | None = None):
        super().__init__(objective=OBJECTIVE, max_trials=max_trials, seed=seed + 1,
                         hyperparameters=space.hyperparameters(), allow_new_entries=False,
                         tune_new_entries=False)
        self._init_sampler(space, seed)


class ReinforceOracle(CompactPersistenceMixin, kt.Oracle):
    """ENAS's REINFORCE controller as a Keras Tuner oracle.

    Two ways to use it:
    - in-graph (the search): `sample_architectures(num)` in the shared-weight step and
      `train_step(reward_fn)` for a whole controller step, both inside a `tf.function`; then
      `record_round(step_metrics)` records ONE trial per controller round (values: the round's
      best architecture, score: its reward, metrics: mean reward, baseline, entropy, ...);
    - plain Keras Tuner: `create_trial` samples one architecture from the policy
      (`populate_space`), `update_trial` / `end_trial` record its reward. Host-side samples are
      drawn in blocks of `sample_block` and redrawn after each controller step.
    The policy, optimizer, baseline and sampling state go into the search's checkpoint via
    `checkpoint_items()`; `get_state` only carries the small Keras Tuner state.

    Args:
      space: the `SearchSpace`.
      seed: seeds the policy weights and its sampling.
      max_trials: stop after this many trials (None: no limit).
      policy_kwargs: extra `ControllerPolicy` arguments (lstm_units, tanh_constant, ...).
      trainer_kwargs: extra `ReinforceTrainer` arguments (learning_rate, aggregate, ...).
      sample_block: architectures drawn per host-side policy call.
    """

    def __init__(self, space, seed: int = 0, max_trials: int | None = None,
                 policy_kwargs: Mapping[str, Any] | None = None,
                 trainer_kwargs: Mapping[str, Any] | None = None, sample_block: int = 64):
        super().__init__(objective=OBJECTIVE, max_trials=max_trials, seed=seed + 1,
                         hyperparameters=space.hyperparameters(), allow_new_entries=False,
                         tune_new_entries=False)
        self.space = space
        self.policy = ControllerPolicy(space, seed=seed, **(policy_kwargs or {}))
        self.trainer = ReinforceTrainer(self.policy, **(trainer_kwargs or {}))
        self._sample_block = sample_block
        self._block_fn = tf.function(lambda: self.policy.sample(sample_block)[0])
        self._block, self._block_step = [], None
        self._pending_values = None

    def sample_architectures(self, num, seed=None) -> tf.Tensor:
        """int32 [num, D] architectures from the policy; usable inside a `tf.function`."""
        return self.policy.sample(num, seed)[0]

    def train_step(self, reward_fn, seed=None) -> dict[str, tf.Tensor]:
        """One controller step (see `ReinforceTrainer.train_step`); usable in a tf.function."""
        return self.trainer.train_step(reward_fn, seed)

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

    def record_round(self, metrics: Mapping[str, Any], tuner_id: str = "controller"):
        """Records one controller round as one ended trial.

        Args:
          metrics: the dict `train_step` returned (tensors or numbers): 'best_arch' and
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


def _option(cfg, name: str, default):
    """`cfg.controller.<name>`, else `cfg.<name>` (attributes or mapping keys), else default."""
    for scope in (getattr(cfg, "controller", None), cfg):
        if isinstance(scope, Mapping) and name in scope:
            return scope[name]
        if scope is not None and not isinstance(scope, Mapping) and hasattr(scope, name):
            return getattr(scope, name)
    return default


def make_oracle(name: str, space, cfg=None, seed: int = 0, directory: str | None = None):
    """The oracle called `name`, resumed from `directory` when that holds a previous run.

    Args:
      name: 'reinforce' | 'random' | 'bayesian'.
      space: the `SearchSpace`.
      cfg: optional config; read (under `cfg.controller` or `cfg`): max_trials, lstm_units,
        tanh_constant, op_tanh_reduce, temperature, controller_learning_rate, baseline_decay,
        entropy_weight, aggregate. Missing fields take the ENAS defaults.
      seed: random seed.
      directory: where trials.jsonl and oracle_state.json live; None keeps trials in memory
        only.

    Raises:
      UserError: for an unknown name.
    """
    max_trials = _option(cfg, "max_trials", None)
    if name == "reinforce":
        policy_kwargs = {k: _option(cfg, k, d) for k, d in (
            ("lstm_units", 64), ("tanh_constant", 1.10), ("op_tanh_reduce", 2.5),
            ("temperature", 5.0))}
        trainer_kwargs = {"learning_rate": _option(cfg, "learning_rate", 0.0035)}
        trainer_kwargs.update({k: _option(cfg, k, d) for k, d in (
            ("baseline_decay", 0.99), ("entropy_weight", 1e-4), ("aggregate", 10))})
        oracle = ReinforceOracle(space, seed, max_trials, policy_kwargs, trainer_kwargs)
    elif name == "random":
        oracle = CompactRandomSearchOracle(space, seed, max_trials)
    elif name == "bayesian":
        oracle = CompactBayesianOracle(space, seed, max_trials)
    else:
        raise UserError(f"unknown controller '{name}': choose one of "
                        "'reinforce', 'random', 'bayesian'")
    if directory:
        oracle.set_directory(directory)
        if oracle.has_saved_state():
            oracle.reload()
    return oracle
