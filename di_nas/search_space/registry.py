"""The registry of search spaces: one `SpaceEntry` per space, looked up by name.

An entry ties a space's pieces together: its `SearchSpace` (pure data, with its op table and
its drawing), the module of its supernet and the module of its standalone child network. The
model modules are named by import path and imported only when a network is built, so this
module, the search spaces and `di_nas.config` (which validates `--space` with `names()`) stay
free of TensorFlow. Entries are listed explicitly in `ENTRIES`; importing a module registers
nothing. Adding a space: its `search_space`, `ops`, `supernet` and `child` modules, and one
entry here.

A supernet module provides `build_supernet(num_classes, image_shape, space_cfg, seed)` and
reads its sizes from `space_cfg` (a `config.SpaceConfig`); a child module provides
`build_child(arch, num_classes, image_shape, num_layers, filters, stem_multiplier, name, *,
auxiliary, drop_path)`.

Imports: the standard library, `di_nas.errors` and `search_space`'s own modules (which import
`di_nas.ops`). Never TensorFlow or Keras at import time, training or flags.
"""

from __future__ import annotations

import dataclasses
import importlib

from di_nas.errors import UserError
from di_nas.search_space import enas_micro, nb201
from di_nas.search_space.base import SearchSpace


@dataclasses.dataclass(frozen=True)
class SpaceEntry:
    """One search space and where its networks are built.

    Attributes:
      space: the space (one shared instance); its `name` is the registry key.
      supernet_module: import path of the module with `build_supernet`.
      child_module: import path of the module with `build_child`.
      child_extras: whether its child network has DARTS' auxiliary head and drop path.
    """

    space: SearchSpace
    supernet_module: str
    child_module: str
    child_extras: bool = False

    @property
    def name(self) -> str:
        return self.space.name

    def build_supernet(self, num_classes: int, image_shape, space_cfg, seed: int = 0):
        """The space's supernet, sized by `space_cfg` (a `config.SpaceConfig`)."""
        module = importlib.import_module(self.supernet_module)
        return module.build_supernet(num_classes, image_shape, space_cfg, seed)

    def build_child(self, arch, num_classes: int, image_shape, **sizes):
        """The standalone Keras network of `arch` (see `di_nas.child.build_child`)."""
        module = importlib.import_module(self.child_module)
        return module.build_child(arch, num_classes, image_shape, **sizes)


ENTRIES = (
    SpaceEntry(enas_micro.SPACE, "di_nas.supernet.enas", "di_nas.child.enas",
               child_extras=True),
    SpaceEntry(nb201.SPACE, "di_nas.supernet.nb201", "di_nas.child.nb201"),
)
_BY_NAME = {entry.name: entry for entry in ENTRIES}


def names() -> tuple[str, ...]:
    """The names of the registered spaces, in registration order."""
    return tuple(_BY_NAME)


def entry(name: str) -> SpaceEntry:
    """The entry of space `name`.

    Raises:
      UserError: no space is called `name` (the message lists the known ones).
    """
    if name not in _BY_NAME:
        raise UserError(f"unknown search space '{name}': choose one of {', '.join(names())}")
    return _BY_NAME[name]
