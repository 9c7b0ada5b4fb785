"""Op tables: every op is well formed, and its child layers match the supernet's site names."""

import keras
import numpy as np
import pytest

from di_nas.ops import base, enas_micro, layers, nb201
from di_nas.ops.base import Op

TABLES = {"enas_micro": enas_micro.OPS, "nb201": nb201.OPS}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_tables_have_unique_names_and_weights_only_on_convs(name):
    table = TABLES[name]
    assert len({op.name for op in table}) == len(table)
    assert len({op.short for op in table}) == len(table)
    assert {op.kind for op in table if op.has_weights} <= set(base.WEIGHTED)
    assert all(op.kernel_shape == (op.kernel_size,) * 2 for op in table if op.has_weights)


def test_weighted_indexes_the_encoding():
    assert {i: op.name for i, op in base.weighted(nb201.OPS).items()} == {
        2: "conv_1x1", 3: "conv_3x3"}
    assert sorted(base.weighted(enas_micro.OPS)) == [0, 1]


def test_bad_ops_are_refused():
    with pytest.raises(ValueError, match="unknown kind"):
        Op("dil_conv_3x3", "dilated")
    with pytest.raises(ValueError, match="needs a kernel_size"):
        Op("conv", base.CONV)


@pytest.mark.parametrize("op, names", [
    (enas_micro.OPS[1], {"p-s0-dw", "p-s0-pw", "p-s0-bn", "p-s1-dw", "p-s1-pw", "p-s1-bn"}),
    (nb201.OPS[3], {"p", "p-bn"}),
    (nb201.OPS[4], set()),
])
def test_child_layers_are_named_after_sites(op, names):
    inputs = keras.Input((6, 6, 4))
    model = keras.Model(inputs, layers.apply(op, inputs, 4, "p"))
    assert {layer.name for layer in model.layers if layer.weights} == names
    out = model(np.ones((2, 6, 6, 4), np.float32), training=False)
    assert out.shape == (2, 6, 6, 4)


def test_zero_and_identity_layers():
    x = np.random.default_rng(0).normal(size=(1, 3, 3, 2)).astype(np.float32)
    inputs = keras.Input((3, 3, 2))
    zero = keras.Model(inputs, layers.apply(nb201.OPS[0], inputs, 2, "z"))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(zero(x)), np.zeros_like(x))
    assert layers.apply(nb201.OPS[1], inputs, 2, "s") is inputs


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
