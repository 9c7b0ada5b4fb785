"""Image-classification sources: what the data is, before batching and augmentation.

A ``DataSource`` knows its splits (search-train ``train``, search-valid ``valid``, ``train_full``
and ``test``), its class count, the image shape the network sees and the per-channel
normalisation statistics. Sources: ``digits`` (scikit-learn), TFDS names, ``npz:PATH`` and
``folder:PATH`` (see ``load_source``). Every problem with user data is a one-line ``UserError``.

This module must never download anything unless ``DataConfig.download`` is set, and must not
batch, augment or normalise (``di_nas.data.pipeline`` does).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from di_nas.config import DataConfig
from di_nas.data import files, memory
from di_nas.data.checks import check_prepared, check_source, tfds_builder
from di_nas.errors import UserError

SPLITS = ("train", "valid", "train_full", "test")

# Per-channel (mean, std) in 0..1 units for TFDS datasets whose statistics are well known.
KNOWN_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet2012": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
}
_STATS_SAMPLE = 10000  # images used to estimate statistics of other TFDS datasets


@dataclasses.dataclass(frozen=True)
class DataSource:
    """One dataset, split for the search. Counts are examples per split.

    Attributes:
        image_shape: (H, W, C) of the images as fed to the network (after any resize).
        native_shape: (H, W, C) as stored; H and W are None for variable-size data (ImageNet).
        mean, std: per channel, in 0..1 pixel units.
    """

    name: str
    num_classes: int
    image_shape: tuple
    mean: tuple
    std: tuple
    num_train: int
    num_valid: int
    num_test: int
    native_shape: tuple
    make_split: Callable[[str], tf.data.Dataset] = dataclasses.field(repr=False, compare=False)

    def dataset(self, split: str) -> tf.data.Dataset:
        """Unbatched ``(image 0..255 HWC uint8 or float32, label int32)`` pairs of one split."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return self.make_split(split)

    def size(self, split: str) -> int:
        """Number of examples in ``split``."""
        train_full = self.num_train + self.num_valid
        return {"train": self.num_train, "valid": self.num_valid, "train_full": train_full,
                "test": self.num_test}[split]


def _num_valid(n: int, valid_fraction: float) -> int:
    if n < 2:
        raise UserError(f"the training split has {n} example(s): at least 2 are needed to hold "
                        "out a search-valid split")
    return min(max(int(round(n * valid_fraction)), 1), n - 1)


def _out_shape(native: tuple, cfg: DataConfig) -> tuple:
    if cfg.image_size:
        return (cfg.image_size, cfg.image_size, native[2])
    if native[0] is None:
        return (224, 224, native[2])  # variable-size data (ImageNet) default
    return tuple(native)


def _stats(x: np.ndarray) -> tuple[tuple, tuple]:
    x = x.astype(np.float64) / 255.0
    axes = tuple(range(x.ndim - 1))
    std = np.maximum(x.std(axis=axes), 1e-3)  # a constant channel must not divide by zero
    return tuple(float(v) for v in x.mean(axis=axes)), tuple(float(v) for v in std)


def from_arrays(name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                y_test: np.ndarray, cfg: DataConfig, seed: int,
                num_classes: int | None = None) -> DataSource:
    """An in-memory source; search-train/valid is a seeded permutation of ``x_train``."""
    n = len(x_train)
    num_valid = _num_valid(n, cfg.valid_fraction)
    perm = np.random.default_rng(seed).permutation(n)
    index = {"valid": np.sort(perm[:num_valid]), "train": np.sort(perm[num_valid:])}
    y_train, y_test = y_train.astype(np.int32), y_test.astype(np.int32)
    arrays = {"train": (x_train[index["train"]], y_train[index["train"]]),
              "valid": (x_train[index["valid"]], y_train[index["valid"]]),
              "train_full": (x_train, y_train), "test": (x_test, y_test)}
    mean, std = _stats(x_train)
    if num_classes is None:
        num_classes = int(max(y_train.max(), y_test.max())) + 1
    return DataSource(
        name=name, num_classes=num_classes, image_shape=_out_shape(x_train.shape[1:], cfg),
        mean=mean, std=std, num_train=n - num_valid, num_valid=num_valid, num_test=len(x_test),
        native_shape=tuple(x_train.shape[1:]),
        make_split=lambda split: tf.data.Dataset.from_tensor_slices(arrays[split]))


