"""Standalone child networks: any depth and width, inference mode, parameter counts."""

import keras
import numpy as np
import pytest

from di_nas.child import build_child
from di_nas.child.nb201 import build_nb201_child
from di_nas.search_space import get_space

IMAGE_SHAPE = (8, 8, 1)


def images(n=4):
    return np.random.default_rng(0).normal(size=(n, *IMAGE_SHAPE)).astype(np.float32)


@pytest.mark.parametrize("space, depth, filters", [
    ("enas_micro", 3, 4), ("enas_micro", 1, 6), ("nb201", 2, 4), ("nb201", 1, 6)])
def test_builds_and_runs_at_other_sizes(space, depth, filters):
    arch = get_space(space).sample(np.random.default_rng(depth + filters))
    child = build_child(arch, 5, IMAGE_SHAPE, num_layers=depth, filters=filters,
                        stem_multiplier=1)
    out = child(images(), training=True).numpy()
    assert out.shape == (4, 5) and np.isfinite(out).all()


@pytest.mark.parametrize("space", ["enas_micro", "nb201"])
def test_params_grow_with_filters(space):
    arch = get_space(space).sample(np.random.default_rng(1))
    counts = [build_child(arch, 10, IMAGE_SHAPE, num_layers=1, filters=f,
                          stem_multiplier=1).count_params() for f in (4, 8)]
    assert counts[0] < counts[1]


@pytest.mark.parametrize("space", ["enas_micro", "nb201"])
def test_inference_mode_uses_moving_statistics(space):
    arch = get_space(space).sample(np.random.default_rng(2))
    child = build_child(arch, 3, IMAGE_SHAPE, num_layers=1, filters=4, stem_multiplier=1)
    x = images(8)
    before = child(x, training=False).numpy()
    assert np.isfinite(before).all()
    child(x, training=True)  # Updates the moving statistics.
    after = child(x, training=False).numpy()
    assert np.isfinite(after).all() and not np.allclose(before, after)
    bn = child.get_layer("stem-bn")
    assert not np.allclose(keras.ops.convert_to_numpy(bn.moving_mean), 0.0)


def test_nb201_all_none_cell_outputs_zeros():
    arch = get_space("nb201").architecture([0] * 6)
    child = build_nb201_child(arch, 3, IMAGE_SHAPE, num_cells=1, filters=4)
    out = child(images(), training=True).numpy()
    assert out.shape == (4, 3) and np.isfinite(out).all()
    # Nothing reaches the head but the residual blocks' batch-norm offsets: every example
    # gets the same logits.
    np.testing.assert_allclose(out, np.broadcast_to(out[:1], out.shape), atol=1e-5)


def test_nb201_layer_names_and_pruned_none_edges():
    arch = get_space("nb201").architecture([2, 0, 3, 0, 1, 4])
    names = {layer.name for layer in build_nb201_child(arch, 3, IMAGE_SHAPE, num_cells=1,
                                                       filters=4).layers}
    assert {"stem", "stem-bn", "L0-e0-conv1x1", "L0-e0-conv1x1-bn", "L0-e2-conv3x3",
            "L1-res-a", "L1-res-b-bn", "L1-res-short", "head-bn", "head"} <= names
    assert not any("-e1-" in n or "-e3-" in n for n in names)  # `none` edges.


def test_nb201_child_rejects_other_spaces_and_enas_extras():
    with pytest.raises(ValueError, match="nb201"):
        build_nb201_child(get_space("enas_micro").architecture([0] * 40), 3, IMAGE_SHAPE)
    with pytest.raises(ValueError, match="enas_micro only"):
        build_child(get_space("nb201").architecture([0] * 6), 3, IMAGE_SHAPE, num_layers=1,
                    filters=4, drop_path=0.1)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
