"""Datasets for di-nas: sources (what the data is) and tf.data pipelines (how it is fed).

Public API::

    source = load_source(cfg.data, seed=cfg.seed)            # DataSource
    train = make_dataset(source, "train", cfg.data.batch_size, training=True,
                         cfg=cfg.data, seed=cfg.seed)         # float32 (B,H,W,C), int32 (B,)
    normalize(images_0_255, source)                          # also used by export
    check_source(cfg.data)                                   # cheap, no TensorFlow

Names are resolved lazily so that ``check_source`` runs before TensorFlow starts (the CLI
relies on it). The package must not define flags, pick a distribution strategy or build models.
Imports `config` and `errors` of di_nas only.
"""

import importlib

_EXPORTS = {
    "make_dataset": "pipeline",
    "normalize": "pipeline",
    "preprocess": "pipeline",
    "SPLITS": "sources",
    "DataSource": "sources",
    "from_arrays": "sources",
    "load_source": "sources",
    "check_source": "checks",
    "default_data_dir": "checks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'di_nas.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"di_nas.data.{_EXPORTS[name]}"), name)
