"""The `Op` value: one candidate op of a search space, as data.

What an op computes is given by its `kind`; the supernets and `ops.layers` implement each kind
once, so a space declares its ops here and nowhere else. Must not import TensorFlow or Keras.
"""

from __future__ import annotations

import dataclasses

# Kinds of ops: what the supernet's branch and the child's layers compute.
SEP_CONV = "sep_conv"  # `stacks` x (ReLU, depthwise k x k, pointwise 1x1, batch norm).
CONV = "conv"  # ReLU, k x k conv, batch norm.
AVG_POOL = "avg_pool"  # k x k average pooling, stride 1, SAME.
MAX_POOL = "max_pool"  # k x k max pooling, stride 1, SAME.
IDENTITY = "identity"
ZERO = "zero"  # Outputs zeros: the edge is absent.
KINDS = (SEP_CONV, CONV, AVG_POOL, MAX_POOL, IDENTITY, ZERO)
WEIGHTED = (SEP_CONV, CONV)
BN_EPSILON = 1e-5  # Of every batch norm, in supernets and child networks alike.


@dataclasses.dataclass(frozen=True)
class Op:
    """One candidate op.

    Attributes:
      name: the op's name in architectures, descriptions and drawings.
      kind: one of `KINDS`: what the op computes.
      kernel_size: side of its square kernel or pooling window (0: none).
      short: a short name, used in one-line descriptions and site names (default `name`).
      stacks: how many times a separable conv repeats (ENAS and DARTS stack two).
    """

    name: str
    kind: str
    kernel_size: int = 0
    short: str = ""
    stacks: int = 1

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"op {self.name!r}: unknown kind {self.kind!r}, use one of {KINDS}")
        if (self.kind in WEIGHTED or self.kind in (AVG_POOL, MAX_POOL)) and self.kernel_size < 1:
            raise ValueError(f"op {self.name!r} of kind {self.kind!r} needs a kernel_size")
        if not self.short:
            object.__setattr__(self, "short", self.name)

    @property
    def has_weights(self) -> bool:
        """Whether the op owns trainable kernels (which the supernet shares and DI protects)."""
        return self.kind in WEIGHTED

    @property
    def kernel_shape(self) -> tuple[int, int] | None:
        """The spatial shape of its kernel or window, None for identity and zero."""
        return (self.kernel_size, self.kernel_size) if self.kernel_size else None


def weighted(table) -> dict[int, Op]:
    """The ops of `table` that have weights, by their index in the encoding."""
    return {index: op for index, op in enumerate(table) if op.has_weights}
