"""The Python API of di-nas: search, train and export from a notebook or a script.

``di_nas.search``, ``di_nas.train``, ``di_nas.export`` and ``di_nas.DINASTuner`` live here; the
command-line tools call the same jobs. ``options`` (the flag table) is imported by the CLI and
must stay free of TensorFlow; the other modules are loaded lazily. This package may import every
library package below it (training, export, data, controller, ...), never ``di_nas.cli``.
"""

import importlib

_EXPORTS = {
    "search": "jobs", "train": "jobs", "export": "jobs",
    "SearchResult": "results", "TrainResult": "results",
    "DINASTuner": "tuner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'di_nas.api' has no attribute {name!r}")
    return getattr(importlib.import_module(f"di_nas.api.{_EXPORTS[name]}"), name)
