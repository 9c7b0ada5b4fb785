"""The PD study in the search's own regime (`di-nas-study pd --protocol=search`, the default).

For each of `study.seeds` seeds (`seed .. seed + seeds - 1`), from an independent warm-up:

1. Warm up the study supernet with plain weight sharing on uniformly sampled architectures
   (`study.warmup_steps`, cosine rate); momentum stays live, as in a search.
2. From that state (weights and momentum), each method runs the same step sequence a search
   runs: one step per uniformly sampled architecture, the same architectures and batches for
   every method, at the constant rate `optim.learning_rate`, momentum and weight decay on,
   DI's `P` accumulating and reset as `di.reset` says (`epoch`: every
   `search.steps_per_epoch` steps).
3. At `study.pairs` points `t` (every `window // 2` steps): the architecture `A` just trained
   at step `t` is evaluated on search-valid right after its step and again `window` steps
   later, while the search trains whatever it samples. PD is the accuracy drop (and loss rise)
   of `A` over the window. *Plasticity* (`b_gain`) is how much the sampled architectures
   themselves improve: the search-valid accuracy of the architecture trained at step
   `t + window`, right after its step, minus its accuracy at `t`.
4. Methods: `plain`, `di` (`cfg.di`, enabled whatever `--di` says) and `plain_matched`: plain
   at the rate whose plasticity matches DI's (geometric bisection on the first seed's first
   points), so DI is not credited for merely learning less.

Intervals: `pd_acc_ci95` is a bootstrap over all points of all seeds; `di_minus_plain_ci95`
a paired bootstrap of DI's drop minus plain's over the same points. Imports studies,
training, supernet, search_space and data; nothing reads flags here.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from tqdm.auto import tqdm  # a widget in Jupyter, a text bar elsewhere

from di_nas import distribute
from di_nas.data import make_dataset
from di_nas.distribute import get_strategy
from di_nas.search_space import get_space
from di_nas.studies import disturbance, pd, pd_report
from di_nas.supernet import build_supernet
from di_nas.training.loops import SharedLoop

CALIBRATION_POINTS = 6


def reset_period(cfg) -> int | None:
    """Steps between DI resets: `di.reset` read as the search reads it."""
    if cfg.di.reset == "epoch":
        return cfg.search.steps_per_epoch or None
    return cfg.di.reset_steps


def schedule(points: int, window: int) -> tuple[list[int], int]:
    """Measured steps `t` (every `window // 2`) and the length of the step sequence."""
    stride = max(1, window // 2)
    starts = [i * stride for i in range(points)]
    return starts, starts[-1] + window + 1


def _measure(loop, arch, eval_batches):
    return disturbance.evaluate_arch(loop, arch, eval_batches)


def run_sequence(loop, archs, batches, starts, window, eval_batches, reset_every, bar=None):
    """One step per architecture of `archs` (batches in order); returns one row per start.

    Each row: A's accuracy and loss right after its step (`a_acc_before`, `a_loss_before`)
    and `window` steps later (`a_acc_after`, ...), `pd_acc`, `pd_loss`, and plasticity
    `b_gain` of the architecture B trained at `t + window`, in two parts: `b_gain_shared`
    (B's gain up to just before its own step, from the other architectures' steps) and
    `b_gain_own` (what its own step at `t + window` adds).
    """
    trainer = loop.trainer
    pending, rows = {}, []
    batch_iter = iter(batches)
    for t, arch in enumerate(archs):
        if reset_every and t % reset_every == 0:
            trainer.reset_projectors()
        b_pre = _measure(loop, arch, eval_batches)["accuracy"] if t in pending else None
        disturbance.train_arch(loop, arch, batch_iter, 1)
        # The architecture just trained, once per step: B of a point ending here is A of the
        # point starting here.
        post = _measure(loop, arch, eval_batches) if t in pending or t in starts else None
        if t in pending:
            t0, a0, b0 = pending.pop(t)
            a1, b1 = _measure(loop, archs[t0], eval_batches), post
            rows.append({
                "t": t0, "a_acc_before": a0["accuracy"], "a_acc_after": a1["accuracy"],
                "pd_acc": a0["accuracy"] - a1["accuracy"], "a_loss_before": a0["loss"],
                "a_loss_after": a1["loss"], "pd_loss": a1["loss"] - a0["loss"],
                "b_acc_before": b0["accuracy"], "b_acc_after": b1["accuracy"],
                "b_gain": b1["accuracy"] - b0["accuracy"],
                "b_gain_shared": b_pre - b0["accuracy"], "b_gain_own": b1["accuracy"] - b_pre})
            if bar is not None:
                bar.update(1)
        if t in starts:
            pending[t + window] = (t, post, _measure(loop, archs[t + window], eval_batches))
    return rows


class _Seed:
    """One seed's warmed-up state, architectures and batches; runs a method from them."""

    def __init__(self, cfg, source, net, loops, seed, eval_batches):
        study = cfg.study
        self.cfg, self.loops, self.eval_batches = cfg, loops, eval_batches
        rng = np.random.default_rng(seed)
        reinit = np.random.default_rng(seed)  # The weights `build_supernet(seed=seed)` has.
        for bank in net.banks:
            bank.variable.assign(bank.initial_value(reinit))
        plain = loops["plain"]
        for var in plain.trainer.momentum.values():
            var.assign(var * 0.0)
        plain.trainer.step.assign(0)
        space = get_space(cfg.space.name)
        pd.warm_up(plain, cfg.replace(seed=seed), source, space, study.warmup_steps, rng)
        self.snap = disturbance.snapshot(plain.trainer)
        self.starts, length = schedule(study.pairs, study.window)
        self.archs = [space.sample(rng) for _ in range(length)]
        self.batches = list(make_dataset(
            source, "train", cfg.data.batch_size, training=True, cfg=cfg.data,
            seed=seed * 1000 + 7).take(length).as_numpy_iterator())

    def run(self, method: str, lr: float, points: int | None = None, bar=None) -> list[dict]:
        loop = self.loops["plain" if method == "plain_matched" else method]
        disturbance.restore(loop.trainer, self.snap)
        loop.trainer.lr.assign(lr)
        disturbance.pd_phase(loop.trainer, "search")
        starts = self.starts if points is None else self.starts[:points]
        length = starts[-1] + self.cfg.study.window + 1
        return run_sequence(loop, self.archs[:length], self.batches[:length], starts,
                            self.cfg.study.window, self.eval_batches, reset_period(self.cfg),
                            bar)


