"""Kill-and-resume stress test of the search (a script; tests/test_resume.py runs a few trials).

A tiny deterministic search (nb201, 3 epochs of 4 steps, `--deterministic --seed=3`) runs once
uninterrupted. Each trial then starts the same search in a fresh directory, kills it (SIGKILL,
every fourth trial SIGTERM) at a random moment after the network is built (shared-weight
phase, controller phase, derive or a checkpoint write), runs the same command again until it
finishes, and compares with the uninterrupted run: candidates.json and oracle/trials.jsonl
byte for byte, and every tensor of the last checkpoint (supernet weights, momentum,
projectors, controller) bitwise.

    python tests/resume_stress.py --trials=20 --workdir=/tmp/resume_stress [--controller=random]

Prints one line per trial and exits 1 if any resumed run differs.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = [
    "--space=nb201", "--num_cells=1", "--filters=4", "--batch_size=16", "--eval_batch_size=16",
    "--epochs=3", "--steps_per_epoch=4", "--controller_steps_per_epoch=2",
    "--controller_aggregate=2", "--controller_lstm_units=8", "--num_candidates=4",
    "--log_every=2", "--deterministic", "--seed=3",
]
STARTED = "search network:"  # printed once the network is built, before the first step


def start(out: str, extra: list[str]) -> tuple[subprocess.Popen, str]:
    """Starts a search into ``out``; returns the process and the file its output goes to."""
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    log = f"{out}.log"
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    with open(log, "a") as f:
        proc = subprocess.Popen([sys.executable, "-m", "di_nas.cli.search", *FLAGS, *extra,
                                 f"--output_dir={out}"], cwd=REPO, env=env, stdout=f,
                                stderr=subprocess.STDOUT)
    return proc, log


def _wait_started(proc: subprocess.Popen, log: str, runs: int) -> None:
    while proc.poll() is None:
        with open(log) as f:
            if f.read().count(STARTED) >= runs:
                return
        time.sleep(0.05)


def run(out: str, extra: list[str], timeout: float = 900) -> float:
    """Runs a search into ``out`` to its end; returns the seconds from STARTED to the end."""
    proc, log = start(out, extra)
    runs = open(log).read().count(STARTED) + 1
    _wait_started(proc, log, runs)
    began = time.monotonic()
    if proc.wait(timeout) != 0:
        raise RuntimeError(f"search into {out} failed:\n{open(log).read()[-3000:]}")
    return time.monotonic() - began


def interrupt(out: str, extra: list[str], delay: float, sig: int, when=None) -> bool:
    """Starts a search and sends ``sig`` ``delay`` s after STARTED, or as soon as
    ``when(out, log_text)`` is true; returns False if the search ended first."""
    proc, log = start(out, extra)
    _wait_started(proc, log, open(log).read().count(STARTED) + 1)
    deadline = time.monotonic() + delay
    while proc.poll() is None and time.monotonic() < deadline:
        if when is not None and when(out, open(log).read()):
            break
        time.sleep(0.01)
    if proc.poll() is not None:
        return False
    proc.send_signal(sig)
    proc.wait()
    return True


def outcome(out: str) -> dict[str, bytes]:
    """What must match: the result files and every tensor of the newest checkpoint."""
    import tensorflow as tf

    found = {name: open(os.path.join(out, name), "rb").read()
             for name in ("candidates.json", os.path.join("oracle", "trials.jsonl"))}
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(out, "checkpoints")))
    for key in sorted(reader.get_variable_to_dtype_map()):
        if not key.startswith(("save_counter", "_CHECKPOINTABLE_OBJECT_GRAPH")):
            value = reader.get_tensor(key)
            found[key] = value if isinstance(value, bytes) else value.tobytes()
    return found


def differences(expected: dict[str, bytes], got: dict[str, bytes]) -> list[str]:
    """Names of the files and tensors that differ (or exist in one outcome only)."""
    keys = (set(expected) | set(got)) - {"_dir"}
    return sorted(k for k in keys if expected.get(k) != got.get(k))


def _trials(out: str) -> int:
    path = os.path.join(out, "oracle", "trials.jsonl")
    return open(path).read().count("\n") if os.path.exists(path) else 0


def trial(workdir: str, n: int, extra: list[str], expected, span: float, rng) -> str:
    """One kill-and-resume trial; returns its report line (starting 'same' or 'DIFFERENT').

    Odd trials kill when ``oracle/trials.jsonl`` reaches a random length (a controller phase,
    most of the time ahead of the last checkpoint); even ones at a random time of the work
    (tracing and the shared-weight phases take most of it), every fourth with SIGTERM.
    """
    out = os.path.join(workdir, f"trial{n:02d}")
    shutil.rmtree(out, ignore_errors=True)
    sig = signal.SIGTERM if n % 4 == 2 else signal.SIGKILL
    delay, rounds = rng.uniform(0.0, span), rng.randrange(1, _trials(expected["_dir"]) + 1)
    when = (lambda o, _: _trials(o) >= rounds) if n % 2 else None
    while not interrupt(out, extra, 10 * span if when else delay, sig, when):
        shutil.rmtree(out, ignore_errors=True)  # ended before the kill: start over, sooner
        delay *= 0.7
    moment = f"at trial line {rounds}" if when else f"{delay:.1f}s after start of work"
    run(out, extra)
    diff = differences(expected, outcome(out))
    verdict = "same" if not diff else f"DIFFERENT ({', '.join(diff[:5])})"
    return f"{verdict}: trial {n} {signal.Signals(sig).name} {moment}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--workdir", default="/tmp/resume_stress")
    parser.add_argument("--controller", default="reinforce")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill moments")
    args = parser.parse_args(argv)
    extra = [f"--controller={args.controller}"]
    straight = os.path.join(args.workdir, "straight")
    shutil.rmtree(straight, ignore_errors=True)
    span = run(straight, extra)
    print(f"uninterrupted: {span:.1f}s of work", flush=True)
    expected = outcome(straight)
    expected["_dir"] = straight
    rng = random.Random(args.seed)
    lines = []
    for n in range(args.trials):
        lines.append(trial(args.workdir, n, extra, expected, span, rng))
        print(lines[-1], flush=True)
    same = sum(line.startswith("same") for line in lines)
    print(f"{same}/{len(lines)} resumed runs identical to the uninterrupted one")
    return 0 if same == len(lines) else 1


if __name__ == "__main__":
    raise SystemExit(main())
