"""DI for an ordinary Keras model (`di_nas.di.keras`): remembered responses survive training.

Tiny seeded CPU tests: a model with Conv2D, DepthwiseConv2D and Dense layers remembers task A's
inputs, then trains on other data in `model.fit` (Adam) and in a custom loop (SGD with
momentum); its outputs on A's inputs must stay put, while the same training unprotected
moves them.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from di_nas.di import keras as di_keras


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((6, 6, 2)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.DepthwiseConv2D(3, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(8, activation="relu"),
        keras.layers.Dense(3),
    ])


def _data(seed, n=8):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6, 6, 2)).astype("f4"), rng.integers(0, 3, n)


def _drift(protect: bool, loop: str) -> float:
    model = _model()
    xa, _ = _data(1, n=4)
    xb, yb = _data(2, n=32)
    before = model(xa).numpy()
    protector = di_keras.Protector(model, beta=1e-6)
    if protect:
        protector.remember(xa)
    if loop == "fit":
        model.compile(optimizer=protector.wrap(keras.optimizers.Adam(0.01)),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(xb, yb, batch_size=8, epochs=3, verbose=0)
    else:
        optimizer = protector.wrap(keras.optimizers.SGD(0.05, momentum=0.9))
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

        @tf.function
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))

        for i in range(0, 32, 8):
            step(xb[i:i + 8], yb[i:i + 8])
    return float(np.abs(model(xa).numpy() - before).max() / np.abs(before).max())


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_remembered_outputs_stay_while_plain_training_moves_them(loop):
    protected, plain = _drift(True, loop), _drift(False, loop)
    assert plain > 0.05, plain
    assert protected < 0.02 * plain + 1e-3, (protected, plain)


def test_every_supported_kernel_and_bias_is_protected():
    protector = di_keras.Protector(_model())
    kinds = sorted({s.kind for s in protector.sites})
    assert kinds == ["conv", "dense", "depthwise"]
    assert len(protector.sites) == 8  # 4 kernels + 4 biases
    assert all(v == pytest.approx(1.0) for v in protector.plasticity().values())


def test_identity_projectors_leave_the_inner_update_unchanged():
    x, y = _data(3, n=8)
    weights = []
    for wrap in (False, True):
        model = _model()
        opt = keras.optimizers.SGD(0.1, momentum=0.9)
        opt = di_keras.Protector(model).wrap(opt) if wrap else opt
        model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True))
        model.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False)
        weights.append(model.get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_remember_shrinks_plasticity_and_reset_restores_it():
    protector = di_keras.Protector(_model(), beta=1e-3)
    protector.remember(_data(1)[0])
    assert max(protector.plasticity().values()) < 1.0
    protector.reset()
    assert min(protector.plasticity().values()) == pytest.approx(1.0)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="inputs"):
        di_keras.Protector(_model(), inputs="median")
    with pytest.raises(ValueError, match="beta"):
        di_keras.Protector(_model(), beta=0.0)
    with pytest.raises(ValueError, match="cannot be protected"):
        model = _model()
        di_keras.Protector(model, layers=[model.layers[2]])  # Flatten


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
