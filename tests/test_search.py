"""The search job end to end: files, traces, refusal of a foreign output_dir (resume after kills:
tests/test_resume.py)."""

import json
import os
import subprocess
import sys

import pytest

from di_nas import config
from di_nas.errors import UserError
from di_nas.search_space import load_architecture
from di_nas.training import outputs
from tests.helpers import ROOT, cli_env

# A tiny search on the small nb201 space (3 cells of 4 channels: it traces in seconds),
# 3 epochs of 4 steps. The enas_micro search runs end to end in-process below.
TINY_FLAGS = [
    "--space=nb201", "--num_cells=1", "--filters=4", "--batch_size=16",
    "--eval_batch_size=16", "--epochs=3", "--steps_per_epoch=4", "--controller_steps_per_epoch=2",
    "--controller_aggregate=2", "--controller_lstm_units=8", "--num_candidates=4",
    "--log_every=2", "--deterministic", "--seed=3",
]


def _tiny(output_dir, **sections):
    cfg = config.tiny(output_dir=str(output_dir))
    cfg = cfg.replace(search={"epochs": 1, "steps_per_epoch": 2, "num_candidates": 3,
                              "log_every": 2})
    return cfg.replace(**sections) if sections else cfg


def _run_cli(output_dir, *extra, timeout=600):
    return subprocess.Popen(
        [sys.executable, "-m", "di_nas.cli.search", *TINY_FLAGS, f"--output_dir={output_dir}",
         *extra], cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)


