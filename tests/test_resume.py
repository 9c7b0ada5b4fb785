"""Resuming: damaged checkpoints, files rolled back with a checkpoint, exact resume after kills.

The kill test runs a tiny deterministic search uninterrupted, then kills copies of it with
SIGKILL (and one SIGTERM) at a few moments and resumes each; every resumed run must end with
the same candidates.json, trials.jsonl and supernet weights (bitwise). tests/resume_stress.py
runs the same check for 20 random kill moments.
"""

import os
import signal

import pytest
import tensorflow as tf

from di_nas.errors import UserError
from di_nas.training import checkpoints


def _keeper(directory, value=0.0):
    weights = tf.Variable(tf.fill([64], value))
    return weights, checkpoints.CheckpointKeeper(str(directory), weights=weights)


def _truncate(prefix):
    data = f"{prefix}.data-00000-of-00001"
    with open(data, "r+b") as f:
        f.truncate(os.path.getsize(data) // 2)


def test_damaged_newest_checkpoint_falls_back_with_a_warning(tmp_path, capsys):
    weights, keeper = _keeper(tmp_path)
    for n in (1, 2):
        weights.assign(tf.fill([64], float(n)))
        keeper.save(n)
    _truncate(keeper.latest)
    restored, again = _keeper(tmp_path)
    assert again.restore_latest().endswith("ckpt-1")
    assert float(restored[0]) == 1.0
    out = capsys.readouterr().out
    assert "warning: checkpoint" in out and "ckpt-2 is unusable" in out


def test_no_usable_checkpoint_is_one_clear_error(tmp_path):
    weights, keeper = _keeper(tmp_path)
    keeper.save(1)
    with open(f"{keeper.latest}.index", "wb") as f:
        f.write(b"\0garbage")
    with pytest.raises(UserError, match=f"delete {tmp_path} to start the job over") as info:
        _keeper(tmp_path)[1].restore_latest()
    assert "\n" not in str(info.value)


def test_files_roll_back_to_the_checkpoint_that_recorded_them(tmp_path):
    files = tmp_path / "oracle"
    files.mkdir()
    (files / "trials.jsonl").write_text('{"t": 0}\n')
    (files / "state.json").write_text('{"n": 1}')
    checkpoint = tf.train.Checkpoint(files=checkpoints.FileLedger(str(files)))
    manager = tf.train.CheckpointManager(checkpoint, str(tmp_path / "ckpt"), max_to_keep=2)
    manager.save()
    with open(files / "trials.jsonl", "a") as f:
        f.write('{"t": 1}\n{"t": 2')  # a trial after the checkpoint, and one cut short
    (files / "state.json").write_text('{"n": 3}')
    (files / "new.json").write_text("{}")
    path = checkpoints.roll_back(str(tmp_path / "ckpt"), str(files))
    assert path == manager.latest_checkpoint
    assert sorted(os.listdir(files)) == ["state.json", "trials.jsonl"]
    assert (files / "trials.jsonl").read_text() == '{"t": 0}\n'
    assert (files / "state.json").read_text() == '{"n": 1}'
    checkpoints.roll_back(str(tmp_path / "none"), str(files))  # no checkpoint: start over
    assert os.listdir(files) == []


def test_a_worker_rolls_its_own_files_back_to_the_chiefs_checkpoint(tmp_path):
    """A non-chief worker (an empty files directory of its own) resuming from the chief's
    checkpoint gets the chief's files as that checkpoint recorded them, logs included."""
    chief = tmp_path / "oracle"
    chief.mkdir()
    (chief / "trials.jsonl").write_text('{"t": 0}\n')
    (chief / "state.json").write_text('{"n": 1}')
    checkpoint = tf.train.Checkpoint(files=checkpoints.FileLedger(str(chief)))
    manager = tf.train.CheckpointManager(checkpoint, str(tmp_path / "ckpt"), max_to_keep=2)
    manager.save()
    with open(chief / "trials.jsonl", "a") as f:
        f.write('{"t": 1}\n')  # the chief ran on past its checkpoint
    worker = tmp_path / "worker1" / "oracle"
    path = checkpoints.roll_back(str(tmp_path / "ckpt"), str(worker), source_dir=str(chief))
    assert path == manager.latest_checkpoint
    assert sorted(os.listdir(worker)) == ["state.json", "trials.jsonl"]
    assert (worker / "trials.jsonl").read_text() == '{"t": 0}\n'
    assert (worker / "state.json").read_text() == '{"n": 1}'
    assert (chief / "trials.jsonl").read_text() == '{"t": 0}\n{"t": 1}\n'  # read, not changed


def _rounds(out):
    path = os.path.join(out, "oracle", "trials.jsonl")
    return open(path).read().count("\n") if os.path.exists(path) else 0


@pytest.mark.slow
def test_search_killed_in_the_controller_phase_and_in_derive_resumes_exactly(tmp_path):
    """SIGKILL after a controller round that follows the last checkpoint (its trial must be
    rolled back, not duplicated), then SIGKILL during derive: the resumed search ends with
    the uninterrupted run's candidates, trials and checkpointed tensors (supernet, momentum,
    projectors and the REINFORCE controller), bitwise."""
    import resume_stress as stress

    extra = ["--epochs=2"]
    stress.run(str(tmp_path / "straight"), extra)
    expected = stress.outcome(str(tmp_path / "straight"))
    out = str(tmp_path / "killed")
    per_epoch = _rounds(str(tmp_path / "straight")) // 2  # trials; epoch 1 then checkpoints

    def in_epoch_2_controller_phase(o, log):
        return "epoch 1/2" in log and _rounds(o) > per_epoch

    assert stress.interrupt(out, extra, 600, signal.SIGKILL, in_epoch_2_controller_phase)
    assert _rounds(out) > per_epoch and not os.path.exists(os.path.join(out, "result.json"))
    assert stress.interrupt(out, extra, 600, signal.SIGKILL, lambda _, log: "epoch 2/2" in log)
    assert not os.path.exists(os.path.join(out, "result.json"))
    stress.run(out, extra)
    log = open(f"{out}.log").read()
    assert log.count("resuming from epoch 2") == 1 and "resuming from epoch 3" in log
    assert stress.differences(expected, stress.outcome(out)) == []


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
