"""Configuration sections of a search: data, space, shared-weight optimiser, DI, controller.

Frozen dataclasses that validate themselves; no TensorFlow, no flags, no files.
"""

from __future__ import annotations

from dataclasses import dataclass

from di_nas.config.checks import (
    CONTROLLERS,
    DI_INPUTS,
    DI_PROJECT,
    DI_SCOPES,
    OFFPATH_MOMENTUM,
    SPACES,
    check,
    choice,
    non_negative,
    positive,
)


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how they are batched and augmented.

    ``dataset`` is ``digits`` (scikit-learn's 8x8 digits), a TFDS name (``cifar10``),
    ``npz:PATH`` or ``folder:PATH``. Pad-crop-flip augmentation is applied to CIFAR-like
    32x32 colour data; other fixed-size data (digits, MNIST) get pad-crop without flips.
    """

    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    valid_fraction: float = 0.5
    batch_size: int = 64
    eval_batch_size: int = 256
    augment: bool = True
    cutout: int = 0
    image_size: int = 0
    shuffle_buffer: int = 10000

    def __post_init__(self):
        check(bool(self.dataset and self.dataset.strip()),
               "data.dataset is empty: use digits, a TFDS name, npz:PATH or folder:PATH")
        check(0.0 < self.valid_fraction < 1.0,
               f"data.valid_fraction must be in (0, 1), got {self.valid_fraction!r}")
        positive("data", batch_size=self.batch_size, eval_batch_size=self.eval_batch_size,
                  shuffle_buffer=self.shuffle_buffer)
        non_negative("data", cutout=self.cutout, image_size=self.image_size)


@dataclass(frozen=True)
class SpaceConfig:
    """The search space and the size of the search network (supernet)."""

    name: str = "enas_micro"
    num_layers: int = 2
    filters: int = 20
    stem_multiplier: int = 3
    share_across_inputs: bool = True
    num_cells: int = 5
    bn_affine: bool = False
    # enas_micro: add each cell's second input to its output (see `supernet.enas`); ENAS's
    # cell (the CIFAR-10 preset) has no such path.
    cell_residual: bool = True

    def __post_init__(self):
        choice("space", "name", self.name, SPACES)
        positive("space", num_layers=self.num_layers, filters=self.filters,
                  stem_multiplier=self.stem_multiplier, num_cells=self.num_cells)


@dataclass(frozen=True)
class OptimConfig:
    """SGD with a cosine schedule for the shared weights during the search."""

    learning_rate: float = 0.4
    learning_rate_min: float = 0.0005
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    grad_clip_norm: float = 5.0
    offpath_momentum: str = "lazy"

    def __post_init__(self):
        choice("optim", "offpath_momentum", self.offpath_momentum, OFFPATH_MOMENTUM)
        positive("optim", learning_rate=self.learning_rate)
        non_negative("optim", learning_rate_min=self.learning_rate_min,
                      momentum=self.momentum, weight_decay=self.weight_decay,
                      grad_clip_norm=self.grad_clip_norm)
        check(self.learning_rate_min <= self.learning_rate,
               "optim.learning_rate_min must not exceed optim.learning_rate")


@dataclass(frozen=True)
class DIConfig:
    """The disturbance-immune projection of shared-weight gradients.

    ``inputs`` is what `P` protects: ``mean`` (each kernel's mean input, the paper's
    statistic) or ``covariance`` (its inputs' second moment, centred where batch norm follows;
    see `di_nas.projection`). ``beta`` is on the scale of that statistic: the default 10 for
    ``covariance`` came from the PD study on digits; the paper's statistic wants a small one
    (1e-3). ``reset`` is ``never``, ``epoch`` or a positive number of steps written as a string.
    ``project`` is what `P` is applied to: ``step`` (the whole update: gradient, weight decay
    and the Nesterov momentum direction, so it lies in `P`'s range), ``buffer`` (the gradient
    with weight decay, and the momentum buffer re-projected each step) or ``gradient`` (the raw
    gradient only; momentum and weight decay then leak past `P`). ``rescale`` > 1 (``step``
    only) scales each row's projected step back towards its unprojected norm, by at most that
    factor (1 = off). ``scope`` is which kernels `P` protects: ``all`` on the path, ``ops``
    (only the searched ops' kernels) or ``fixed`` (only the kernels every architecture uses in
    the same place: the stem, the fixed 1x1 convolutions, the cell combiners and the head);
    the others train as plain weight sharing does.
    """

    enabled: bool = True
    beta: float = 10.0
    scale_beta: bool = False
    reset: str = "epoch"
    decay: float = 0.0
    max_dim: int = 4096
    sub_batches: int = 1
    inputs: str = "covariance"
    project: str = "step"
    rescale: float = 1.0
    scope: str = "all"

    def __post_init__(self):
        positive("di", beta=self.beta, max_dim=self.max_dim, sub_batches=self.sub_batches)
        choice("di", "inputs", self.inputs, DI_INPUTS)
        choice("di", "project", self.project, DI_PROJECT)
        choice("di", "scope", self.scope, DI_SCOPES)
        check(self.rescale >= 1.0, f"di.rescale must be at least 1 (1 = off), got "
              f"{self.rescale!r}")
        check(self.rescale == 1.0 or self.project == "step",
              "di.rescale applies to di.project=step only: set --di_project=step")
        check(self.inputs == "mean" or self.sub_batches == 1,
               "di.sub_batches applies to di.inputs=mean only: set --di_sub_batches=1")
        check(0.0 <= self.decay <= 1.0, f"di.decay must be in [0, 1], got {self.decay!r}")
        ok = self.reset in ("never", "epoch") or (self.reset.isdigit() and int(self.reset) > 0)
        check(ok, f"di.reset={self.reset!r} is not known: use never, epoch or a positive "
                   "number of steps")

    @property
    def reset_steps(self) -> int | None:
        """The reset period in steps when ``reset`` is a number, else None."""
        return int(self.reset) if self.reset.isdigit() else None


@dataclass(frozen=True)
class ControllerConfig:
    """The architecture sampler: REINFORCE LSTM (ENAS) or a keras_tuner baseline."""

    name: str = "reinforce"
    lstm_units: int = 64
    learning_rate: float = 0.0035
    entropy_weight: float = 1e-4
    baseline_decay: float = 0.99
    tanh_constant: float = 1.10
    op_tanh_reduce: float = 2.5
    temperature: float = 5.0
    op_prior: bool = True
    steps_per_epoch: int = 30
    aggregate: int = 5

    def __post_init__(self):
        choice("controller", "name", self.name, CONTROLLERS)
        positive("controller", lstm_units=self.lstm_units, learning_rate=self.learning_rate,
                  temperature=self.temperature, steps_per_epoch=self.steps_per_epoch,
                  aggregate=self.aggregate, op_tanh_reduce=self.op_tanh_reduce)
        non_negative("controller", entropy_weight=self.entropy_weight,
                      tanh_constant=self.tanh_constant)
        check(0.0 <= self.baseline_decay < 1.0,
               f"controller.baseline_decay must be in [0, 1), got {self.baseline_decay!r}")


@dataclass(frozen=True)
class SearchConfig:
    """Length of the search; ``steps_per_epoch=0`` means one pass over search-train."""

    epochs: int = 15
    steps_per_epoch: int = 40
    num_candidates: int = 100
    log_every: int = 10
    deterministic: bool = False

    def __post_init__(self):
        positive("search", epochs=self.epochs, num_candidates=self.num_candidates,
                  log_every=self.log_every)
        non_negative("search", steps_per_epoch=self.steps_per_epoch)
