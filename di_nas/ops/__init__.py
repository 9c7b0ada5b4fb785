"""Candidate ops of the search spaces: one op table per space, and their child-network layers.

An op table is a tuple of `Op` values in the order architectures encode them (`base.py`,
`enas_micro.py`, `nb201.py`): each op's name, kind, kernel shape and whether it has weights.
Code that needs to know what an op does reads these fields, never an op's index or name.
`layers.py` turns an op into the Keras layers of a standalone child network, named after the
supernet's sites.

Imports: `base`, `enas_micro` and `nb201` import nothing but the standard library and each
other (search spaces and the config read them without TensorFlow); `layers` may import Keras
and `di_nas.supernet.functional` (the batch-norm epsilon the supernets use). Nothing here
imports search spaces, supernets, training or flags.
"""

from di_nas.ops.base import Op

__all__ = ["Op"]
