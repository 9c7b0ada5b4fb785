"""Disturbance immunity for an ordinary Keras model: protect what it learned on earlier data.

A `Protector` keeps a projector `P` (in the projector unit, `di_nas.di.projector`) per protected
`Dense`, `Conv2D` and `DepthwiseConv2D` kernel and bias. `remember(data)` folds the inputs each
layer sees on `data` into its `P` (the supernet's `di_nas.di.math` update); a
`ProjectedOptimizer` then replaces every change `dW` of a protected variable, made by any
wrapped Keras optimizer (momentum, Adam, weight decay included), by `P @ dW`, so the layer's
response `W^T x` to remembered inputs stays (nearly) put, in `model.fit` or a custom loop::

    protector = di_nas.di.Protector(model)
    model.fit(x_a, y_a)                        # task A, plain
    protector.remember(x_a)                    # P now protects A's inputs
    model.compile(optimizer=protector.wrap(keras.optimizers.Adam()), loss=...)
    model.fit(x_b, y_b)                        # task B disturbs A far less

Statistics (`inputs`): ``moment`` (the inputs' uncentred second moment: keeps `W^T x` for
every remembered `x`; the default), ``covariance`` (centred: the right one where batch norm
follows the kernel) or ``mean`` (the paper's mean input). A bias is a kernel of the input 1.

May import TensorFlow, Keras, `di_nas.di.math` and the projector unit only: no supernet, no
loop, no flags. Single-replica (no `tf.distribute` strategy).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from di_nas.di import math as proj
from di_nas.di.projector import Kernel, Projector

STATISTICS = ("moment", "covariance", "mean")


class _Site:
    """One protected kernel: its layer, kind and shape, and its input statistic."""

    def __init__(self, layer, kind: str):
        self.layer, self.kind = layer, kind
        self.kernel = layer.kernel
        self.key = self.kernel.path.replace("/", "_")
        self.shape = tuple(int(s) for s in self.kernel.shape)
        self.size = int(layer.kernel_size[0]) if kind != "dense" else 1
        self.strides = int(layer.strides[0]) if kind != "dense" else 1

    def statistic(self, x: tf.Tensor, inputs: str) -> tf.Tensor:
        """This layer's input statistic on the batch `x` (its input tensor)."""
        x = tf.cast(x, tf.float32)
        if self.kind == "dense":  # rows as the positions of one 1-pixel-high image
            x = tf.reshape(x, [1, 1, -1, x.shape[-1]])
        if inputs == "mean":
            if self.kind == "depthwise":
                return proj.mean_depthwise_patches(x, self.size, self.strides)
            return proj.mean_patches(x, self.size, self.strides)
        centered = inputs == "covariance"
        if self.kind == "depthwise":
            return proj.moment_depthwise_patches(x, self.size, centered=centered)
        return proj.moment_patches(x, self.size, self.strides, centered=centered)


class _BiasSite(_Site):
    """A protected layer's bias: a `[1, units]` kernel whose input is the constant 1."""

    def __init__(self, layer):  # pylint: disable=super-init-not-called
        self.layer, self.kind, self.kernel = layer, "dense", layer.bias
        self.key = self.kernel.path.replace("/", "_")
        self.shape = (1, int(layer.bias.shape[0]))

    def statistic(self, x: tf.Tensor, inputs: str) -> tf.Tensor:  # input 1: mean 1, moment 1
        return tf.ones([1] if inputs == "mean" else [1, 1])


def _energy(stat: tf.Tensor, inputs: str) -> float:
    """The statistic's mean input energy (what a relative beta is a fraction of)."""
    if inputs == "mean":
        return float(tf.reduce_mean(stat * stat))
    return float(tf.reduce_mean(tf.linalg.diag_part(stat)))


def _kind(layer) -> str | None:
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return "depthwise"
    if isinstance(layer, keras.layers.Conv2D):
        return "conv"
    if isinstance(layer, keras.layers.Dense):
        return "dense"
    return None


def _walk(layer):
    yield layer
    for child in getattr(layer, "layers", ()):
        yield from _walk(child)


