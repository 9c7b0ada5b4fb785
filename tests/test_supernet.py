"""Supernets: a path computes exactly its standalone child, one trace serves every architecture,
a step moves only the path's rows, batch statistics everywhere, checkpoints round-trip.

Tiny networks (8x8x1 images, 8 filters, enas_micro with 1 normal + 2 reduction cells, nb201
with 1 cell per stage); one supernet and one traced train step per space for the module.
"""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from di_nas.child import build_child, load_path_weights
from di_nas.config import DIConfig, OptimConfig, SpaceConfig
from di_nas.errors import UserError
from di_nas.search_space import enas_micro, get_space
from di_nas.supernet import build_supernet
from di_nas.supernet import functional as F
from di_nas.supernet.enas import EnasMicroSupernet
from di_nas.supernet.nb201 import Nb201Supernet
from di_nas.training.shared_step import SharedWeightTrainer

SPACES = ["enas_micro", "nb201"]
IMAGE_SHAPE = (8, 8, 1)
NUM_CLASSES = 10
BATCH = 8


def space_cfg(name):
    return SpaceConfig(name=name, num_layers=1, filters=8, stem_multiplier=1, num_cells=1)


def make_child(arch, cell_residual=None):
    """The child at `space_cfg`'s size (depth 1: its `num_layers` and its `num_cells`)."""
    if cell_residual is None:
        cell_residual = space_cfg(arch.space_name).cell_residual
    return build_child(arch, NUM_CLASSES, IMAGE_SHAPE, num_layers=1, filters=8,
                       stem_multiplier=1, cell_residual=cell_residual)


class Setup:
    """A supernet of one space and its traced DI train step."""

    def __init__(self, name):
        self.name = name
        self.space = get_space(name)
        self.net = build_supernet(name, NUM_CLASSES, IMAGE_SHAPE, space_cfg(name), seed=1)
        # Batch-norm scales and offsets away from 1 and 0, so that copying them is tested too.
        rng = np.random.default_rng(7)
        for bank in self.net.banks:
            if not bank.projected:
                value = bank.variable.numpy()
                bank.variable.assign(value + rng.normal(0, 0.2, value.shape).astype(np.float32))
        self.forward = self.net  # Eager: on 2 CPUs cheaper than one more trace.
        self.trainer = SharedWeightTrainer(self.net, OptimConfig(), DIConfig(enabled=True),
                                           total_steps=1000)
        self.step = tf.function(self.trainer.train_step)
        data = np.random.default_rng(3)
        self.images = data.normal(size=(64, *IMAGE_SHAPE)).astype(np.float32)
        self.labels = data.integers(0, NUM_CLASSES, 64).astype(np.int32)


@pytest.fixture(scope="module", params=SPACES)
def setup(request):
    return Setup(request.param)


def used_rows(net, arch):
    """{bank name: set of rows} on `arch`'s path, from the site declarations alone."""
    values = arch.values
    loose = []
    if arch.space_name == enas_micro.NAME:  # The only space with loose-end sites.
        for cell in range(2):
            ends = enas_micro.loose_ends(values[cell * enas_micro.PER_CELL:
                                                (cell + 1) * enas_micro.PER_CELL])
            loose += [node in ends for node in range(enas_micro.NUM_NODES)]
    rows, names = {}, set()
    for bank in net.banks:
        rows[bank.name] = set()
        for site in bank.sites:
            if site.op_pos >= 0 and values[site.op_pos] != site.op_value:
                continue
            if site.loose_pos >= 0 and not loose[site.loose_pos]:
                continue
            rows[bank.name].add(site.base + (values[site.input_pos] if site.input_pos >= 0
                                             else 0))
            names.add(site.name)
    return rows, names


def snapshot(setup):
    t = setup.trainer
    return ({b.name: b.variable.numpy() for b in setup.net.banks},
            {k: v.numpy() for k, v in t.momentum.items()},
            {k: v.numpy() for k, v in t.projectors.items()})


def test_factory_builds_each_space():
    assert isinstance(build_supernet("nb201", 3, IMAGE_SHAPE, space_cfg("nb201")), Nb201Supernet)
    net = build_supernet("enas_micro", 3, IMAGE_SHAPE, space_cfg("enas_micro"))
    assert isinstance(net, EnasMicroSupernet) and net.num_layers == 1
    with pytest.raises(UserError, match="unknown search space 'darts'"):
        build_supernet("darts", 3, IMAGE_SHAPE, space_cfg("nb201"))


def test_path_equals_child(setup):
    """20 random architectures: the path's weights in a standalone child give the same logits."""
    rng = np.random.default_rng(11)
    x = tf.constant(setup.images[:BATCH])
    for _ in range(20):
        arch = setup.space.sample(rng)
        logits = setup.forward(x, arch.to_tensor()).numpy()
        child = make_child(arch)
        load_path_weights(child, setup.net.path_weights(arch))
        expected = child(x, training=True).numpy()  # Batch statistics, as the supernet.
        np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0, err_msg=str(arch))