def test_reward_batches_are_shuffled_per_seed_and_epoch():
    import numpy as np

    from di_nas import data as data_lib
    from di_nas.data.sources import from_arrays
    from di_nas.training.search import epoch_batches

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 255, (80, 4, 4, 1)).astype(np.uint8), np.arange(80) % 10
    data_cfg = config.DataConfig(batch_size=8)
    source = from_arrays("toy", x, y, x[:8], y[:8], data_cfg, seed=0)

    def first_labels(seed, epoch):
        batches = epoch_batches(source, data_cfg, "valid", seed, epoch).take(5)
        return np.concatenate([labels.numpy() for _, labels in batches])

    assert np.array_equal(first_labels(0, 1), first_labels(0, 1))  # Reproducible.
    assert not np.array_equal(first_labels(0, 1), first_labels(0, 2))  # Another epoch.
    assert not np.array_equal(first_labels(0, 1), first_labels(1, 1))  # Another seed.
    # Not augmented: one pass holds exactly the search-valid images.
    images = np.concatenate([i.numpy() for i, _ in epoch_batches(
        source, data_cfg, "valid", 0, 3).take(source.num_valid // 8)])
    plain = data_lib.make_dataset(source, "valid", 8, training=False, cfg=data_cfg, seed=0)
    plain = np.concatenate([i.numpy() for i, _ in plain])
    np.testing.assert_allclose(np.sort(images.ravel()), np.sort(plain.ravel()), rtol=1e-6)


def test_tiny_search_writes_a_valid_architecture(tmp_path):
    from di_nas.training.search import run_search

    result = run_search(_tiny(tmp_path))
    for name in ("best_architecture.json", "candidates.json", "result.json",
                 "best_architecture.png", "search_config.json"):
        assert (tmp_path / name).exists(), name
    arch = load_architecture(str(tmp_path / "best_architecture.json"), "enas_micro")
    candidates = json.loads((tmp_path / "candidates.json").read_text())
    assert list(arch.values) == candidates[0]["values"] == result["best"]["values"]
    assert all(0.0 <= c["accuracy"] <= 1.0 for c in candidates)
    assert candidates == sorted(candidates, key=lambda c: (-c["accuracy"], c["loss"]))
    assert (tmp_path / "oracle" / "trials.jsonl").exists()
    assert os.listdir(tmp_path / "tensorboard" / "search")
    assert result["best_valid_accuracy"] == candidates[0]["accuracy"]
    assert 0.0 <= result["final_reward_mean"] <= 1.0 and result["search_seconds"] > 0
    assert json.loads((tmp_path / "result.json").read_text())["chance"] == 0.1
    # Run again on the finished directory: reports without redoing anything.
    again = run_search(_tiny(tmp_path))
    assert again["best"] == result["best"]


def test_last_line_says_the_figures_and_warns_near_chance():
    result = {"best": {"accuracy": 0.95}, "best_valid_accuracy": 0.95,
              "final_reward_mean": 0.81, "search_seconds": 95.0, "chance": 0.1}
    line = outputs.summary_line(result)
    assert "0.9500" in line and "0.8100" in line and "95 s" in line
    assert "NOT LEARNED" not in line
    line = outputs.summary_line({**result, "final_reward_mean": 0.13})
    assert "NOT LEARNED" in line and "--steps_per_epoch" in line


@pytest.mark.parametrize("controller", ["random", "bayesian"])
def test_keras_tuner_baselines_drive_the_supernet(tmp_path, controller):
    from di_nas.training.search import run_search

    cfg = _tiny(tmp_path, controller={"name": controller, "steps_per_epoch": 1,
                                      "aggregate": 2, "lstm_units": 8},
                space={"name": "nb201", "num_cells": 1})
    result = run_search(cfg)
    assert result["controller"] == controller
    load_architecture(str(tmp_path / "best_architecture.json"), "nb201")
    lines = (tmp_path / "oracle" / "trials.jsonl").read_text().splitlines()
    assert len(lines) == 2


def test_one_trace_for_every_chunk_and_architecture(tmp_path):
    """Chunks of 3 and 1 steps, each step on its own sampled architecture, run through one
    trace of the compiled loop; every controller round reuses one trace of the rewards."""
    import tensorflow as tf

    from di_nas.data import load_source
    from di_nas.training.search import Search
    from di_nas.training.signals import StopFlag

    cfg = _tiny(tmp_path, space={"name": "nb201", "num_cells": 1},
                search={"epochs": 1, "steps_per_epoch": 4, "num_candidates": 3, "log_every": 3},
                controller={"lstm_units": 8, "steps_per_epoch": 3, "aggregate": 2})
    search = Search(cfg, tf.distribute.get_strategy(), load_source(cfg.data, cfg.seed))
    with StopFlag() as stop:
        search.shared_phase(0, stop, None)
    assert int(search.trainer.step.numpy()) == 4
    search.controller_phase(0, None)
    assert len(search.oracle.trials) == 3  # One REINFORCE trial per round.
    counts = search.loop.tracing_counts()
    assert counts["train_sampled"] == 1 and counts["rewards"] == 1, counts
    assert counts["train"] == counts["train_batch"] == 0, counts


def test_mismatched_output_dir_is_refused(tmp_path):
    outputs.prepare_output_dir(_tiny(tmp_path))
    with pytest.raises(UserError, match="different configuration"):
        outputs.prepare_output_dir(_tiny(tmp_path, di={"beta": 0.5}))


def test_unwritable_output_dir_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot write"):
        outputs.prepare_output_dir(_tiny(blocker / "sub"))


def test_cli_refuses_mismatch_with_one_line(tmp_path):
    outputs.prepare_output_dir(_tiny(tmp_path))
    proc = _run_cli(tmp_path, "--di_beta=0.5")
    out, _ = proc.communicate(timeout=300)
    lines = [line for line in out.splitlines() if "error" in line]
    assert proc.returncode == 2
    assert len(lines) == 1 and "different configuration" in lines[0]
    assert "Traceback" not in out


def test_tiny_search_under_mirrored_strategy(tmp_path):
    """The search on two replicas (conftest's two logical CPUs) ends with a valid result."""
    from di_nas.training.search import run_search

    cfg = _tiny(tmp_path, space={"name": "nb201", "num_cells": 1},
                distribute={"strategy": "mirrored"})
    result = run_search(cfg)
    load_architecture(str(tmp_path / "best_architecture.json"), "nb201")
    assert 0.0 <= result["best"]["accuracy"] <= 1.0


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
