"""Two worker processes on localhost under `MultiWorkerMirroredStrategy`.

The test starts this file twice as a script (one process per worker, `TF_CONFIG` per
process, free loopback ports, one CPU device each: conftest's two-device split applies only to
the pytest process). Each worker runs a few disturbance-immune shared-weight steps on
`tests/tiny_supernet.py`, dumps its banks, momentum and projectors to a path the test gives,
and writes the job's results through `distribute.write_dir`. The test checks that both workers
end with bitwise-equal state and that only the chief wrote into the output directory.
The search tests run `di-nas-search --strategy=multi_worker` on two such processes: to the end,
and stopped by SIGTERM to one worker (`training.preemption`) then started again.
"""

import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT

NUM_WORKERS = 2
STEPS = 3
TIMEOUT_S = 240  # Each worker traces once (~15-30 s on a busy 2-core machine).


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _start_workers(command, ports):
    """Starts `command(index)` as each worker of a localhost cluster on `ports`; returns the
    processes (output to a pipe)."""
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(NUM_WORKERS):
        env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2",
                   CUDA_VISIBLE_DEVICES="",
                   TF_CONFIG=json.dumps({"cluster": cluster,
                                         "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen(command(index), env=env, cwd=ROOT,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    return procs


def _wait_workers(procs, returncode=0):
    """Waits for every worker; returns their logs once all exited with `returncode` (fails
    the test otherwise)."""
    logs = []
    try:
        for proc in procs:
            logs.append(proc.communicate(timeout=TIMEOUT_S)[0])
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        pytest.fail(f"workers did not finish within {TIMEOUT_S} s")
    for index, (proc, log) in enumerate(zip(procs, logs, strict=True)):
        assert proc.returncode == returncode, f"worker {index} failed:\n{log[-3000:]}"
    return logs


def _run_workers(command):
    """Runs `command(index)` as each worker of a localhost cluster; returns their logs once
    all exited 0 (fails the test otherwise)."""
    return _wait_workers(_start_workers(command, _free_ports(NUM_WORKERS)))


@pytest.mark.slow
def test_two_workers_stay_in_sync_and_only_the_chief_writes(tmp_path):
    output_dir = tmp_path / "run"
    _run_workers(lambda index: [sys.executable, os.path.abspath(__file__), str(output_dir),
                                str(tmp_path / f"dump{index}.npz")])

    dumps = [dict(np.load(tmp_path / f"dump{i}.npz")) for i in range(NUM_WORKERS)]
    assert dumps[0].keys() == dumps[1].keys() and any(k.startswith("projector/") for k in dumps[0])
    for key in dumps[0]:
        np.testing.assert_array_equal(dumps[0][key], dumps[1][key], err_msg=key)
    moved = [k for k, v in dumps[0].items() if k.startswith("projector/")
             and not np.allclose(v, np.eye(v.shape[-1]), atol=1e-6)]
    assert moved, "DI never updated a projector"

    # Only the chief (worker 0) wrote into output_dir; worker 1 wrote to a temp dir.
    results = json.loads((output_dir / "results.json").read_text())
    assert results["task_index"] == 0 and results["steps"] == STEPS
    assert sorted(p.name for p in output_dir.iterdir()) == ["checkpoint", "results.json"]
    other = json.loads((tmp_path / "dump1.json").read_text())["write_dir"]
    assert not other.startswith(str(output_dir))
    assert not os.path.exists(other)  # Removed when worker 1 exited.


SEARCH_FLAGS = [
    "--space=nb201", "--num_cells=1", "--filters=4", "--batch_size=16", "--eval_batch_size=16",
    "--epochs=2", "--steps_per_epoch=3", "--controller_steps_per_epoch=2",
    "--controller_aggregate=2", "--controller_lstm_units=8", "--num_candidates=3",
    "--log_every=3", "--strategy=multi_worker",
]


@pytest.mark.slow
def test_sigterm_to_one_worker_checkpoints_every_worker_and_the_job_resumes(tmp_path):
    """`di-nas-search --strategy=multi_worker` on two local processes. SIGTERM to the
    non-chief worker mid-epoch: through TensorFlow's PreemptionCheckpointHandler every worker
    saves at the same chunk and exits with status 130 and one line; the same command on both
    workers resumes mid-epoch and finishes, both derive the same best architecture (same
    weights and controller), and only the chief writes to the output directory."""
    output_dir = tmp_path / "search"
    # One epoch of 6 one-step chunks; the random controller keeps the policy's traces out.
    flags = [*SEARCH_FLAGS, "--epochs=1", "--steps_per_epoch=6", "--log_every=1",
             "--controller=random", "--controller_steps_per_epoch=1", "--num_candidates=2",
             f"--output_dir={output_dir}"]
    ports = _free_ports(NUM_WORKERS)

    def command(index):
        return [sys.executable, "-m", "di_nas.cli.search", *flags]

    procs = _start_workers(command, ports)
    # The handler runs once a worker has built its network; the signal then reaches worker 1
    # while the first chunk traces (seconds), well before the epoch's 6 chunks are done.
    line = procs[1].stdout.readline()
    while line and "search network:" not in line:
        line = procs[1].stdout.readline()
    assert line, "worker 1 ended before its network was built"
    procs[1].send_signal(signal.SIGTERM)
    logs = _wait_workers(procs, returncode=130)
    for index, log in enumerate(logs):
        stops = [x for x in log.splitlines() if x.startswith("di-nas-search: interrupted:")]
        assert len(stops) == 1 and "stopped in epoch 1" in stops[0], log[-2000:]
        assert ("this worker" if index else "another worker") in stops[0], stops
        assert "Traceback" not in log, log[-2000:]
    assert not (output_dir / "result.json").exists()

    logs = _wait_workers(_start_workers(command, ports))
    for log in logs:
        resumed = [x for x in log.splitlines() if "resuming from epoch 1 (step" in x]
        assert resumed, log[-2000:]
        step = int(resumed[0].split("(step ")[1].split(")")[0])
        assert 0 < step < 6, resumed  # mid-epoch, as every worker's checkpoint says
    best = [[x for x in log.splitlines() if x.startswith("best architecture")] for log in logs]
    assert best[0] and best[0] == best[1], best
    assert json.loads((output_dir / "result.json").read_text())["best"]
    assert (output_dir / "best_architecture.json").exists()
    # The other worker's checkpoints and oracle went to a temporary directory.
    assert sorted(p.name for p in (output_dir / "checkpoints").iterdir()) == [
        "checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index",  # The preemption save.
        "ckpt-2.data-00000-of-00001", "ckpt-2.index"]  # The end of the epoch.


# The worker ------------------------------------------------------------------------------------


def worker(output_dir, dump_path):
    """One worker: strategy first (before any other TF op), then steps, dumps and results."""
    import shutil

    import tensorflow as tf

    from di_nas import config as config_lib
    from di_nas import distribute

    strategy = distribute.get_strategy(config_lib.DistributeConfig(strategy="multi_worker"))
    from di_nas.training.loops import SharedLoop
    from di_nas.training.shared_step import SharedWeightTrainer
    from tests import tiny_supernet as tiny

    per_replica = 4
    batch = distribute.global_batch(per_replica, strategy)
    with strategy.scope():
        net = tiny.TinySupernet()
        trainer = SharedWeightTrainer(net, config_lib.OptimConfig(),
                                      config_lib.DIConfig(beta=1e-2, reset="never"),
                                      total_steps=STEPS)
    images, labels = tiny.examples(STEPS * batch)
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).repeat().batch(
        batch, drop_remainder=True)
    loop = SharedLoop(trainer, sample=lambda: tiny.arch_for_step(trainer.step),
                      strategy=strategy)
    metrics = loop.train(iter(distribute.distribute_dataset(strategy, ds)), STEPS)

    target = distribute.write_dir(output_dir, strategy)
    # Checkpointing is collective: every worker saves, non-chief workers into a temp dir.
    tf.train.Checkpoint(trainer=trainer).write(os.path.join(target, "checkpoint", "ckpt"))
    if distribute.is_chief(strategy):
        tf.io.gfile.makedirs(target)
        with tf.io.gfile.GFile(os.path.join(target, "results.json"), "w") as f:
            json.dump({"task_index": strategy.cluster_resolver.task_id,
                       "steps": int(trainer.step.numpy()),
                       "loss": float(np.mean(metrics["loss"]))}, f)
    np.savez(dump_path, **tiny.bank_arrays(net, trainer))
    with open(dump_path.replace(".npz", ".json"), "w") as f:
        json.dump({"write_dir": target}, f)
    if target != output_dir:
        shutil.rmtree(target, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 3:  # A worker process that the test above launched.
        worker(sys.argv[1], sys.argv[2])
    else:
        raise SystemExit(pytest.main([__file__]))
