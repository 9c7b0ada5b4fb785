"""The rank study's ground truth: every architecture trained standalone from `GT_SEEDS` seeds
(`standalone.train_child` with the search optimiser), scored on the study's search-valid
examples.

The trainings are independent tasks (`studies.parallel`): with more than one job they run in
worker processes while the caller trains the supernets. Every task is seeded on its own and
each worker rebuilds the same evaluation examples, so a task gets the same initial weights,
batches and examples wherever it runs. May import `data`, `distribute`, `search_space` and
`studies`; never the CLI.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from di_nas.studies import parallel, standalone
from di_nas.studies.pd import valid_batches

GT_SEEDS = 2  # Standalone trainings per architecture (ground truth and its self-agreement).
SPACE = "nb201"

__all__ = ["GT_SEEDS", "evaluation", "start", "collect"]

def evaluation(cfg, source=None, strategy=None) -> dict:
    """`standalone.process_context` with the search-valid examples every architecture is
    scored on: `batches` (a list), `labels` and `dataset` (a `tf.data.Dataset`)."""
    ctx = standalone.process_context(cfg, source, strategy)
    if "batches" not in ctx:
        with ctx["strategy"].scope():
            batches = valid_batches(cfg, ctx["source"], ctx["strategy"].num_replicas_in_sync)
            images = np.concatenate([b[0] for b in batches])
            labels = np.concatenate([b[1] for b in batches])
            dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(
                cfg.data.eval_batch_size)
        ctx.update(batches=batches, labels=labels, dataset=dataset)
    return ctx


def child_config(cfg, space_cfg):
    """`cfg` whose `final` section trains a child with the search optimiser (`cfg.optim`)."""
    o = cfg.optim
    return cfg.replace(final={
        "batch_size": cfg.data.batch_size, "learning_rate": o.learning_rate,
        "learning_rate_min": o.learning_rate_min, "momentum": o.momentum,
        "weight_decay": o.weight_decay, "grad_clip_norm": o.grad_clip_norm,
        "label_smoothing": 0.0, "auxiliary_weight": 0.0, "drop_path": 0.0,
        "num_layers": space_cfg.num_cells, "filters": space_cfg.filters})


def _train(cfg, space_cfg, values: tuple, seed: int) -> dict:
    from di_nas.search_space import get_space

    ctx = evaluation(cfg)
    arch = get_space(SPACE).architecture(list(values))
    with ctx["strategy"].scope():
        return standalone.train_child(child_config(cfg, space_cfg), ctx["source"], arch,
                                      cfg.study.child_steps, ctx["dataset"], seed=seed,
                                      nesterov=cfg.optim.nesterov)


def start(cfg, archs, space_cfg, workers: int) -> parallel.Tasks:
    """Starts every ground-truth training (seed-major: `cfg.seed + g` for each arch) in
    `workers` worker processes, or here when `results()` is called if 0."""
    tasks = [(cfg, space_cfg, tuple(a.values), cfg.seed + g)
             for g in range(GT_SEEDS) for a in archs]
    logs = [os.path.join(cfg.output_dir, "runs", f"child_{i:02d}.log") for i in range(len(tasks))]
    if workers:
        os.makedirs(os.path.join(cfg.output_dir, "runs"), exist_ok=True)
    return parallel.Tasks(_train, tasks, workers, logs)


def collect(tasks: parallel.Tasks, archs, steps: int) -> list[list[dict]]:
    """The trainings' results, [seed][arch] -> `train_child`'s result, with a progress bar."""
    from tqdm.auto import tqdm

    with tqdm(total=GT_SEEDS * len(archs) * steps, desc="rank children", unit="step",
              mininterval=2.0) as bar:
        flat = tasks.results(on_done=lambda i, _: bar.update(steps))
    return [flat[g * len(archs):(g + 1) * len(archs)] for g in range(GT_SEEDS)]
