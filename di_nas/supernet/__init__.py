"""Weight-sharing supernets: banks, functional ops, one supernet per search space.

`build_supernet(space_name, ...)` builds the supernet of a registered space through
`search_space.registry`. Imports `search_space`, `ops`, `di.math` and TensorFlow/Keras; never
training loops, controllers or flags (a supernet knows no loop).
"""

from __future__ import annotations

from di_nas.search_space import registry

__all__ = ["build_supernet"]


def build_supernet(space_name: str, num_classes: int, image_shape, space_cfg, seed: int = 0):
    """The supernet of `space_name` sized by `space_cfg` (a `config.SpaceConfig`).

    Raises:
      UserError: no space is called `space_name`.
    """
    return registry.entry(space_name).build_supernet(num_classes, image_shape, space_cfg, seed)