def _supported(layer, kind: str) -> bool:
    if kind == "dense":
        return True
    square = layer.kernel_size[0] == layer.kernel_size[1]
    plain = (tuple(layer.dilation_rate) == (1, 1) and layer.data_format == "channels_last"
             and getattr(layer, "groups", 1) == 1 and layer.strides[0] == layer.strides[1])
    return square and plain


class _Capture:
    """Records the input of each sites' layer during one eager forward pass."""

    def __init__(self, sites):
        self.layers, self.inputs = list({id(s.layer): s.layer for s in sites}.values()), {}

    def __enter__(self):
        for layer in self.layers:
            call = layer.call

            def recorder(inputs, *args, _call=call, _layer=layer, **kwargs):
                self.inputs[id(_layer)] = inputs
                return _call(inputs, *args, **kwargs)

            layer.call = recorder
        return self

    def __exit__(self, *exc):
        for layer in self.layers:
            del layer.call  # back to the class's method


class Protector:
    """Projectors for the `Dense`, `Conv2D` and `DepthwiseConv2D` kernels of a Keras model.

    Args:
      model: a built Keras model (Sequential, functional or subclassed).
      beta: regulariser of the projector update. With `relative` (default) it is a fraction
        of each layer's mean input energy: input directions carrying more than about `beta`
        of it are protected, weaker ones stay plastic.
      inputs: ``moment``, ``covariance`` or ``mean`` (see the module docstring).
      relative: scale `beta` by each statistic's mean diagonal.
      biases: protect the biases of protected layers too, as kernels of a constant input 1
        (each moves by `beta / (1 + beta)` of its update with a relative `beta`).
      max_dim: kernels with a larger input dimension (`k*k*C_in` or `d_in`) are unprotected.
      layers: protect only these layers (default: every supported one).
    """

    def __init__(self, model, *, beta: float = 1e-3, inputs: str = "moment",
                 relative: bool = True, biases: bool = True, max_dim: int = 4096, layers=None):
        if inputs not in STATISTICS:
            raise ValueError(f"inputs={inputs!r} is not known: use one of "
                             f"{', '.join(STATISTICS)}")
        if beta <= 0:
            raise ValueError(f"beta must be positive, got {beta!r}")
        if not model.built:
            raise ValueError("the model is not built: call it on a batch or build() it first")
        self.model, self.beta, self.inputs, self.relative = model, beta, inputs, relative
        candidates = list(layers) if layers is not None else list(_walk(model))
        sites = []
        for layer in candidates:
            kind = _kind(layer)
            if kind is None or not _supported(layer, kind):
                if layers is not None:
                    raise ValueError(f"layer {layer.name} cannot be protected: Dense, Conv2D "
                                     "or DepthwiseConv2D (square, undilated, channels_last)")
                continue
            sites.append(_Site(layer, kind))
            if biases and getattr(layer, "bias", None) is not None:
                sites.append(_BiasSite(layer))
        self.unit = Projector({s.key: Kernel(s.kind, s.shape) for s in sites}, beta,
                              "mean" if inputs == "mean" else "covariance", max_dim=max_dim)
        self.sites = [s for s in sites if self.unit.protects(s.key)]
        self._by_kernel = {id(s.kernel): s for s in self.sites}

    def _fold(self, site, stat: tf.Tensor) -> None:
        if self.relative:  # this entry's beta: a fraction of its inputs' energy
            self.unit.betas[site.key] = self.beta * max(_energy(stat, self.inputs), 1e-12)
        self.unit.update(site.key, stat[None])

    def _statistics(self, x) -> list[tf.Tensor]:
        with _Capture(self.sites) as capture:
            self.model(x, training=False)
        return [s.statistic(capture.inputs[id(s.layer)], self.inputs) for s in self.sites]

    def record(self, x) -> None:
        """Folds the inputs of one batch `x` into every projector (e.g. once per step)."""
        for site, stat in zip(self.sites, self._statistics(x), strict=True):
            self._fold(site, stat)

    def remember(self, data, batch_size: int = proj.IMAGES) -> None:
        """Protects the layers' responses to `data`: its statistic, averaged over all of
        `data`, is folded into every projector once.

        Args:
          data: images as a NumPy array or tensor, or a `tf.data.Dataset` of images or of
            `(images, labels)` batches.
          batch_size: images per forward pass for arrays (convolution statistics are sampled
            from `di_nas.di.math.IMAGES` images of a batch, so the default uses them all).
        """
        if isinstance(data, tf.data.Dataset):
            batches = (b[0] if isinstance(b, tuple) else b for b in data)
        else:
            batches = (data[i:i + batch_size] for i in range(0, len(data), batch_size))
        total, count = None, 0
        for x in batches:
            stats = self._statistics(x)
            total = stats if total is None else [t + s for t, s in zip(total, stats, strict=False)]
            count += 1
        if not count:
            raise ValueError("remember() got no data")
        for site, stat in zip(self.sites, total, strict=True):
            self._fold(site, stat / count)

    def reset(self) -> None:
        """Forgets every remembered input: all projectors back to the identity."""
        self.unit.reset()

    def plasticity(self) -> dict[str, float]:
        """Mean `trace(P) / d` per protected kernel and bias: 1 is fully plastic, 0 frozen."""
        return {k: float(v) for k, v in self.unit.trace_stats().items()}

    def project(self, variable, delta: tf.Tensor) -> tf.Tensor:
        """`P @ delta` for a change `delta` of the protected `variable` (unchanged if it is
        not protected)."""
        site = self.site_of(variable)
        if site is None:
            return delta
        if isinstance(site, _BiasSite):
            return tf.reshape(self.unit.project(site.key, tf.reshape(delta, site.shape)),
                              delta.shape)
        return self.unit.project(site.key, delta)

    def site_of(self, variable):
        """The site protecting `variable`, or None."""
        return self._by_kernel.get(id(variable))

    def wrap(self, optimizer) -> ProjectedOptimizer:
        """`optimizer` with every protected kernel's update projected."""
        return ProjectedOptimizer(optimizer, self)


