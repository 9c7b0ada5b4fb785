"""The strategy factory, its helpers, and the shared-weight step under a `MirroredStrategy`.

`conftest.py` splits the CPU into two logical devices, so `--strategy=mirrored` runs two
replicas here. The step tests use `tests/tiny_supernet.py` (seconds to trace) because the
mechanics under test (all-reduce, one merged masked update per bank, projectors) do not
depend on the cell.
"""

import json
import os
import time

import numpy as np
import pytest
import tensorflow as tf

from di_nas import config as config_lib
from di_nas import distribute
from di_nas.errors import UserError
from di_nas.search_space import get_space
from di_nas.supernet import build_supernet, xla
from di_nas.training import loops
from di_nas.training.shared_step import SharedWeightTrainer
from tests import tiny_supernet as tiny

B = 4  # Per-replica batch.
STEPS = 5
PLAIN_SGD = config_lib.OptimConfig(learning_rate=0.1, learning_rate_min=0.1, momentum=0.0,
                                   nesterov=False, weight_decay=0.0, grad_clip_norm=0.0)
# The replica-equivalence test uses the paper's mean inputs: their all-reduced mean is exactly
# the one-replica mean. Covariance moments are centred per replica (as per-replica batch norm
# centres), so there only the replicas' agreement is checked.
DI = config_lib.DIConfig(beta=1e-2, reset="never", inputs="mean")
DI_COVARIANCE = config_lib.DIConfig(beta=1.0, reset="never", inputs="covariance")


def mirrored():
    return distribute.get_strategy(config_lib.DistributeConfig(strategy="mirrored"))


# Factory and helpers ---------------------------------------------------------------------------


def test_default_strategy_is_tf_default():
    strategy = distribute.get_strategy(config_lib.DistributeConfig())
    assert strategy is tf.distribute.get_strategy()
    assert distribute.is_chief(strategy)
    assert distribute.write_dir("/out", strategy) == "/out"


def test_mirrored_uses_logical_cpus_or_named_devices():
    strategy = mirrored()
    assert strategy.num_replicas_in_sync == 2
    assert distribute.is_chief(strategy)
    one = distribute.get_strategy(
        config_lib.DistributeConfig(strategy="mirrored", devices="/cpu:0"))
    assert one.num_replicas_in_sync == 1


@pytest.mark.parametrize("value, match", [
    (None, "needs the TF_CONFIG"),
    ("{not json", "not valid JSON"),
    ('{"cluster": {"worker": ["a:1"]}}', "needs 'cluster' and 'task'"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}',
     "is not in its cluster"),
])
def test_multi_worker_needs_a_valid_tf_config(monkeypatch, value, match):
    if value is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(UserError, match=match):
        distribute.get_strategy(config_lib.DistributeConfig(strategy="multi_worker"))


def test_check_tf_config_accepts_a_cluster():
    text = json.dumps({"cluster": {"worker": ["a:1", "b:2"]},
                       "task": {"type": "worker", "index": 1}})
    assert distribute.check_tf_config(text)["task"]["index"] == 1


def test_tpu_without_a_name_says_how_to_fix():
    with pytest.raises(UserError, match="--tpu=local on a TPU VM"):
        distribute.get_strategy(config_lib.DistributeConfig(strategy="tpu"))


def test_batch_and_learning_rate_helpers():
    strategy = mirrored()
    assert distribute.global_batch(8, strategy) == 16
    assert distribute.per_replica_batch(16, strategy) == 8
    with pytest.raises(UserError, match="multiple of 2"):
        distribute.per_replica_batch(15, strategy)
    assert distribute.scale_learning_rate(0.05, 1280, 160) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        distribute.scale_learning_rate(0.05, 0, 160)


def test_run_steps_reduces_over_replicas_and_steps():
    strategy = mirrored()
    images = np.arange(16, dtype=np.float32).reshape(16, 1)
    ds = tf.data.Dataset.from_tensor_slices((images, images)).batch(4, drop_remainder=True)

    def step(x, y, offset):
        return {"mean": tf.reduce_mean(x) + offset, "n": tf.cast(tf.size(y), tf.float32)}

    loop = loops.compile_steps(strategy, step, args_fn=lambda s: (tf.cast(s, tf.float32),),
                               metrics=("mean",))
    out = loop(iter(distribute.distribute_dataset(strategy, ds)), tf.constant(4))
    # Batches 0..3 hold 0-3, 4-7, ...; step s adds s: mean over steps of (4s + 1.5 + s).
    assert float(out["mean"]) == pytest.approx(np.mean([5 * s + 1.5 for s in range(4)]))
    sums = loops.compile_steps(strategy, step, args_fn=lambda s: (0.0,), metrics=("n",),
                               reduce_op=tf.distribute.ReduceOp.SUM)
    out = sums(iter(distribute.distribute_dataset(strategy, ds)), tf.constant(3))
    assert float(out["n"]) == 12.0
    each = loops.compile_steps(strategy, step, args_fn=lambda s: (0.0,), metrics=("mean",),
                               per_step=True)
    out = each(iter(distribute.distribute_dataset(strategy, ds)), tf.constant(3))
    np.testing.assert_allclose(out["mean"].numpy(), [1.5, 5.5, 9.5])
    # Host batches reach the replicas in order, each split as a dataset's global batch is.
    host = [(images[4 * i:4 * i + 4], images[4 * i:4 * i + 4]) for i in range(3)]
    out = each(distribute.host_batches(strategy, host), tf.constant(3))
    np.testing.assert_allclose(out["mean"].numpy(), [1.5, 5.5, 9.5])


