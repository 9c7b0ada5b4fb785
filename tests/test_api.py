"""The Python API: options validated as flags, in-memory data, a tiny search that the command
line resumes, Keras Tuner's surface, and ReinforceOracle learning inside a plain `kt.Tuner`."""

import os
import tempfile

import keras_tuner as kt
import numpy as np
import pytest

import di_nas
from di_nas.api import jobs, options
from di_nas.cli import flags as cli_flags

# The small nb201 space (one cell per stage): its supernet traces in seconds, where
# enas_micro's takes a minute or more on a slow CPU.
TINY = dict(space="nb201", num_cells=1, batch_size=16, eval_batch_size=32, shuffle_buffer=256,
            num_layers=1, filters=4, stem_multiplier=1, controller_lstm_units=8,
            controller_steps_per_epoch=2, controller_aggregate=1, epochs=1, steps_per_epoch=2,
            num_candidates=3, final_epochs=1, final_batch_size=16, final_layers=1, final_filters=4)


def _arrays(n=160, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 8, 8, 1)).astype(np.uint8), np.arange(n) % 4


def _cli_error(argv):
    values = cli_flags.new_flag_values()
    values(["prog", *argv])
    with pytest.raises(di_nas.UserError) as e:
        cli_flags.build_config(values)
    return str(e.value)


@pytest.mark.parametrize("override,argv", [
    ({"epochs": 0}, ["--epochs=0"]),
    ({"di_beta": -1.0}, ["--di_beta=-1"]),
    ({"valid_fraction": 1.5}, ["--valid_fraction=1.5"]),
])
def test_overrides_fail_with_the_command_lines_message(override, argv, tmp_path):
    out = str(tmp_path / "run")
    with pytest.raises(di_nas.UserError) as e:
        di_nas.search("digits", output_dir=out, **override)
    assert str(e.value) == _cli_error(argv)
    assert isinstance(e.value, ValueError) and not os.path.exists(out)


@pytest.mark.parametrize("override,match", [
    ({"epochz": 1}, "Unknown command line flag 'epochz'"),
    ({"epochs": "2"}, "--epochs"),
    ({"space": "darts"}, "--space"),
    ({"output_dir": "x"}, "cannot be an override"),
])
def test_unknown_or_mistyped_overrides_are_refused(override, match, tmp_path):
    with pytest.raises(di_nas.UserError, match=match):
        jobs.make_config("digits", str(tmp_path / "run"), override)


@pytest.mark.parametrize("data,match", [
    ((np.zeros((10, 8)), np.zeros(10)), "shape"),
    ((np.zeros((10, 8, 8), np.uint8), np.zeros(9)), "lengths must match"),
    ((np.full((10, 8, 8), 0.5, np.float32), np.arange(10) % 2), "0..1"),
    ((np.zeros((10, 8, 8), np.uint8), np.array([0, 1] * 4 + [3, 3])), "class"),
    ((np.zeros((10, 8, 8), np.uint8), -np.ones(10)), "negative"),
    ((np.zeros((10, 8, 8), np.uint8),), "tuple of 1"),
    ([1, 2, 3], "tuple of 3"),
])
def test_bad_arrays_are_refused_before_anything_is_written(data, match, tmp_path):
    out = str(tmp_path / "run")
    with pytest.raises(di_nas.UserError, match=match):
        di_nas.search(data, output_dir=out, **TINY)
    assert not os.path.exists(out)


def test_a_dataset_of_pairs_equals_its_arrays():
    import tensorflow as tf

    from di_nas.data import memory

    x, y = _arrays(40)
    from_ds = memory.to_arrays(tf.data.Dataset.from_tensor_slices((x, y)).batch(7))
    from_arrays = memory.to_arrays((x, y))
    assert memory.content_hash(from_ds) == memory.content_hash(from_arrays)


@pytest.fixture(scope="module")
def searched():
    out = os.path.join(tempfile.mkdtemp(), "search")
    tuner = di_nas.DINASTuner(output_dir=out, **TINY)
    return tuner, tuner.search(_arrays())


def test_search_from_arrays_resumes_from_the_command_line(searched):
    _, result = searched
    assert len(result.candidates) >= 1 and result.best_architecture == result.candidates[0][0]
    assert "rank" in result.summary() and result.build_model().count_params() > 0
    flagfile = os.path.join(result.output_dir, jobs.FLAGFILE)
    values = cli_flags.new_flag_values()
    values(["di-nas-search", f"--flagfile={flagfile}"])
    cfg = cli_flags.build_config(values)
    assert cfg.fingerprint() == result.config.fingerprint()
    assert os.path.isfile(cfg.data.dataset[len("npz:"):])  # the arrays, for the CLI
    again = di_nas.search(cfg.data.dataset, output_dir=result.output_dir, **TINY)  # and back
    assert again.candidates == result.candidates


def test_an_architecture_object_leaves_no_temporary_file():
    from di_nas.api import models
    from di_nas.search_space import get_space, load_architecture

    arch = get_space("nb201").sample(np.random.default_rng(0))
    with models.architecture_file(arch) as path:
        assert load_architecture(path) == arch
    assert not os.path.exists(os.path.dirname(path))
    with models.architecture_file("given.json") as given:
        assert given == "given.json"


def test_tuner_has_keras_tuners_surface(searched, capsys):
    tuner, result = searched
    hps = tuner.get_best_hyperparameters(2)
    assert isinstance(hps[0], kt.HyperParameters)
    assert hps[0].values == result.best_architecture.hp_values()
    assert len(tuner.get_best_models(1)) == 1
    tuner.results_summary(1)
    assert "accuracy" in capsys.readouterr().out


def _best_score(oracle, space):
    ops = np.array([d.kind == "op" for d in space.decisions])

    class Toy(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            values = np.asarray(space.from_hp_values(trial.hyperparameters.values).values)
            return float(np.mean(values[ops] == 1))  # toy objective: op 1 on every edge

    Toy(oracle=oracle, directory=tempfile.mkdtemp(), project_name="toy").search(verbose=0)
    return oracle.get_best_trials(1)[0].score


def test_reinforce_oracle_learns_inside_a_plain_tuner():
    from di_nas.search_space import get_space

    space, trials, seed = get_space("nb201"), 100, 1
    objective = kt.Objective("reward", "max")
    oracle = di_nas.reinforce_oracle(
        space, objective=objective, max_trials=trials, seed=seed, aggregate=4,
        learning_rate=0.2, lstm_units=16, baseline_decay=0.5, temperature=1.0, op_prior=False)
    learned = _best_score(oracle, space)
    assert int(oracle.trainer.steps.numpy()) == trials // 4  # one step per aggregate
    random = _best_score(kt.oracles.RandomSearchOracle(
        objective=objective, max_trials=trials, hyperparameters=space.hyperparameters(),
        seed=seed), space)
    assert learned > random, (learned, random)


def test_reinforce_oracle_options_are_validated():
    with pytest.raises(di_nas.UserError, match="controller option"):
        di_nas.reinforce_oracle("nb201", aggregat=3)


def test_options_table_is_the_clis():
    assert cli_flags.FLAG_TABLE is options.FLAG_TABLE


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
