"""The Python API of di-nas: search, train and export from a notebook or a script.

``di_nas.search``, ``di_nas.train``, ``di_nas.export`` and ``di_nas.DINASTuner`` live here
(``jobs``, ``results``, ``tuner``) and are exported, lazily, by ``di_nas`` itself; the
command-line tools call the same jobs. ``options`` (the flag table) is imported by the CLI and
must stay free of TensorFlow. This package may import every
library package below it (training, export, data, controller, ...), never ``di_nas.cli``.
"""
