"""Standalone (child) training for the studies: one architecture trained from scratch for a
fixed number of steps with final training's child machine (`training.final.make_train_loop`, a
`training.loops.ChildLoop`), and the JSON helpers the study reports share.

May import `child`, `data`, `distribute` and `training`; never the CLI or flags.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import tensorflow as tf

STEPS_PER_CALL = 25  # Child steps per compiled call (one progress update).

_CONTEXT: dict = {}  # Per process: what `process_context` returns.


def process_context(cfg, source=None, strategy=None) -> dict:
    """`{'source', 'strategy'}` for `cfg`'s data, seed and distribution, built once per process
    (a study's worker processes load their own; the study process passes its own in).
    Callers keep what they derive from them (evaluation sets) in the same dict."""
    key = repr((cfg.data, cfg.seed, cfg.distribute))
    if _CONTEXT.get("key") != key:
        from di_nas import distribute
        from di_nas.data import load_source

        _CONTEXT.clear()
        _CONTEXT.update(
            key=key, source=source if source is not None else load_source(cfg.data, seed=cfg.seed),
            strategy=strategy if strategy is not None else distribute.get_strategy(cfg.distribute))
    return _CONTEXT


def eval_dataset(cfg, source, split: str) -> tf.data.Dataset:
    """`split` batched for evaluation (no augmentation, fixed order)."""
    from di_nas.data import make_dataset

    return make_dataset(source, split, cfg.data.eval_batch_size, training=False, cfg=cfg.data,
                        seed=cfg.seed)


def train_child(cfg, source, arch, steps: int, eval_ds, *, split: str = "train",
                seed: int | None = None, nesterov: bool = False, bar=None) -> dict:
    """Trains `arch` standalone for `steps` steps on `split` and scores it on `eval_ds`.

    The network is `cfg.final.num_layers` cells of `cfg.final.filters` filters; SGD with
    momentum, weight decay, gradient clipping and a cosine learning rate from
    `cfg.final.learning_rate` to `learning_rate_min` over `steps` (final training's loop).
    `seed` (default `cfg.seed`) fixes the initial weights and the batch order. Call it inside
    the strategy's scope.

    Returns:
        `{'accuracy', 'loss'}` on `eval_ds` (inference mode), `train_loss` (mean of the last
        call's steps) and `params`.
    """
    import keras

    from di_nas import child as child_lib
    from di_nas import distribute
    from di_nas.data import make_dataset
    from di_nas.training import final

    seed = cfg.seed if seed is None else seed
    f = cfg.final
    keras.utils.set_random_seed(seed)
    model = child_lib.build_child(arch, source.num_classes, source.image_shape,
                                  num_layers=f.num_layers, filters=f.filters,
                                  stem_multiplier=cfg.space.stem_multiplier,
                                  cell_residual=cfg.space.cell_residual, name="study_child")
    schedule = keras.optimizers.schedules.CosineDecay(
        f.learning_rate, decay_steps=steps, alpha=f.learning_rate_min / f.learning_rate)
    optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=f.momentum,
                                     nesterov=nesterov)
    optimizer.build(model.trainable_variables)
    loop = final.make_train_loop(model, optimizer, cfg, source.num_classes)
    ds = make_dataset(source, split, f.batch_size, training=True, cfg=cfg.data, seed=seed)
    iterator = iter(distribute.distribute_dataset(tf.distribute.get_strategy(), ds))
    done, out = 0, {}
    while done < steps:
        n = min(STEPS_PER_CALL, steps - done)
        out = loop.train(iterator, tf.constant(n))
        done += n
        if bar is not None:
            bar.update(n)
    result = loop.evaluate(eval_ds)
    result["train_loss"] = float(out["loss"]) / max(float(out["count"]), 1.0)
    result["params"] = final.count_params(model)
    return result


def json_safe(value):
    """`value` with non-finite floats as None and NumPy scalars as Python ones."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(path: str, result: dict) -> None:
    """`result` as indented JSON (NaN as null), written atomically."""
    from di_nas.io import atomic_write_text

    atomic_write_text(path, json.dumps(json_safe(result), indent=2) + "\n")


def write_report(output_dir: str, name: str, result: dict, plot, markdown: str) -> None:
    """`<name>.json` (NaN as null), `<name>.png` (drawn by `plot(result, path)`) and
    `<name>.md` under `output_dir`, each written atomically."""
    from di_nas import io as dio

    dio.makedirs(output_dir)
    write_json(os.path.join(output_dir, f"{name}.json"), result)
    plot(result, os.path.join(output_dir, f"{name}.png"))
    dio.atomic_write_text(os.path.join(output_dir, f"{name}.md"), markdown)