class ProjectedOptimizer(keras.optimizers.Optimizer):
    """Wraps a Keras optimizer: after it applies an update, each protected kernel's change
    `dW = W_new - W_old` (momentum, adaptive scaling and weight decay included) is replaced
    by `P @ dW`. Other variables are updated as the wrapped optimizer says.

    Args:
      inner_optimizer: any `keras.optimizers.Optimizer`.
      protector: the `Protector` holding the projectors.
    """

    def __init__(self, inner_optimizer, protector: Protector, name: str | None = None):
        super().__init__(learning_rate=0.0, name=name or "projected")
        self.inner_optimizer = inner_optimizer
        self.protector = protector

    def build(self, var_list):
        self.inner_optimizer.build(var_list)
        super().build(var_list)

    @property
    def variables(self):
        return self._variables + self.inner_optimizer.variables

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if hasattr(self, "inner_optimizer"):
            self.inner_optimizer.learning_rate = value

    iterations = property(lambda self: self.inner_optimizer.iterations)

    def apply(self, grads, trainable_variables=None):
        """Applies the wrapped optimizer, then projects the protected kernels' changes."""
        variables = (list(trainable_variables) if trainable_variables is not None
                     else self._trainable_variables)
        if not self.built:
            self.build(variables)
            self.built = True
        protected = [v for v in variables if self.protector.site_of(v) is not None]
        before = [tf.identity(tf.convert_to_tensor(v)) for v in protected]
        self.inner_optimizer.apply(grads, variables)
        for var, old in zip(protected, before, strict=True):
            new = tf.convert_to_tensor(var)
            var.assign(old + self.protector.project(var, new - old))



class RememberCallback(keras.callbacks.Callback):
    """Calls `protector.remember(data)` when `model.fit` ends (protect what was just learned).

    Args:
      protector: the `Protector`.
      data: what `remember` receives (the images the fit trained on, typically).
    """

    def __init__(self, protector: Protector, data):
        super().__init__()
        self.protector, self.data = protector, data

    def on_train_end(self, logs=None):
        self.protector.remember(self.data)
