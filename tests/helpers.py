"""What several test files need: the repository root, a runner for the command-line tools and a
writer of tiny synthetic npz datasets.

Test-only; imports nothing of the library, so a test can run a CLI without importing TF twice.
"""

import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli_env(**extra) -> dict:
    """The environment a CLI subprocess runs in: this checkout first on the path, TF quiet."""
    return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                TF_CPP_MIN_LOG_LEVEL="2", **extra)


def run_cli(cmd, *args, cwd=ROOT, timeout=180):
    """Runs `python -m di_nas.cli.<cmd> args...` to the end; output captured as text."""
    return subprocess.run([sys.executable, "-m", f"di_nas.cli.{cmd}", *args], cwd=cwd,
                          env=cli_env(), capture_output=True, text=True, timeout=timeout)


def write_npz(path, n_train=64, n_test=20, classes=3, seed=0) -> str:
    """A tiny `npz:` dataset of random 8x8 grey images with cyclic labels; returns its path."""
    rng = np.random.default_rng(seed)
    np.savez(path, x_train=rng.integers(0, 256, (n_train, 8, 8, 1), dtype=np.uint8),
             y_train=np.arange(n_train) % classes,
             x_test=rng.integers(0, 256, (n_test, 8, 8, 1), dtype=np.uint8),
             y_test=np.arange(n_test) % classes)
    return str(path)
