"""di-nas: disturbance-immune weight sharing for neural architecture search (TensorFlow/Keras).

Public Python API (loaded on first use, so ``import di_nas`` stays cheap: no TensorFlow, no
flags)::

    result = di_nas.search(data, output_dir="runs/s", epochs=2)   # -> SearchResult
    trained = di_nas.train(result, data, output_dir="runs/t")     # -> TrainResult
    di_nas.export("runs/t", tflite=True)
    tuner = di_nas.DINASTuner(output_dir="runs/s", epochs=2)      # Keras Tuner's surface
    oracle = di_nas.reinforce_oracle("nb201", max_trials=50)      # for a plain kt.Tuner
    protector = di_nas.di.Protector(model)                        # DI for any Keras model

``data``: a dataset name (``"digits"``, a TFDS name, ``"npz:PATH"``, ``"folder:PATH"``), NumPy
arrays ``(x_train, y_train[, x_test, y_test])`` or a ``tf.data.Dataset`` of ``(image, label)``.
Keyword options are the command-line flag names. Bad input raises ``di_nas.UserError`` (a
``ValueError``) with the message the command line prints.

The root may import any package (it is the top of the import order).
"""

import importlib

from di_nas.errors import UserError  # noqa: F401 (public, in __all__)

__version__ = "0.1.0"

_EXPORTS = {
    "search": ("di_nas.api.jobs", "search"),
    "train": ("di_nas.api.jobs", "train"),
    "export": ("di_nas.api.jobs", "export"),
    "SearchResult": ("di_nas.api.results", "SearchResult"),
    "TrainResult": ("di_nas.api.results", "TrainResult"),
    "DINASTuner": ("di_nas.api.tuner", "DINASTuner"),
    "reinforce_oracle": ("di_nas.controller.oracle", "reinforce_oracle"),
}

__all__ = sorted([*_EXPORTS, "UserError", "__version__"])


def __getattr__(name):
    if name in ("di", "export"):  # Subpackage / callable submodule (`di_nas.export(...)`).
        return importlib.import_module(f"di_nas.{name}")
    if name not in _EXPORTS:
        raise AttributeError(f"module 'di_nas' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    return getattr(importlib.import_module(module), attribute)
