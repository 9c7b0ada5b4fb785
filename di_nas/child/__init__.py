"""Standalone Keras networks of an architecture: final training, export and the Python API.

May import `search_space`, `ops` and `supernet.layout`/`supernet.functional` constants; never
the training loops or flags.
"""

from di_nas.child.enas import DropPath, build_child, load_path_weights, set_drop_path_scale

__all__ = ["DropPath", "build_child", "load_path_weights", "set_drop_path_scale"]