def test_shared_loop_traces_once_for_every_architecture_and_chunk():
    """Chunks of 1, 2 and 3 steps on three architectures: one trace, per-step losses, and the
    trainer's step counts every step; evaluation sums over batches."""
    strategy = tf.distribute.get_strategy()
    trainer = SharedWeightTrainer(tiny.TinySupernet(), PLAIN_SGD, DI, total_steps=STEPS)
    loop = loops.SharedLoop(trainer)
    images, labels = tiny.examples(6 * B)
    batches = [(images[i * B:(i + 1) * B], labels[i * B:(i + 1) * B]) for i in range(6)]
    start = 0
    for steps in (1, 2, 3):
        chunk = batches[start:start + steps]
        iterator = distribute.host_batches(strategy, chunk)
        out = loop.train(iterator, steps, tiny.arch_for_step(steps))
        assert out["loss"].shape == (steps,) and np.all(np.isfinite(out["loss"].numpy()))
        start += steps
    assert int(trainer.step.numpy()) == 6
    split = [distribute.split_batch(strategy, x, y) for x, y in batches[:2]]
    result = loop.evaluate(split, tiny.arch_for_step(0))
    assert 0.0 <= result["accuracy"] <= 1.0 and np.isfinite(result["loss"])
    rewards = loop.rewards(*split[0], tf.stack([tiny.arch_for_step(s) for s in range(3)]))
    assert rewards.shape == (3,)
    assert loop.tracing_counts() == {"train": 1, "train_batch": 0, "eval_batch": 1,
                                     "rewards": 1}



# The shared-weight step on two replicas --------------------------------------------------------


def _train(strategy, images, labels, bn_group, di=DI):
    with strategy.scope():
        net = tiny.TinySupernet(bn_group=bn_group)
        trainer = SharedWeightTrainer(net, PLAIN_SGD, di, total_steps=STEPS)
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(2 * B, drop_remainder=True)
    loop = loops.SharedLoop(trainer, sample=lambda: tiny.arch_for_step(trainer.step),
                            strategy=strategy)
    metrics = loop.train(iter(distribute.distribute_dataset(strategy, ds)), STEPS)
    return net, trainer, {k: float(np.mean(v)) for k, v in metrics.items()}


@pytest.fixture(scope="module")
def two_vs_one():
    """Five DI steps with plain SGD on two replicas (global batch 2B) and on one replica.

    Data parallelism with per-replica batch norm means: each replica normalises its own B
    examples, and the update uses the mean of the two halves' gradients (and of their DI mean
    inputs). The one-replica reference must do the same, so its net normalises each half of
    its 2B batch separately (`bn_group=B`, ghost batch norm); everything else is the same
    code. With ordinary batch norm over all 2B examples the two runs would differ by design.
    """
    images, labels = tiny.examples(STEPS * 2 * B)
    start = time.time()
    two = _train(mirrored(), images, labels, bn_group=None)
    one = _train(tf.distribute.get_strategy(), images, labels, bn_group=B)
    return two, one, time.time() - start


def _assert_replicas_identical(net, trainer):
    strategy = net.banks[0].variable.value.distribute_strategy
    for var in ([b.variable.value for b in net.banks] + list(trainer.momentum.values())
                + list(trainer.projectors.values())):
        first, second = strategy.experimental_local_results(var)
        np.testing.assert_array_equal(first.numpy(), second.numpy(), err_msg=var.name)
    assert int(trainer.step.numpy()) == STEPS
    # DI did act: some projector rows moved away from the identity.
    moved = [k for k, p in trainer.projectors.items()
             if not np.allclose(p.numpy(), np.eye(p.shape[-1]), atol=1e-6)]
    assert {"conv_3x3x1x4", "depthwise_3x3x4x1", "dense_4x4"} <= set(moved)


def test_replicas_keep_identical_weights_and_projectors(two_vs_one):
    (net, trainer, _), _, _ = two_vs_one
    _assert_replicas_identical(net, trainer)


