"""Each script in examples/ runs on tiny data and prints what its docstring promises."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT


def _run(script, *args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, os.path.join(ROOT, "examples", script), *args],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_continual_digits_prints_the_four_accuracies():
    out = _run("continual_digits.py", "--epochs=1", "--limit=64")
    assert set(out) == {"a_acc_after_b_plain", "a_acc_after_b_di", "b_acc_plain", "b_acc_di"}
    assert all(0.0 <= v <= 1.0 for v in out.values())


def test_search_arrays_searches_trains_and_exports(tmp_path):
    out = _run("search_arrays.py", f"--output_dir={tmp_path}", "--tiny")
    assert 0.0 <= out["test_accuracy"] <= 1.0 and os.path.isdir(out["saved_model"])


def test_tuner_reinforce_prints_both_best_scores():
    out = _run("tuner_reinforce.py", "--trials=8")
    assert out["policy_steps"] == 2 and 0.0 <= out["random_best"] <= 1.0


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
