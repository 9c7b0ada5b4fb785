"""Final training: checkpoints, the child's auxiliary head and drop path, a tiny end-to-end run,
exact resuming after SIGKILL or SIGTERM, and one-line errors from the command line.

Data is a tiny synthetic npz (4 steps an epoch), so a run takes seconds; no network is used.
"""

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from di_nas import config
from di_nas import io as dio
from di_nas.child import DropPath, build_child, set_drop_path_scale
from di_nas.errors import UserError
from di_nas.search_space import get_space
from di_nas.training import checkpoints, final, progress
from tests.helpers import ROOT, run_cli, write_npz


def write_arch(path, seed=0):
    arch = get_space("enas_micro").sample(np.random.default_rng(seed))
    arch.save(str(path))
    return arch


def tiny_cfg(tmp_path, **final_values):
    npz = write_npz(tmp_path / "data.npz")
    arch = tmp_path / "arch.json"
    if not arch.exists():
        write_arch(arch)
    cfg = config.tiny(output_dir=str(tmp_path / "out"))
    return cfg.replace(data={"dataset": f"npz:{npz}"},
                       final={"architecture": str(arch), "epochs": 2, **final_values})


# TensorFlow 2.21 logs through absl before absl::InitializeLog(), which ignores
# TF_CPP_MIN_LOG_LEVEL (abseil/abseil-cpp#1957): these start-up lines are not ours.
_TF_STARTUP = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)"
                         r"|[IWE]\d{4} [\d:.]+ +\d+ \S+:\d+\] )")


def error_lines(stderr):
    """The lines of ``stderr`` a di-nas command wrote (TensorFlow's start-up logs dropped)."""
    return [line for line in stderr.splitlines() if line.strip() and not _TF_STARTUP.match(line)]