def test_cell_residual_is_in_supernet_and_child_alike():
    """enas_micro with and without the cell residual: the path equals the child in both,
    and the residual changes the network (same weights, other logits)."""
    x = tf.constant(np.random.default_rng(3).normal(size=(BATCH, *IMAGE_SHAPE)), tf.float32)
    logits = {}
    for residual in (True, False):
        cfg = dataclasses.replace(space_cfg("enas_micro"), cell_residual=residual)
        net = build_supernet("enas_micro", NUM_CLASSES, IMAGE_SHAPE, cfg, seed=1)
        arch = get_space("enas_micro").sample(np.random.default_rng(12))
        logits[residual] = net(x, arch.to_tensor()).numpy()
        child = make_child(arch, cell_residual=residual)
        load_path_weights(child, net.path_weights(arch))
        np.testing.assert_allclose(logits[residual], child(x, training=True).numpy(),
                                   atol=1e-4, rtol=0)
    assert np.abs(logits[True] - logits[False]).max() > 1e-2


def child_gradients(child, x, y) -> dict[str, np.ndarray]:
    """{site name: gradient} of the child's mean cross-entropy, named as the supernet's sites."""
    with tf.GradientTape() as tape:
        logits = child(x, training=True)
        loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(
            y, logits, from_logits=True))
    variables = child.trainable_variables
    grads = {}
    for var, grad in zip(variables, tape.gradient(loss, variables), strict=True):
        layer, part = var.path.split("/")[-2:]
        grads[f"{layer}-{'kernel' if part == 'depthwise_kernel' else part}"] = grad.numpy()
    return grads


def test_path_gradients_equal_child(setup):
    """The traced supernet's gradients on the path are the child's: selecting states, the ops'
    switches, pooling and the loose-end conds are exact in the backward pass too."""
    net = setup.net

    @tf.function
    def path_grads(x, y, arch):
        with tf.GradientTape() as tape:
            logits, record = net.forward(x, arch)
            loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(
                y, logits, from_logits=True))
        return tape.gradient(loss, {b.name: record.rows[b.name] for b in net.banks})

    rng = np.random.default_rng(21)
    x, y = setup.images[:BATCH], setup.labels[:BATCH]
    checked = 0
    for _ in range(4):
        arch = setup.space.sample(rng)
        grads = {k: v.numpy() for k, v in path_grads(x, y, arch.to_tensor()).items()}
        child = make_child(arch)
        load_path_weights(child, net.path_weights(arch))
        expected = child_gradients(child, x, y)
        combine_offsets = {}
        for name in sorted(net.path_weights(arch)):
            bank, position = net.sites[name]
            got = grads[bank.name][position]
            layer = name.rpartition("-")[0]
            if "-combine-n" in layer:  # One kernel per loose node, concatenated in the child.
                cell = layer.rpartition("-")[0]
                key = f"{cell}-kernel"
                if key not in expected:
                    continue  # A cell no later layer reads: pruned from the child.
                start = combine_offsets.get(cell, 0)
                combine_offsets[cell] = start + got.shape[2]
                want = expected[key][:, :, start:start + got.shape[2]]
            elif name not in expected:
                continue  # Pruned from the child: nothing downstream reads it.
            else:
                want = expected[name].reshape(got.shape)
            np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-3, err_msg=name)
            checked += 1
    assert checked > 20


def test_step_touches_only_the_path(setup):
    rng = np.random.default_rng(5)
    for _ in range(2):
        arch = setup.space.sample(rng)
        rows, names = used_rows(setup.net, arch)
        assert names == set(setup.net.path_weights(arch))
        before = snapshot(setup)
        setup.step(setup.images[:BATCH], setup.labels[:BATCH], arch.to_tensor())
        after = snapshot(setup)
        for bank in setup.net.banks:
            on = np.zeros(bank.rows, bool)
            on[sorted(rows[bank.name])] = True
            for state in range(3):
                if bank.name not in before[state]:
                    continue  # No projector for vectors.
                old, new = before[state][bank.name], after[state][bank.name]
                np.testing.assert_array_equal(new[~on], old[~on],
                                              err_msg=f"{bank.name} state {state} off path")
            if bank.projected:  # Kernels on the path all move (gradient or weight decay).
                changed = np.any(after[0][bank.name] != before[0][bank.name],
                                 axis=tuple(range(1, len(bank.shape) + 1)))
                assert changed[on].all(), bank.name
                assert np.any(after[1][bank.name][on] != 0, axis=tuple(
                    range(1, len(bank.shape) + 1))).all(), bank.name


