"""The performance-disturbance (PD) study: does DI keep A's accuracy while B trains?

Two protocols (`study.protocol`): ``search`` (the default, `di_nas.studies.pd_search`) measures
PD inside the search's own step sequence; ``pair`` (this module) isolates one pair (A, B) at a
time, as follows, for one seed. Both report through `di_nas.studies.pd_report`.

1. Warm up a supernet (`cfg.space`, at most `STUDY_NUM_LAYERS` normal cells so that the
   study fits in minutes on a CPU) with uniformly sampled architectures and plain weight
   sharing (`study.warmup_steps`, cosine learning rate); momentum is then cleared.
2. Draw `study.pairs` random pairs (A, B) that share a searched op weight.
3. For each method, from the warmed-up weights for every pair and with the same batches:
   reset `P`; train A for `study.steps` steps as plain weight sharing does, at the constant
   rate `optim.learning_rate` (DI's `P` records A's inputs meanwhile but does not project A's
   own steps); evaluate A on search-valid; train B for `study.steps` steps with the method
   under test (DI: projected against A's inputs, `P` held fixed); evaluate A again
   (`di_nas.disturbance.measure_disturbance`). A thus reaches the same weights and accuracy
   under every method, and its drop measures only what training B does to it: PD(A | B).
   A search trains each sampled architecture for one step, so an architecture protecting
   itself against its own earlier steps (A's steps projected against A, B's against B) is an
   artefact of training one architecture for many steps here, not part of PD(A | B): it would
   also compare drops from different starting accuracies and charge DI for B's self-freezing.
   Methods: `plain` weight sharing, `di` (`cfg.di`, enabled whatever `--di` says) and
   `plain_matched`: plain with B's learning rate lowered until B's accuracy gain matches DI's
   (geometric bisection on the first few pairs), so DI is not credited for merely learning less.
4. Write `<output_dir>/pd.json`, `pd.png` and `pd.md` (chief only, atomically) and print the
   headline figures.

`P` is reset at the start of every pair (this study's reading of `di.reset`), so it holds the
inputs of A alone while B trains.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm  # a widget in Jupyter, a text bar elsewhere

from di_nas import distribute
from di_nas.search_space import get_space
from di_nas.studies import disturbance, pd_report
from di_nas.supernet import build_supernet
from di_nas.training.loops import SharedLoop
from di_nas.training.shared_step import SharedWeightTrainer

CALIBRATION_PAIRS = 3
BISECTION_ROUNDS = 5  # The bracket [LR_FLOOR * lr, lr] narrows to a factor of 1.13.
STUDY_NUM_LAYERS = 2  # Normal cells of the study network (plus 2 reduction cells).
LR_FLOOR = 0.02  # The matched rate is searched in [LR_FLOOR * lr, lr].
MAX_EVAL_EXAMPLES = 5000
METHODS = pd_report.METHODS


class StudyTrainer(SharedWeightTrainer):
    """A `SharedWeightTrainer` whose learning rate is a variable the study sets between steps
    (one trace serves the warm-up schedule and every rate the bisection tries)."""

    def __init__(self, supernet, optim_cfg, di_cfg=None, total_steps: int = 1000):
        super().__init__(supernet, optim_cfg, di_cfg, total_steps)
        self.lr = tf.Variable(float(optim_cfg.learning_rate), trainable=False, name="lr")

    def learning_rate(self):
        return self.lr


def study_strategy(cfg):
    """The strategy the study runs under (`--strategy`)."""
    return distribute.get_strategy(cfg.distribute)


def valid_batches(cfg, source, replicas: int) -> list:
    """Search-valid batches (at most MAX_EVAL_EXAMPLES), each a multiple of `replicas` long."""
    from di_nas.data import make_dataset

    ds = make_dataset(source, "valid", cfg.data.eval_batch_size, training=False, cfg=cfg.data,
                      seed=cfg.seed)
    batches = []
    for images, labels in ds.take(max(1, MAX_EVAL_EXAMPLES // cfg.data.eval_batch_size)):
        keep = (int(images.shape[0]) // replicas) * replicas
        if keep:
            batches.append((images.numpy()[:keep], labels.numpy()[:keep]))
    return batches


def _pair_batches(cfg, source, pair: int, steps: int):
    """The `2 * steps` training batches of one pair: the same for every method."""
    from di_nas.data import make_dataset

    ds = make_dataset(source, "train", cfg.data.batch_size, training=True, cfg=cfg.data,
                      seed=cfg.seed * 1000 + pair + 1)
    return ds.take(2 * steps).as_numpy_iterator()


def sample_pairs(space, num_pairs: int, rng: np.random.Generator, max_tries: int = 10000):
    """`num_pairs` pairs of distinct architectures that share a searched op weight."""
    pairs = []
    for _ in range(max_tries):
        if len(pairs) == num_pairs:
            break
        a, b = space.sample(rng), space.sample(rng)
        if a != b and disturbance.shares_ops(a, b):
            pairs.append((a, b))
    if len(pairs) < num_pairs:
        raise RuntimeError(f"found only {len(pairs)} of {num_pairs} pairs sharing ops")
    return pairs


def warm_up(loop, cfg, source, space, steps: int, rng: np.random.Generator) -> None:
    """`steps` plain steps of `loop` (a `SharedLoop`) on uniformly sampled architectures,
    cosine learning rate."""
    from di_nas.data import make_dataset
    from di_nas.training import masked_sgd as optim

    if not steps:
        return
    batches = make_dataset(source, "train", cfg.data.batch_size, training=True, cfg=cfg.data,
                           seed=cfg.seed).as_numpy_iterator()
    c = cfg.optim
    for step in tqdm(range(steps), desc="pd warm-up", leave=False, mininterval=2.0):
        loop.trainer.lr.assign(float(optim.cosine_lr(step, steps, c.learning_rate,
                                                c.learning_rate_min)))
        disturbance.train_arch(loop, space.sample(rng), batches, 1)


def summarize(rows: list[dict]) -> dict:
    """Means and standard deviations of the per-pair measurements."""
    out = {}
    for key in ("pd_acc", "pd_loss", "b_gain", "a_acc_before", "b_acc_after"):
        values = np.array([r[key] for r in rows], np.float64)
        out[f"{key}_mean"] = float(values.mean())
        out[f"{key}_std"] = float(values.std())
    return out


class _Runner:
    """Runs pairs for a method from the warmed-up snapshot."""

    def __init__(self, cfg, source, pairs, snap, eval_batches, bar):
        self.cfg, self.source, self.pairs = cfg, source, pairs
        self.snap, self.eval_batches, self.bar = snap, eval_batches, bar

    def run(self, loop, lr_b: float, indices) -> list[dict]:
        """Pairs `indices`: A trained as plain weight sharing does, at the study's rate (DI's
        `P` records A's inputs meanwhile), then B by `loop`'s trainer at rate `lr_b` (DI's `P`
        held)."""
        trainer = loop.trainer
        rows = []
        steps = self.cfg.study.steps
        lr = float(self.cfg.optim.learning_rate)

        def phase(name):
            trainer.lr.assign(lr if name == "a" else lr_b)
            disturbance.pd_phase(trainer, name)

        for i in indices:
            a, b = self.pairs[i]
            disturbance.restore(trainer, self.snap)
            batches = _pair_batches(self.cfg, self.source, i, steps)
            rows.append(disturbance.measure_disturbance(
                loop, a, b, batches, self.eval_batches, steps, reset_projectors=True,
                phase=phase))
            self.bar.update(1)
        return rows


def match_learning_rate(runner, loop, lr: float, target_gain: float, indices,
                        rounds: int = BISECTION_ROUNDS) -> tuple[float, list]:
    """The tried rate in `[LR_FLOOR * lr, lr]` whose mean B gain on `indices` is closest to
    `target_gain` (geometric bisection; B's gain grows with the rate)."""
    lo, hi = LR_FLOOR * lr, lr
    tried = []
    for _ in range(rounds):
        mid = float(np.sqrt(lo * hi))
        gain = float(np.mean([r["b_gain"] for r in runner.run(loop, mid, indices)]))
        tried.append({"lr": mid, "b_gain_mean": gain})
        if gain > target_gain:
            hi = mid
        else:
            lo = mid
    best = min(tried, key=lambda t: abs(t["b_gain_mean"] - target_gain))
    return best["lr"], tried


def _run_methods(runner, loops, lr, num_pairs, n_cal, bar):
    """Plain and DI on every pair, then plain at the rate matching DI's gain (the control)."""
    all_pairs = range(num_pairs)
    rows = {"plain": runner.run(loops["plain"], lr, all_pairs),
            "di": runner.run(loops["di"], lr, all_pairs)}
    target = float(np.mean([r["b_gain"] for r in rows["di"][:n_cal]]))
    plain_cal = float(np.mean([r["b_gain"] for r in rows["plain"][:n_cal]]))
    if plain_cal <= target:  # Plain learns no more than DI: nothing to lower.
        rows["plain_matched"] = rows["plain"]
        bar.update(num_pairs + BISECTION_ROUNDS * n_cal)
        return rows, lr, []
    matched_lr, tried = match_learning_rate(runner, loops["plain"], lr, target, range(n_cal))
    rows["plain_matched"] = runner.run(loops["plain"], matched_lr, all_pairs)
    return rows, matched_lr, tried


def run_pd_study(cfg, source) -> dict:
    """Runs the pair-protocol PD study (see the module docstring); returns what `pd.json`
    holds. `pd_search.run_pd` dispatches on `study.protocol`."""
    start = time.time()
    study = cfg.study
    space_cfg = dataclasses.replace(cfg.space,
                                    num_layers=min(cfg.space.num_layers, STUDY_NUM_LAYERS))
    space = get_space(cfg.space.name)
    rng = np.random.default_rng(cfg.seed)
    di_cfg = dataclasses.replace(cfg.di, enabled=True)
    strategy = study_strategy(cfg)
    with strategy.scope():
        supernet = build_supernet(cfg.space.name, source.num_classes, source.image_shape,
                                  space_cfg, seed=cfg.seed)
        plain = StudyTrainer(supernet, cfg.optim, None, max(study.warmup_steps, 1))
        di = StudyTrainer(supernet, cfg.optim, di_cfg, max(study.warmup_steps, 1))
        plain_loop = SharedLoop(plain)
        loops = {"plain": plain_loop, "di": SharedLoop(di, evaluator=plain_loop.eval_batch)}
        eval_batches = valid_batches(cfg, source, strategy.num_replicas_in_sync)
        warm_up(plain_loop, cfg, source, space, study.warmup_steps, rng)
        for var in plain.momentum.values():
            var.assign(tf.zeros_like(var))
        snap = disturbance.snapshot(plain)
        pairs = sample_pairs(space, study.pairs, rng)
        n_cal = min(CALIBRATION_PAIRS, study.pairs)
        total = 3 * study.pairs + BISECTION_ROUNDS * n_cal
        lr = float(cfg.optim.learning_rate)
        with tqdm(total=total, desc="pd pairs", unit="pair", mininterval=2.0) as bar:
            runner = _Runner(cfg, source, pairs, snap, eval_batches, bar)
            rows, matched_lr, tried = _run_methods(runner, loops, lr, study.pairs, n_cal, bar)
    result = {
        "plain": summarize(rows["plain"]),
        "di": summarize(rows["di"]),
        "plain_matched": {**summarize(rows["plain_matched"]), "lr": matched_lr},
        "pairs": study.pairs,
        "steps": study.steps,
        "warmup_steps": study.warmup_steps,
        "dataset": source.name,
        "seed": cfg.seed,
        "lr": lr,
        "lr_search": tried,
        "space": dataclasses.asdict(space_cfg),
        "di_config": dataclasses.asdict(di_cfg),
        "archs": [[list(a.values), list(b.values)] for a, b in pairs],
        "per_pair": rows,
        "protocol": "pair",
        "seeds": 1,
        "window": study.steps,
        "seconds": time.time() - start,
    }
    for method in METHODS:
        result[method]["per_seed"] = pd_report.per_seed_means(rows[method], [cfg.seed])
    pd_report.add_intervals(result, rows)
    return pd_report.finish(result, cfg.output_dir, distribute.is_chief(strategy))

