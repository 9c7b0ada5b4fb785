"""Compact persistence for Keras Tuner oracles: one JSON line per ended trial.

`CompactPersistenceMixin` records finished trials in `<directory>/trials.jsonl` plus a small
`oracle_state.json`, with O(1) work per trial, where Keras Tuner 1.4.8 writes a directory per
trial and rewrites a list of all trials on every save. This module must not know the policy,
the search space or the supernet.
"""

from __future__ import annotations

import collections
import json
import os
from typing import Any

import keras_tuner as kt
import numpy as np
import tensorflow as tf
from keras_tuner.src.engine import trial as trial_module

from di_nas import io as dio
from di_nas.errors import UserError

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
        with (open(path, "a") if dio.is_local(path) else tf.io.gfile.GFile(path, "a")) as f:
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
        # Atomic: a reader never sees half a state.
        dio.atomic_write_json(self._get_oracle_fname(), self.get_state(), compact=True)

    def reload(self):
        """Rebuilds trials, order, hashes, best and failure count from the directory."""
        state_path = self._get_oracle_fname()
        state = dio.read_json(state_path)
        if state is not None:
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