def _digits(cfg: DataConfig, seed: int) -> DataSource:
    """scikit-learn's 8x8 digits: 0..16 scaled to uint8, fixed stratified 80/20 split (seed 0)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = np.round(digits.images * 255.0 / 16.0).astype(np.uint8)[..., None]
    x_tr, x_te, y_tr, y_te = train_test_split(x, digits.target, test_size=0.2, random_state=0,
                                              stratify=digits.target)
    return from_arrays("digits", x_tr, y_tr, x_te, y_te, cfg, seed, num_classes=10)


def _tfds_stats(name: str, ds: tf.data.Dataset, channels: int) -> tuple[tuple, tuple]:
    base = name.split(":")[0].split("/")[0]
    if base in KNOWN_STATS:
        return KNOWN_STATS[base]
    if base.startswith("imagenet"):
        return KNOWN_STATS["imagenet2012"]

    def moments(image, _):
        x = tf.reshape(tf.cast(image, tf.float64) / 255.0, [-1, channels])
        return tf.reduce_sum(x, 0), tf.reduce_sum(x * x, 0), tf.cast(tf.shape(x)[0], tf.float64)

    zero = tf.zeros([channels], tf.float64)
    total = ds.take(_STATS_SAMPLE).map(moments).reduce(
        (zero, zero, tf.constant(0.0, tf.float64)),
        lambda a, b: (a[0] + b[0], a[1] + b[1], a[2] + b[2]))
    mean = total[0] / total[2]
    std = tf.sqrt(tf.maximum(total[1] / total[2] - mean * mean, 1e-6))
    return tuple(float(v) for v in mean.numpy()), tuple(float(v) for v in std.numpy())


def _tfds(name: str, cfg: DataConfig, seed: int) -> DataSource:
    """A TFDS dataset; search-valid is the last ``valid_fraction`` of ``train`` (seed-free)."""
    del seed  # TFDS splits are fixed index ranges, identical for every seed
    builder = tfds_builder(name, cfg)
    check_prepared(name, builder, cfg)
    if not builder.is_prepared():
        builder.download_and_prepare()
    info = builder.info
    test_split = next((s for s in ("test", "validation") if s in info.splits), None)
    if "train" not in info.splits or test_split is None:
        raise UserError(f"dataset {name!r} needs a train and a test (or validation) split")
    n = info.splits["train"].num_examples
    num_valid = _num_valid(n, cfg.valid_fraction)
    split_names = {"train": f"train[:{n - num_valid}]", "valid": f"train[{n - num_valid}:]",
                   "train_full": "train", "test": test_split}

    def make_split(split: str) -> tf.data.Dataset:
        ds = builder.as_dataset(split=split_names[split], as_supervised=True,
                                shuffle_files=False)
        return ds.map(lambda x, y: (x, tf.cast(y, tf.int32)))

    native = tuple(info.features["image"].shape)
    mean, std = _tfds_stats(name, make_split("train"), native[2])
    return DataSource(
        name=name, num_classes=info.features["label"].num_classes,
        image_shape=_out_shape(native, cfg), mean=mean, std=std, num_train=n - num_valid,
        num_valid=num_valid, num_test=info.splits[test_split].num_examples,
        native_shape=native, make_split=make_split)


def load_source(cfg: DataConfig, seed: int) -> DataSource:
    """The ``DataSource`` named by ``cfg.dataset``.

    ``digits``: scikit-learn's 1797 8x8 digits, a fixed stratified 80/20 train/test split
    (``train_test_split(random_state=0)``). ``npz:PATH``: arrays ``x_train, y_train, x_test,
    y_test``. ``folder:PATH``: ``PATH/{train,test}/<class>/<image>``, read into memory. Other
    names: TFDS (prepared, or ``download=True``). The search-valid split is ``valid_fraction``
    of the training split, chosen with ``seed`` for in-memory data.

    Raises:
        UserError: the data is missing, malformed or unknown.
    """
    check_source(cfg)
    name = cfg.dataset
    if name == "digits":
        return _digits(cfg, seed)
    if name.startswith("npz:"):
        arrays = memory.lookup(name) or files.read_npz(name[4:])
        return from_arrays(name, *arrays, cfg, seed)
    if name.startswith("folder:"):
        *arrays, num_classes = files.read_folder(name[7:], cfg.image_size)
        return from_arrays(name, *arrays, cfg, seed, num_classes=num_classes)
    return _tfds(name, cfg, seed)
