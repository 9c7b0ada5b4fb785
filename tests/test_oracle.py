"""Tests of the Keras Tuner oracles: trials, compact persistence, reload, the search protocol."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from di_nas.bench.oracle import oracle_ms_per_trial
from di_nas.config import ControllerConfig
from di_nas.controller.oracle import STATE_FILE, TRIALS_FILE, make_oracle
from di_nas.errors import UserError
from di_nas.search_space import get_space

NAMES = ["reinforce", "random", "bayesian"]


def _cfg(name, **fields):
    return ControllerConfig(name=name, lstm_units=8, **fields)


def _run_trials(oracle, space, num):
    for _ in range(num):
        trial = oracle.create_trial("tuner0")
        arch = space.from_hp_values(trial.hyperparameters.values)  # Valid or raises.
        oracle.update_trial(trial.trial_id, {"reward": float(sum(arch.values))})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)


def _lines(directory):
    with open(os.path.join(directory, TRIALS_FILE)) as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("name", NAMES)
def test_trials_persist_compactly_and_reload(name, tmp_path):
    space = get_space("nb201")
    oracle = make_oracle(_cfg(name), space, seed=0, directory=str(tmp_path))
    _run_trials(oracle, space, 6)
    running = oracle.create_trial("tuner0")  # Left running, as if the job stopped here.

    assert sorted(os.listdir(tmp_path)) == [STATE_FILE, TRIALS_FILE]  # No trial_* dirs.
    lines = _lines(tmp_path)
    assert len(lines) == 6 and all(line["status"] == "COMPLETED" for line in lines)
    best = oracle.get_best_trials()[0]
    assert best.score == max(line["score"] for line in lines)

    again = make_oracle(_cfg(name), space, seed=0, directory=str(tmp_path))
    assert len(again.trials) == 7
    assert again.get_best_trials()[0].trial_id == best.trial_id
    assert again.get_best_trials()[0].hyperparameters.values == best.hyperparameters.values
    assert again.get_best_trials(3)[0].score == best.score
    retried = again.create_trial("tuner1")  # The unfinished trial is retried first.
    assert retried.trial_id == running.trial_id
    assert retried.hyperparameters.values == running.hyperparameters.values
    again.update_trial(retried.trial_id, {"reward": 1.0})
    retried.status = "COMPLETED"
    again.end_trial(retried)
    _run_trials(again, space, 2)
    ids = [line["trial_id"] for line in _lines(tmp_path)]
    assert len(ids) == 9 and len(set(ids)) == 9


@pytest.mark.parametrize("name", NAMES)
def test_in_graph_sampling(name):
    space = get_space("enas_micro")
    oracle = make_oracle(_cfg(name), space, seed=1)
    archs = tf.function(lambda: oracle.sample(5))().numpy()
    assert archs.shape == (5, space.length)
    for row in archs:
        space.architecture(row)
    seeded = tf.function(lambda s: oracle.sample(3, s))
    seed = tf.constant([7, 2], tf.int64)
    np.testing.assert_array_equal(seeded(seed).numpy(), seeded(seed).numpy())  # Stateless.
    assert set(oracle.checkpoint_items())


@pytest.mark.parametrize("name", NAMES)
def test_every_oracle_speaks_the_search_protocol(name):
    """`round` scores proposals with the reward function and records trials; `candidates`
    are valid architectures, the baselines' best trial first."""
    space = get_space("nb201")
    oracle = make_oracle(_cfg(name, aggregate=3), space, seed=0)
    scored = []

    def reward_fn(archs):
        scored.extend(archs.numpy().tolist())
        return tf.cast(archs[:, 0], tf.float32) / 4.0

    for i in range(2):
        metrics = oracle.round(reward_fn, tf.constant([5, i], tf.int64))
        assert 0.0 <= metrics["reward_mean"] <= 1.0
    assert len(scored) == 6  # Three proposals per round, each scored once.
    # REINFORCE records one trial per round, the baselines one per proposal.
    assert len(oracle.trials) == (2 if name == "reinforce" else 6)
    candidates = oracle.candidates(4, seed=0)
    assert len(candidates) == 4
    for values in candidates:
        space.architecture(values)
    if name != "reinforce":
        best = oracle.get_best_trials(1)[0]
        assert list(candidates[0]) == list(space.from_hp_values(
            best.hyperparameters.values).values)


def test_unknown_oracle_is_a_user_error():
    with pytest.raises(UserError, match="nope"):
        ControllerConfig(name="nope")
    bad = ControllerConfig.__new__(ControllerConfig)
    object.__setattr__(bad, "name", "nope")
    with pytest.raises(UserError, match="nope"):
        make_oracle(bad, get_space("nb201"))


def test_state_file_does_not_grow(tmp_path):
    space = get_space("nb201")
    oracle = make_oracle(_cfg("reinforce"), space, seed=0, directory=str(tmp_path))
    _run_trials(oracle, space, 5)
    small = os.path.getsize(tmp_path / STATE_FILE)
    _run_trials(oracle, space, 60)
    assert os.path.getsize(tmp_path / STATE_FILE) <= small + 8  # Counters may gain digits.
    assert len(_lines(tmp_path)) == 65


def test_reinforce_round_records_one_trial(tmp_path):
    space = get_space("nb201")

    oracle = make_oracle(_cfg("reinforce", aggregate=4), space, seed=0,
                         directory=str(tmp_path), max_trials=3)
    step = tf.function(lambda: oracle.trainer.train_step(
        lambda a: tf.cast(a[:, 0], tf.float32) / 4.0))
    for _ in range(2):
        metrics = {k: v.numpy() for k, v in step().items()}
        trial = oracle.record_round(metrics)
        assert trial.status == "COMPLETED"
        assert trial.score == pytest.approx(float(metrics["best_reward"]))
        assert list(space.from_hp_values(trial.hyperparameters.values).values) == (
            metrics["best_arch"].tolist())
        assert trial.metrics.get_last_value("reward_mean") == pytest.approx(
            float(metrics["reward_mean"]))
    assert len(_lines(tmp_path)) == 2
    assert oracle.record_round(metrics).status == "COMPLETED"
    assert oracle.record_round(metrics).status == "STOPPED"  # max_trials = 3 reached.
    assert int(oracle.trainer.steps.numpy()) == 2


def test_bench_oracle_reports_positive_ms(tmp_path):
    ms = oracle_ms_per_trial(40, str(tmp_path), warm=20, space="nb201")
    assert 0.0 < ms < 1000.0
    assert len(_lines(tmp_path)) == 40
    assert np.isfinite(ms)


def test_without_directory_trials_stay_in_memory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    space = get_space("nb201")
    oracle = make_oracle(_cfg("random"), space, seed=0)
    _run_trials(oracle, space, 3)
    assert len(oracle.trials) == 3 and os.listdir(tmp_path) == []


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
