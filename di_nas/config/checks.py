"""The choices the configuration offers and the checks every section runs on its values.

Each check raises `UserError` with one line naming the field and the fix. Imports `errors` and
the space registry (no TensorFlow) only.
"""

from __future__ import annotations

from di_nas.errors import UserError
from di_nas.search_space import registry as space_registry

SPACES = space_registry.names()  # The registered search spaces (importing them needs no TF).
CONTROLLERS = ("reinforce", "random", "bayesian")
DI_INPUTS = ("mean", "covariance")
DI_PROJECT = ("gradient", "step", "buffer")
DI_SCOPES = ("all", "ops", "fixed")
OFFPATH_MOMENTUM = ("lazy", "decay")
PD_PROTOCOLS = ("search", "pair")
STUDIES = ("pd", "rank", "search")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def check(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def positive(section: str, **values: float) -> None:
    for name, value in values.items():
        check(value > 0, f"{section}{'.' if section else ''}{name} must be positive, "
                          f"got {value!r}")


def non_negative(section: str, **values: float) -> None:
    for name, value in values.items():
        check(value >= 0, f"{section}{'.' if section else ''}{name} must be >= 0, "
                           f"got {value!r}")


def choice(section: str, name: str, value: str, choices: tuple[str, ...]) -> None:
    check(value in choices,
           f"{section}.{name}={value!r} is not known: use one of {', '.join(choices)}")
