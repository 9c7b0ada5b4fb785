"""Disturbance immunity: the pure projector math (`math`) and the projector unit.

May import TensorFlow and NumPy only: no model, no loop, no flags.
"""

import importlib as _importlib

_KERAS_EXPORTS = ("Protector", "ProjectedOptimizer", "RememberCallback")


def __getattr__(name):
    # DI for any Keras model (`di_nas.di.Protector`), loaded on first use.
    if name in _KERAS_EXPORTS:
        return getattr(_importlib.import_module("di_nas.di.keras"), name)
    raise AttributeError(f"module 'di_nas.di' has no attribute {name!r}")
