"""Candidate ops of the search spaces: one op table per space, and their child-network layers.

An op table is a tuple of `Op` values in the order architectures encode them (`base.py`,
`enas_micro.py`, `nb201.py`): each op's name, kind, kernel shape and whether it has weights.
Code that needs to know what an op does reads these fields, never an op's index or name.
`layers.py` turns an op into the Keras layers of a standalone child network, named after the
supernet's sites.

Imports: the standard library, and Keras in `layers` only (search spaces and the config read
the tables without TensorFlow). Nothing here imports another di_nas package: search spaces,
supernets and child networks import the ops, never the other way round.
"""

from di_nas.ops.base import Op

__all__ = ["Op"]
