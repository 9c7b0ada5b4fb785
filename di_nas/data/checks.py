"""Cheap checks that ``--dataset`` names usable data, run before TensorFlow starts.

The command-line wrapper calls ``check_source`` so that a typo in a dataset name or path ends
in one clear line instead of a TensorFlow start-up. This module must not import TensorFlow,
read image data or download anything.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping

from absl import logging

from di_nas.config import DataConfig
from di_nas.data import files, memory
from di_nas.errors import UserError

FORMS = "use digits, npz:PATH, folder:PATH or a TFDS image-classification name such as cifar10"


def default_data_dir() -> str:
    """Where TFDS looks when ``--data_dir`` is not given."""
    return os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))


@contextlib.contextmanager
def _quiet_absl():
    # TFDS logs warnings about half-written data dirs; our one-line error says it better.
    level = logging.get_verbosity()
    logging.set_verbosity(logging.ERROR)
    try:
        yield
    finally:
        logging.set_verbosity(level)


def tfds_builder(name: str, cfg: DataConfig):
    """The TFDS builder for ``name`` (nothing is read or downloaded).

    Raises:
        UserError: ``name`` is not a TFDS image-classification dataset.
    """
    import tensorflow_datasets as tfds

    if not re.fullmatch(r"[a-z0-9_]+(/[\w.-]+)?(:[\d.*]+)?", name):
        raise UserError(f"unknown dataset {name!r}: {FORMS}")
    with _quiet_absl():
        try:
            builder = tfds.builder(name, data_dir=cfg.data_dir)
        except ValueError:  # DatasetNotFoundError and malformed names
            raise UserError(f"unknown dataset {name!r}: {FORMS}") from None
        features = builder.info.features
    if builder.info.supervised_keys is None or "image" not in features or "label" not in features:
        raise UserError(f"dataset {name!r} is not an image-classification dataset: {FORMS}")
    return builder


def check_prepared(name: str, builder, cfg: DataConfig) -> None:
    """Raises ``UserError`` when the TFDS data is absent and ``--download`` is off."""
    with _quiet_absl():
        if builder.is_prepared() or cfg.download:
            return
    where = cfg.data_dir or default_data_dir()
    raise UserError(f"dataset {name!r} is not prepared in {where}: run with --download on a "
                    f"machine with network, or `tfds build {name} --data_dir={where}`")


def check_batches(sizes: Mapping[str, int], batch_size: int, flag: str) -> None:
    """Raises ``UserError`` when a split holds fewer examples than one batch of ``flag``.

    Args:
        sizes: examples per split, e.g. ``{"search-train": 700, "search-valid": 700}``.
        batch_size: the global batch size.
        flag: the flag that sets it, named in the message (``--batch_size``).
    """
    for split, n in sizes.items():
        if n < batch_size:
            raise UserError(f"{flag}={batch_size} is larger than the {split} split ({n} "
                            f"examples): lower {flag} or add data")


def check_source(cfg: DataConfig) -> None:
    """Checks that ``cfg.dataset`` names usable data, without reading it.

    Raises:
        UserError: unknown form or TFDS name, missing file or folder, TFDS data not prepared.
    """
    name = cfg.dataset
    if name == "digits":
        return
    if name.startswith("npz:"):
        if memory.lookup(name) is None:  # arrays handed to the Python API are in memory
            files.check_npz_path(name[4:])
    elif name.startswith("folder:"):
        files.check_folder(name[7:])
    else:
        check_prepared(name, tfds_builder(name, cfg), cfg)
