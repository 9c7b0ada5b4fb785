"""What several test files need: the repository root and a runner for the command-line tools.

Test-only; imports nothing of the library, so a test can run a CLI without importing TF twice.
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli_env(**extra) -> dict:
    """The environment a CLI subprocess runs in: this checkout first on the path, TF quiet."""
    return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                TF_CPP_MIN_LOG_LEVEL="2", **extra)


def run_cli(cmd, *args, cwd=ROOT, timeout=180):
    """Runs `python -m di_nas.cli.<cmd> args...` to the end; output captured as text."""
    return subprocess.run([sys.executable, "-m", f"di_nas.cli.{cmd}", *args], cwd=cwd,
                          env=cli_env(), capture_output=True, text=True, timeout=timeout)