def test_checkpoint_keeper_restores_and_survives_an_interrupted_save(tmp_path, monkeypatch):
    directory = str(tmp_path / "ckpt")
    weights, epoch = tf.Variable([1.0, 2.0]), tf.Variable(0, dtype=tf.int64)
    keeper = checkpoints.CheckpointKeeper(directory, weights=weights, epoch=epoch)
    assert not keeper.restore_latest()
    epoch.assign(1)
    keeper.save(1)

    # A kill after the new files are written but before the state file names them: the
    # CheckpointManager writes data first and the state file (atomically) in a callback after.
    weights.assign([5.0, 6.0])
    epoch.assign(2)
    monkeypatch.setattr(tf.train.CheckpointManager, "_record_state",
                        lambda self: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        keeper.save(2)
    monkeypatch.undo()
    # ... and a kill half-way through writing files: a truncated index of checkpoint 3.
    with open(os.path.join(directory, "ckpt-3.index"), "wb") as f:
        f.write(b"\x00garbage")

    weights2, epoch2 = tf.Variable([0.0, 0.0]), tf.Variable(0, dtype=tf.int64)
    again = checkpoints.CheckpointKeeper(directory, weights=weights2, epoch=epoch2)
    assert again.restore_latest() and again.latest.endswith("ckpt-1")
    assert int(epoch2) == 1 and weights2.numpy().tolist() == [1.0, 2.0]
    epoch2.assign(2)
    again.save(2)  # overwrites the half-written files of the interrupted save
    assert checkpoints.latest_checkpoint(directory).endswith("ckpt-2")


def test_atomic_write_leaves_no_temporary_file(tmp_path):
    path = str(tmp_path / "m.json")
    dio.atomic_write_json(path, {"a": 1})
    dio.atomic_write_json(path, {"a": 2})
    assert dio.read_json(path) == {"a": 2} and os.listdir(tmp_path) == ["m.json"]


def test_child_auxiliary_head_and_drop_path():
    arch = get_space("enas_micro").sample(np.random.default_rng(1))
    plain = build_child(arch, 10, (8, 8, 1), num_layers=1, filters=4, stem_multiplier=1)
    full = build_child(arch, 10, (8, 8, 1), num_layers=1, filters=4, stem_multiplier=1,
                       auxiliary=True, drop_path=0.5)
    plain_names = {layer.name for layer in plain.layers if not layer.name.startswith(
        ("re_lu", "add", "concatenate", "lambda", "zero_padding", "average", "max_pool",
         "global"))}
    assert plain_names <= {layer.name for layer in full.layers}  # supernet site names kept
    assert not any(isinstance(layer, DropPath) for layer in plain.layers)
    drops = [layer for layer in full.layers if isinstance(layer, DropPath)]
    assert drops and max(d.rate for d in drops) <= 0.5
    x = tf.random.uniform([6, 8, 8, 1])
    logits, aux = full(x, training=False)
    assert logits.shape == aux.shape == (6, 10)
    again, _ = full(x, training=False)  # no drop path at inference
    np.testing.assert_allclose(logits.numpy(), again.numpy(), atol=1e-6)
    set_drop_path_scale(full, 0.0)
    assert all(float(d.scale) == 0.0 for d in drops)
    assert final.count_params(full) == final.count_params(plain)  # aux head not counted


def test_progress_helpers():
    assert progress.format_seconds(75.2) == "1m15s"
    assert progress.format_seconds(3725) == "1h02m05s"
    line = progress.epoch_line(3, 30, {"loss": 0.41234, "accuracy": 0.875}, 4.0, 112.0)
    assert line == "epoch 3/30 loss=0.4123 accuracy=0.875 (4s, ETA 1m52s)"


def test_tiny_final_training_end_to_end(tmp_path, monkeypatch, capsys):
    # Under a MirroredStrategy over conftest's two logical CPUs (the default strategy runs in
    # test_resume_after_sigkill and test_export).
    cfg = tiny_cfg(tmp_path, auxiliary_weight=0.4, drop_path=0.2, label_smoothing=0.1)
    cfg = cfg.replace(distribute={"strategy": "mirrored"})
    metrics = final.run_final_training(cfg)
    assert metrics["replicas"] == 2
    out = cfg.output_dir
    assert {"test_accuracy", "test_loss", "params", "epochs", "train_seconds"} <= set(metrics)
    assert metrics["epochs"] == 2 and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert np.isfinite(metrics["test_loss"]) and metrics["params"] > 0
    assert json.load(open(os.path.join(out, "metrics.json"))) == metrics
    saved = json.load(open(os.path.join(out, "architecture.json")))
    assert saved["values"] == json.load(open(cfg.final.architecture))["values"]
    last = checkpoints.latest_checkpoint(os.path.join(out, final.CHECKPOINT_DIR))
    assert last.endswith(f"-{2 * metrics['steps_per_epoch']}")  # numbered by step
    assert tf.io.gfile.glob(os.path.join(out, final.TENSORBOARD_DIR, "events.out.tfevents.*"))
    assert not tf.io.gfile.glob(os.path.join(out, "*.tmp-*"))
    assert "epoch 2/2" in capsys.readouterr().out

    # A finished run reports its metrics without training again.
    monkeypatch.setattr(final, "make_train_loop", None)
    assert final.run_final_training(cfg) == metrics
    assert "already trained" in capsys.readouterr().out
    # ... and the architecture defaults to the copy in --output_dir.
    assert final.run_final_training(cfg.replace(final={"architecture": None})) == metrics

    # A directory trained with other settings is not resumed.
    with pytest.raises(UserError, match="final.epochs"):
        final.run_final_training(cfg.replace(final={"epochs": 3}))


RESUME_EPOCHS = 4


@pytest.fixture(scope="module")
def resume_setup(tmp_path_factory):
    """Data (40 steps an epoch: 4 chunks), an architecture and one uninterrupted deterministic
    run; returns ``(args without --output_dir, the straight run's outcome)``."""
    tmp = tmp_path_factory.mktemp("resume")
    npz = write_npz(tmp / "data.npz", n_train=320)
    write_arch(tmp / "arch.json")
    args = [f"--architecture={tmp / 'arch.json'}", f"--dataset=npz:{npz}",
            f"--final_epochs={RESUME_EPOCHS}", "--final_batch_size=8", "--final_layers=1",
            "--final_filters=4", "--stem_multiplier=1", "--deterministic"]
    result = run_cli("train", *args, f"--output_dir={tmp / 'straight'}")
    assert result.returncode == 0, result.stderr
    return args, _outcome(tmp / "straight")


def _outcome(out) -> dict:
    """What a resumed run must reproduce: metrics.json but its time, and every tensor of the
    model and optimizer in the last checkpoint, bitwise."""
    metrics = json.loads((out / "metrics.json").read_text())
    metrics.pop("train_seconds")
    reader = tf.train.load_checkpoint(checkpoints.latest_checkpoint(
        str(out / final.CHECKPOINT_DIR)))
    tensors = {k: reader.get_tensor(k).tobytes() for k in reader.get_variable_to_dtype_map()
               if k.startswith(("model/", "optimizer/"))}
    assert tensors
    return {"metrics": metrics, **tensors}


def _interrupt(args, out, sig, epoch) -> str:
    """Starts ``di-nas-train``, sends ``sig`` as soon as it logs ``epoch`` (the first of the
    next epoch's four chunks is then running) and returns its output."""
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "di_nas.cli.train", *args,
                             f"--output_dir={out}"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(f"epoch {epoch}/{RESUME_EPOCHS} "):
            os.kill(proc.pid, sig)
            break
    output = "".join(lines) + proc.communicate()[0]
    assert not (out / "metrics.json").exists(), f"stopped too late:\n{output}"
    return output


def test_interrupted_training_resumes_exactly(resume_setup, tmp_path):
    """Stopped (SIGTERM: a checkpoint where it stands, mid-epoch) in epoch 2, resumed and
    killed (SIGKILL) in epoch 4, then resumed again: the same weights, optimizer state and
    metrics as the run never interrupted."""
    args, expected = resume_setup
    out = tmp_path / "out"
    output = _interrupt(args, out, signal.SIGTERM, 1)
    assert "stopped in epoch 2; checkpoint saved" in output, output
    output = _interrupt(args, out, signal.SIGKILL, 3)
    assert "resuming from epoch 2" in output, output
    result = run_cli("train", *args, f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    assert "resuming from epoch" in result.stdout
    got = _outcome(out)
    assert got["metrics"] == expected["metrics"]
    assert sorted(k for k in expected if got.get(k) != expected[k]) == []


def test_architecture_of_another_shape_is_refused(tmp_path):
    cfg = tiny_cfg(tmp_path)
    with open(cfg.final.architecture, "w") as f:
        json.dump({"space": "enas_micro", "values": [0, 1]}, f)
    with pytest.raises(UserError, match="needs 40 choices"):
        final.run_final_training(cfg)
    assert not os.path.exists(cfg.output_dir)


@pytest.mark.parametrize("content, fragment", [
    (None, "--architecture="),
    ("{not json", "is not valid JSON"),
])
def test_bad_architecture_is_one_line_error(tmp_path, content, fragment):
    args = [f"--output_dir={tmp_path / 'out'}"]
    if content is not None:
        (tmp_path / "a.json").write_text(content)
        args.append(f"--architecture={tmp_path / 'a.json'}")
    result = run_cli("train", *args)
    lines = error_lines(result.stderr)
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert lines[0].startswith("di-nas-train: error: ") and fragment in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
