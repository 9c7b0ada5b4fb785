"""Weight-sharing supernets, one per search space, and the factory that builds them."""

from __future__ import annotations

from di_nas.errors import UserError

__all__ = ["build_supernet"]


def build_supernet(space_name: str, num_classes: int, image_shape, space_cfg, seed: int = 0):
    """The supernet of `space_name` sized by `space_cfg` (a `config.SpaceConfig`).

    enas_micro reads `num_layers`, `filters`, `stem_multiplier` and `share_across_inputs`;
    nb201 reads `num_cells` and `filters`.
    """
    if space_name == "enas_micro":
        from di_nas.supernet.enas import EnasMicroSupernet

        return EnasMicroSupernet(
            num_classes, image_shape, num_layers=space_cfg.num_layers,
            filters=space_cfg.filters, stem_multiplier=space_cfg.stem_multiplier,
            share_across_inputs=space_cfg.share_across_inputs, seed=seed,
            bn_affine=space_cfg.bn_affine)
    if space_name == "nb201":
        from di_nas.supernet.nb201 import Nb201Supernet

        return Nb201Supernet(num_classes, image_shape, num_cells=space_cfg.num_cells,
                             filters=space_cfg.filters, seed=seed,
                             bn_affine=space_cfg.bn_affine)
    raise UserError(f"no supernet for search space '{space_name}': choose enas_micro or nb201")