def _matched_lr(first: _Seed, lr: float, rows: dict) -> tuple[float, list]:
    """Plain's rate whose plasticity on the first seed's first points matches DI's."""
    n = min(CALIBRATION_POINTS, len(first.starts))
    target = float(np.mean([r["b_gain"] for r in rows["di"][:n]]))
    if float(np.mean([r["b_gain"] for r in rows["plain"][:n]])) <= target:
        return lr, []
    lo, hi, tried = pd.LR_FLOOR * lr, lr, []
    for _ in range(pd.BISECTION_ROUNDS):
        mid = float(np.sqrt(lo * hi))
        gain = float(np.mean([r["b_gain"] for r in first.run("plain_matched", mid, n)]))
        tried.append({"lr": mid, "b_gain_mean": gain})
        lo, hi = (lo, mid) if gain > target else (mid, hi)
    return min(tried, key=lambda t: abs(t["b_gain_mean"] - target))["lr"], tried


def summarize(rows: dict, seeds: list[int]) -> dict:
    """Per method: `pd.summarize` of all points, `pd_acc_ci95` and per-seed means; and the
    paired `di_minus_plain_ci95`. `rows`: `{method: [[row, ...] per seed]}`."""
    flat = {m: [r for seed_rows in per_seed for r in seed_rows] for m, per_seed in rows.items()}
    out = {m: {**pd.summarize(flat[m]), "per_seed": pd_report.per_seed_means(flat[m], seeds),
               **{f"{k}_mean": float(np.mean([r[k] for r in flat[m]]))
                  for k in ("b_gain_shared", "b_gain_own")}}
           for m in flat}
    out["per_pair"] = flat
    return pd_report.add_intervals(out, flat)


def run(cfg, source) -> dict:
    """Runs the search-protocol PD study; returns what `pd.json` holds (see `pd.run_pd_study`)."""
    start = time.time()
    study = cfg.study
    space_cfg = dataclasses.replace(cfg.space,
                                    num_layers=min(cfg.space.num_layers, pd.STUDY_NUM_LAYERS))
    di_cfg = dataclasses.replace(cfg.di, enabled=True)
    seeds = [cfg.seed + i for i in range(study.seeds)]
    lr = float(cfg.optim.learning_rate)
    strategy = get_strategy(cfg.distribute)
    rows = {m: [] for m in pd.METHODS}
    with strategy.scope():
        net = build_supernet(cfg.space.name, source.num_classes, source.image_shape, space_cfg,
                             seed=cfg.seed)
        plain = SharedLoop(pd.StudyTrainer(net, cfg.optim, None, max(study.warmup_steps, 1)))
        loops = {"plain": plain, "di": SharedLoop(
            pd.StudyTrainer(net, cfg.optim, di_cfg, max(study.warmup_steps, 1)),
            evaluator=plain.eval_batch)}
        eval_batches = pd.valid_batches(cfg, source, strategy.num_replicas_in_sync)
        matched_lr, tried = lr, []
        with tqdm(total=3 * study.pairs * len(seeds), desc="pd points", mininterval=2.0) as bar:
            for i, seed in enumerate(seeds):
                state = _Seed(cfg, source, net, loops, seed, eval_batches)
                for method in ("plain", "di"):
                    rows[method].append(state.run(method, lr, bar=bar))
                if i == 0:
                    matched_lr, tried = _matched_lr(
                        state, lr, {m: rows[m][0] for m in ("plain", "di")})
                rows["plain_matched"].append(
                    state.run("plain_matched", matched_lr, bar=bar) if matched_lr != lr
                    else rows["plain"][-1])
    result = summarize(rows, seeds)
    result["plain_matched"]["lr"] = matched_lr
    _, length = schedule(study.pairs, study.window)
    result.update({
        "protocol": "search", "pairs": study.pairs * len(seeds), "steps": length,
        "window": study.window, "seeds": len(seeds), "warmup_steps": study.warmup_steps,
        "dataset": source.name, "seed": cfg.seed, "lr": lr, "lr_search": tried,
        "reset_every": reset_period(cfg), "space": dataclasses.asdict(space_cfg),
        "di_config": dataclasses.asdict(di_cfg),
        "seconds": time.time() - start})
    return result


def run_pd(cfg, source) -> dict:
    """`di-nas-study pd`: the search protocol here, the pair protocol in `pd.run_pd_study`."""
    if cfg.study.protocol == "pair":
        return pd.run_pd_study(cfg, source)
    return pd_report.finish(run(cfg, source), cfg.output_dir,
                            distribute.is_chief(pd.study_strategy(cfg)))