def test_one_trace_over_50_architectures(setup):
    rng = np.random.default_rng(9)
    for i in range(50):
        batch = slice(i % 8 * BATCH, (i % 8 + 1) * BATCH)
        out = setup.step(setup.images[batch], setup.labels[batch],
                         setup.space.sample(rng).to_tensor())
        assert np.isfinite(out["loss"].numpy())
    assert setup.step.experimental_get_tracing_count() == 1


def test_loss_falls_on_a_fixed_architecture(setup):
    arch = setup.space.sample(np.random.default_rng(13)).to_tensor()
    x, y = setup.images[:BATCH], setup.labels[:BATCH]
    losses = []
    for _ in range(30):
        # Full plasticity: without resets DI would (rightly) freeze a repeated input.
        setup.trainer.reset_projectors()
        losses.append(float(setup.step(x, y, arch)["loss"]))
    assert np.mean(losses[-5:]) < 0.5 * losses[0], losses
    assert setup.step.experimental_get_tracing_count() == 1


def test_scoring_uses_batch_statistics(setup):
    """Each batch is normalised with its own statistics: scaling a batch changes nothing after
    the stem's BN, and an example's logits depend on its batch. With moving statistics (the
    child in inference mode) the scaled batch would give other logits."""
    arch = setup.space.sample(np.random.default_rng(17))
    x = setup.images[:BATCH]
    logits = setup.forward(x, arch.to_tensor()).numpy()
    scaled = setup.forward(10.0 * x, arch.to_tensor()).numpy()
    np.testing.assert_allclose(scaled, logits, atol=1e-3 * np.abs(logits).max())
    other = np.concatenate([x[:4], 5.0 * setup.images[BATCH:BATCH + 4] + 3.0])
    mixed = setup.forward(other, arch.to_tensor()).numpy()
    assert np.abs(mixed[:4] - logits[:4]).max() > 1e-2
    # Scoring (eval_step) is the same forward: the scaled batch scores the same.
    eval_step = setup.trainer.eval_step
    a = eval_step(x, setup.labels[:BATCH], arch.to_tensor())
    b = eval_step(10.0 * x, setup.labels[:BATCH], arch.to_tensor())
    assert float(a["correct"]) == float(b["correct"])
    np.testing.assert_allclose(float(a["loss"]), float(b["loss"]), rtol=1e-3)
    # The test discriminates: moving statistics (fresh: mean 0, variance 1) see the scale.
    child = make_child(arch)
    load_path_weights(child, setup.net.path_weights(arch))
    moving = child(x, training=False).numpy()
    moving_scaled = child(10.0 * x, training=False).numpy()
    assert np.abs(moving_scaled - moving).max() > 1e-2


def test_checkpoint_round_trip(setup, tmp_path):
    path = tf.train.Checkpoint(supernet=setup.net).write(str(tmp_path / "ckpt"))
    fresh = build_supernet(setup.name, NUM_CLASSES, IMAGE_SHAPE, space_cfg(setup.name), seed=2)
    kernel = setup.net.banks[0].name
    assert not np.array_equal(fresh.banks[0].variable.numpy(),
                              setup.net.banks[0].variable.numpy()), kernel
    tf.train.Checkpoint(supernet=fresh).read(path).assert_existing_objects_matched()
    for mine, theirs in zip(setup.net.banks, fresh.banks, strict=True):
        assert mine.name == theirs.name
        np.testing.assert_array_equal(theirs.variable.numpy(), mine.variable.numpy())



@pytest.mark.parametrize("affine", [False, True])
def test_batch_norm_is_the_textbook_formula_in_value_and_gradient(affine):
    """`functional.batch_norm` (one fused op) normalises by the batch mean and biased variance,
    scales and shifts when given gamma and beta, and its gradient is the formula's; a 16-bit
    input comes back in its dtype."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(1.0, 3.0, (6, 4, 4, 5)).astype(np.float32))
    gamma = tf.constant(rng.uniform(0.5, 1.5, 5).astype(np.float32)) if affine else None
    beta = tf.constant(rng.normal(0, 1, 5).astype(np.float32)) if affine else None
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        got = F.batch_norm(x, gamma, beta)
        mean, var = tf.nn.moments(x, [0, 1, 2])
        want = (x - mean) / tf.sqrt(var + F.BN_EPSILON)
        if affine:
            want = want * gamma + beta
        weights = tf.constant(rng.normal(0, 1, x.shape).astype(np.float32))
        loss_got, loss_want = tf.reduce_sum(got ** 2 * weights), tf.reduce_sum(want ** 2 * weights)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(tape.gradient(loss_got, x), tape.gradient(loss_want, x),
                               atol=1e-4)
    assert F.batch_norm(tf.cast(x, tf.bfloat16), gamma, beta).dtype == tf.bfloat16

if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
