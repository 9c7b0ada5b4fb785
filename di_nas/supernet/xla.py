"""Keeps XLA from interpreting the supernets while it compiles their control flow.

`tf.switch_case` and `tf.cond` (and the gradient ops TensorFlow builds for them) carry
`_xla_propagate_compile_time_consts` inside an XLA context. With it, XLA's bridge asks its
value inference, for every input of every such op, whether the input is a compile-time
constant; for an activation that means evaluating the whole network that feeds it with XLA's
HLO interpreter. A supernet is a chain of such ops, so the compile time grew with their
number more than in proportion: a one-cell enas_micro train step did not finish compiling
on a 2-core CPU in 6 minutes. The supernets' branches need no constant from outside (their
shapes are static and built inside), so turning the attribute off loses nothing; an op that
did need one would fail to compile with an error naming it, not silently.
"""

from __future__ import annotations

import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2

ATTR = "_xla_propagate_compile_time_consts"
CONTROL_FLOW = frozenset({"If", "StatelessIf", "Case", "StatelessCase"})


def stop_constant_propagation() -> None:
    """Turns `ATTR` off on the control-flow ops of the graph being traced (a trace-time cost
    only); does nothing when executing eagerly."""
    if tf.executing_eagerly():
        return
    off = attr_value_pb2.AttrValue(b=False)
    for op in tf.compat.v1.get_default_graph().get_operations():
        attr = op.node_def.attr.get(ATTR)
        if op.type in CONTROL_FLOW and attr is not None and attr.b:
            op._set_attr(ATTR, off)  # No public setter; the attribute is only a hint to XLA.