def test_covariance_di_keeps_replicas_identical():
    images, labels = tiny.examples(STEPS * 2 * B)
    net, trainer, metrics = _train(mirrored(), images, labels, None, di=DI_COVARIANCE)
    assert np.isfinite(metrics["loss"])
    _assert_replicas_identical(net, trainer)


def test_two_replicas_match_one_replica_with_the_same_examples(two_vs_one):
    (net2, trainer2, metrics2), (net1, trainer1, metrics1), _ = two_vs_one
    arrays2, arrays1 = tiny.bank_arrays(net2, trainer2), tiny.bank_arrays(net1, trainer1)
    assert arrays2.keys() == arrays1.keys()
    initial = tiny.TinySupernet()
    changed = 0
    for name in arrays1:
        np.testing.assert_allclose(arrays2[name], arrays1[name], atol=1e-4, err_msg=name)
    for bank, fresh in zip(net1.banks, initial.banks, strict=True):
        changed += int(not np.array_equal(bank.variable.numpy(), fresh.variable.numpy()))
    assert changed >= 4  # The steps did train something.
    assert metrics2["loss"] == pytest.approx(metrics1["loss"], abs=1e-4)
    assert metrics2["accuracy"] == pytest.approx(metrics1["accuracy"], abs=1e-6)


# XLA (the path TPUs take) ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("space", ["nb201", "enas_micro"])
def test_supernet_forward_compiles_with_xla_on_cpu(space):
    """Each supernet's forward (the search's reward path) under `jit_compile=True` equals the
    default graph's.

    enas_micro reads node inputs from a `TensorList` whose element shape is a constant here:
    a shape computed in the graph made XLA's value inference evaluate the network feeding the
    list at compile time (minutes for this one cell). Its whole DI step compiles too, in
    minutes on a CPU: `tests/test_precision.py` checks it under the `xla` marker.
    """
    space_cfg = config_lib.SpaceConfig(name=space, num_layers=1, filters=4, stem_multiplier=1,
                                       num_cells=1)
    net = build_supernet(space, 4, (6, 6, 1), space_cfg, seed=0)
    images, _ = tiny.examples(4)
    arch = get_space(space).sample(np.random.default_rng(3)).to_tensor()
    compiled = tf.function(lambda x, a: net(x, a), jit_compile=True)(images, arch)
    np.testing.assert_allclose(compiled.numpy(), net(images, arch).numpy(), atol=1e-4)


def test_supernet_control_flow_does_not_ask_xla_for_constants():
    """The switch/cond ops of a compiled forward and backward pass (the gradient's own
    included) carry `_xla_propagate_compile_time_consts` off: on, XLA evaluates the network
    feeding every such op while compiling (`di_nas.supernet.xla`)."""
    space_cfg = config_lib.SpaceConfig(name="enas_micro", num_layers=1, filters=4,
                                       stem_multiplier=1)
    net = build_supernet("enas_micro", 4, (6, 6, 1), space_cfg, seed=0)
    trainer = SharedWeightTrainer(net, config_lib.OptimConfig(), DI, total_steps=STEPS,
                                  jit_compile=True)
    images, labels = tiny.examples(4)
    arch = get_space("enas_micro").sample(np.random.default_rng(0)).to_tensor()
    graph = trainer._forward_backward.get_concrete_function(images, labels, arch).graph
    flags = [op.node_def.attr[xla.ATTR].b for op in graph.get_operations()
             if op.type in xla.CONTROL_FLOW and xla.ATTR in op.node_def.attr]
    assert len(flags) > 40  # Forward and gradient switch_cases and conds.
    assert not any(flags)


@pytest.mark.slow
@pytest.mark.parametrize("di", [DI, DI_COVARIANCE], ids=["mean", "covariance"])
def test_train_step_compiles_with_xla_on_cpu(di):
    """The per-replica DI train step under `jit_compile=True` matches the plain graph.

    This is the body TPUStrategy hands to XLA. It uses the tiny net: the nb201 supernet's DI
    step (num_cells=1, filters=4) also compiles on CPU, but in ~100 s of CPU time (385 s on
    the shared test machine), too long for the suite.
    """
    images, labels = tiny.examples(2 * B)
    runs = {}
    for jit in (False, True):
        net = tiny.TinySupernet()
        trainer = SharedWeightTrainer(net, config_lib.OptimConfig(), di, total_steps=STEPS,
                                      static_shapes=jit)
        step = tf.function(lambda x, y, a, t=trainer: t.train_step(x, y, a), jit_compile=jit)
        for i in range(2):
            step(images, labels, tiny.arch_for_step(tf.constant(i + 3)))
        runs[jit] = tiny.bank_arrays(net, trainer)
    for name in runs[False]:
        np.testing.assert_allclose(runs[True][name], runs[False][name], atol=1e-5, err_msg=name)


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([os.path.abspath(__file__), "-q"]))
