"""In-memory datasets handed to the Python API: NumPy arrays or a ``tf.data.Dataset``.

The arrays are validated exactly as an ``npz:PATH`` file is (``files.validate_arrays``), then
named by their content: ``npz:<output_dir>/dataset-<hash>.npz``. That name goes into the
config, so a search's fingerprint identifies its data, and the API writes the file there once
the job has accepted the directory: the command line resumes the search with
``--dataset=npz:...``. Until the file exists, jobs in this process read the arrays from
``register``'s table (``sources.load_source`` and ``checks.check_source`` ask ``lookup``).

This module imports NumPy only at import time (TensorFlow lazily, for datasets); it must not
batch, split or normalise.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from di_nas.data import files
from di_nas.errors import UserError

WHERE = "in-memory data"
TEST_FRACTION = 0.2  # held out as the test split when only (x_train, y_train) are given
_REGISTRY: dict[str, tuple[np.ndarray, ...]] = {}


def _from_dataset(ds) -> tuple[np.ndarray, np.ndarray]:
    """Every ``(image, label)`` of a ``tf.data.Dataset`` (batched or not), as two arrays."""
    import tensorflow as tf

    spec = ds.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2):
        raise UserError(f"{WHERE}: a tf.data.Dataset must yield (image, label) pairs, got "
                        f"elements {spec}")
    image_rank, label_rank = spec[0].shape.rank, spec[1].shape.rank
    if label_rank == 1 and image_rank == 4:
        ds = ds.unbatch()
    elif label_rank != 0:
        raise UserError(f"{WHERE}: labels must be integer class ids (one per image), got "
                        f"shape {spec[1].shape}")
    images, labels = [], []
    for x, y in ds.as_numpy_iterator():
        images.append(x)
        labels.append(y)
    if not images:
        raise UserError(f"{WHERE}: the tf.data.Dataset is empty")
    del tf
    return np.stack(images), np.asarray(labels)


def _split(x: np.ndarray, y: np.ndarray):
    """A seeded (seed 0) hold-out of ``TEST_FRACTION`` of the images as the test split."""
    order = np.random.default_rng(0).permutation(len(x))
    n_test = max(1, int(round(len(x) * TEST_FRACTION)))
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    return x[train], y[train], x[test], y[test]


def to_arrays(data) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)``, validated, from the API's ``data`` argument.

    ``data``: ``(x_train, y_train)``, ``(x_train, y_train, x_test, y_test)`` or a
    ``tf.data.Dataset`` of ``(image, label)``; without test arrays, ``TEST_FRACTION`` of the
    images (seeded) become the test split.

    Raises:
        UserError: wrong form, shape, dtype, length or labels.
    """
    if isinstance(data, (tuple, list)):
        if len(data) not in (2, 4):
            raise UserError(f"{WHERE}: pass (x_train, y_train) or (x_train, y_train, x_test, "
                            f"y_test), got a tuple of {len(data)}")
        arrays = [np.asarray(a) for a in data]
    elif type(data).__module__.startswith("tensorflow") and hasattr(data, "element_spec"):
        arrays = list(_from_dataset(data))
    else:
        raise UserError(f"{WHERE}: data must be a dataset name, a tuple of NumPy arrays or a "
                        f"tf.data.Dataset, got {type(data).__name__}")
    if len(arrays) == 2:
        x, y = arrays
        if len(x) != len(y):
            raise UserError(f"{WHERE}: y_train has {len(y)} labels for {len(x)} images: "
                            "lengths must match")
        arrays = list(_split(x, y))
    return files.validate_arrays(WHERE, *arrays)


def content_hash(arrays) -> str:
    """16 hex digits of the arrays' shapes, dtypes and bytes."""
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(f"{a.shape}{a.dtype}".encode())
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()[:16]


def spec_for(arrays, output_dir: str) -> str:
    """The dataset name of ``arrays`` in a job writing to ``output_dir``."""
    return "npz:" + os.path.join(output_dir, f"dataset-{content_hash(arrays)}.npz")


def register(spec: str, arrays) -> None:
    """Lets jobs in this process read ``spec`` from memory until its file exists."""
    _REGISTRY[spec] = tuple(arrays)


def lookup(spec: str):
    """The registered arrays of ``spec``, or None."""
    return _REGISTRY.get(spec)


def write(spec: str) -> None:
    """Writes the registered arrays of ``spec`` to its npz path (once; atomic rename)."""
    path = spec[len("npz:"):]
    arrays = _REGISTRY.get(spec)
    if arrays is None or os.path.exists(path):
        return
    tmp = f"{path}.tmp-{os.getpid()}.npz"
    np.savez(tmp, **dict(zip(files.NPZ_KEYS, arrays, strict=False)))
    os.replace(tmp, path)
