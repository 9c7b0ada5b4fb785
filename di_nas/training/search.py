"""The search job: shared-weight training and controller training per epoch, then derive.

Per epoch: a shared-weight phase (one architecture sampled per step inside the compiled step,
from a stateless seed `(seed, step)` so every replica and worker draws the same one and a
resumed run draws what the interrupted run would have), then a controller phase (rewards =
accuracy of sampled architectures on one search-valid batch with the shared weights). At the
end, candidates are scored on the whole search-valid split and the best is written out.

Resuming: checkpoints (supernet, momentum, projectors, controller, step counters) are written
at every epoch end and on SIGTERM/SIGINT; the data order of an epoch is a function of
`(seed, epoch)`, so a resumed run skips to the same position. Only the chief writes files;
every worker resumes from the chief's checkpoints. How a stop reaches every worker of a
multi-worker job (TensorFlow's PreemptionCheckpointHandler): `training.preemption`.
"""

from __future__ import annotations

import functools
import os
import time

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from di_nas import data as data_lib
from di_nas import distribute
from di_nas.controller import make_oracle
from di_nas.data.checks import check_batches
from di_nas.search_space import get_space
from di_nas.supernet import build_supernet
from di_nas.training import checkpoints, outputs, precision, preemption, progress
from di_nas.training.loops import SharedLoop
from di_nas.training.shared_step import SharedWeightTrainer


def epoch_batches(source, data_cfg, split: str, seed: int, epoch: int) -> tf.data.Dataset:
    """The repeated batches of `split` in `epoch`, in an order that is a function of
    `(seed, epoch)`. Search-train is augmented; search-valid (the controller's rewards) is not,
    but is shuffled too, so each epoch's rewards come from other batches (as ENAS's
    `valid_shuffle` reward batches), not from the same first batches every epoch."""
    return data_lib.make_dataset(source, split, data_cfg.batch_size, training=split == "train",
                                 cfg=data_cfg, seed=seed * 100003 + epoch, repeat=True,
                                 shuffle=True)


class Search:
    """Builds everything a search needs under the strategy and runs the epochs."""

    def __init__(self, cfg, strategy, source):
        self.cfg = cfg
        self.strategy = strategy
        self.space = get_space(cfg.space.name)
        self.source = source
        batch = cfg.data.batch_size
        self.steps_per_epoch = cfg.search.steps_per_epoch or self.source.num_train // batch
        self.total_steps = self.steps_per_epoch * cfg.search.epochs
        with strategy.scope(), precision.policy(cfg.distribute.precision):
            self.supernet = build_supernet(cfg.space.name, self.source.num_classes,
                                           self.source.image_shape, cfg.space, cfg.seed)
            self.trainer = SharedWeightTrainer(self.supernet, cfg.optim, cfg.di,
                                               self.total_steps,
                                               jit_compile=cfg.distribute.jit_compile)
            self.epochs_done = tf.Variable(0, dtype=tf.int64, trainable=False)
        # The controller is small and runs outside strategy.run (on the host for TPUs).
        # Non-chief workers write their (collective) checkpoints where nobody reads them, and
        # resume from the chief's (a file system every worker sees, as for final training).
        root = distribute.write_dir(cfg.output_dir, strategy)
        # The oracle's files go back to what the checkpoint to resume from recorded (they are
        # committed with it), so trials never run ahead of the restored supernet; a non-chief
        # worker takes its logs from the chief's.
        self.resume_from = checkpoints.roll_back(
            os.path.join(cfg.output_dir, "checkpoints"), os.path.join(root, "oracle"),
            source_dir=os.path.join(cfg.output_dir, "oracle"))
        self.oracle = make_oracle(cfg.controller, self.space, cfg.seed,
                                  directory=os.path.join(root, "oracle"))
        self.checkpoint = tf.train.Checkpoint(
            supernet=self.supernet, trainer=self.trainer, epochs_done=self.epochs_done,
            files=checkpoints.FileLedger(os.path.join(root, "oracle")),
            **self.oracle.checkpoint_items())
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(root, "checkpoints"),
            max_to_keep=2)
        self.reset_every = cfg.di.reset_steps
        self._compile()

    # Compiled steps --------------------------------------------------------------------------

    def _compile(self):
        trainer, seed = self.trainer, self.cfg.seed

        def arch_for_step():
            # Stateless in (seed, global step): the same on every replica and worker, and
            # redrawn identically after a resume.
            step_seed = tf.stack([tf.constant(seed, tf.int64), trainer.step])
            return self.oracle.sample(1, step_seed)[0]

        self.loop = SharedLoop(trainer, sample=arch_for_step, strategy=self.strategy)

    # Phases ----------------------------------------------------------------------------------

    def _dataset(self, split, epoch, skip=0):
        ds = epoch_batches(self.source, self.cfg.data, split, self.cfg.seed, epoch)
        if skip:
            ds = ds.skip(skip)
        return iter(distribute.distribute_dataset(self.strategy, ds))

    def shared_phase(self, epoch, stop, writer):
        start = int(self.trainer.step.numpy()) - epoch * self.steps_per_epoch
        iterator = self._dataset("train", epoch, skip=start)
        chunk = max(1, self.cfg.search.log_every)
        bar = tqdm(total=self.steps_per_epoch, initial=start, desc=f"epoch {epoch + 1} weights",
                   leave=False, disable=None)
        metrics = {}
        step_in_epoch = start
        while step_in_epoch < self.steps_per_epoch:
            if self.reset_every and self.trainer.step.numpy() % self.reset_every == 0:
                self.trainer.reset_projectors()
            n = min(chunk, self.steps_per_epoch - step_in_epoch)
            if self.reset_every:
                n = min(n, self.reset_every - int(self.trainer.step.numpy()) % self.reset_every)
            metrics = {k: float(np.mean(v)) for k, v in self.loop.train(iterator, n).items()}
            step_in_epoch += n
            bar.update(n)
            bar.set_postfix(loss=f"{metrics['loss']:.3f}", acc=f"{metrics['accuracy']:.3f}")
            if writer:
                with writer.as_default(step=int(self.trainer.step.numpy())):
                    tf.summary.scalar("shared/loss", metrics["loss"])
                    tf.summary.scalar("shared/accuracy", metrics["accuracy"])
                    tf.summary.scalar("shared/learning_rate", self.trainer.learning_rate())
            if stop.raised:
                break
            stop.safe_point(f"in epoch {epoch + 1}")
        bar.close()
        return metrics

    def controller_phase(self, epoch, writer):
        cfg = self.cfg.controller
        iterator = self._dataset("valid", epoch)
        bar = tqdm(range(cfg.steps_per_epoch), desc=f"epoch {epoch + 1} controller",
                   leave=False, disable=None)
        rewards = []
        for i in bar:
            images, labels = next(iterator)
            seed = tf.constant([self.cfg.seed + 7919, epoch * cfg.steps_per_epoch + i], tf.int64)
            metrics = self.oracle.round(functools.partial(self.loop.rewards, images, labels), seed)
            rewards.append(metrics["reward_mean"])
            bar.set_postfix(reward=f"{metrics['reward_mean']:.3f}")
        if writer:
            with writer.as_default(step=int(self.trainer.step.numpy())):
                for key, value in metrics.items():
                    tf.summary.scalar(f"controller/{key}", value)
        return {"reward_mean": float(np.mean(rewards)), **metrics}

    # Derive ----------------------------------------------------------------------------------

    def candidates(self):
        archs = self.oracle.candidates(self.cfg.search.num_candidates, self.cfg.seed)
        return [self.space.architecture(a) for a in dict.fromkeys(archs)]

    def derive(self):
        # The batch shape of the controller's rewards, so `evaluate` is not traced again; the
        # last partial batch of search-valid is left out.
        ds = data_lib.make_dataset(self.source, "valid", self.cfg.data.batch_size,
                                   training=False, cfg=self.cfg.data, seed=self.cfg.seed)
        ds = ds.unbatch().batch(self.cfg.data.batch_size, drop_remainder=True)
        batches = list(distribute.distribute_dataset(self.strategy, ds))
        results = []
        for arch in tqdm(self.candidates(), desc="derive", leave=False,
                         disable=None):
            results.append({"values": list(arch.values), "readable": str(arch),
                            **self.loop.evaluate(batches, arch.to_tensor())})
        results.sort(key=lambda r: (-r["accuracy"], r["loss"]))
        return results


def run_search(cfg) -> dict:
    """Runs (or resumes, or reports) the search that `cfg` describes; returns the result."""
    # The strategy first: a multi-worker strategy must exist before TensorFlow runs any op.
    strategy = distribute.get_strategy(cfg.distribute)
    chief = distribute.is_chief(strategy)
    if cfg.search.deterministic:
        tf.config.experimental.enable_op_determinism()
    tf.keras.utils.set_random_seed(cfg.seed)
    # Every input is checked before the first byte is written.
    source = data_lib.load_source(cfg.data, cfg.seed)
    check_batches({"search-train": source.num_train, "search-valid": source.num_valid},
                  cfg.data.batch_size, "--batch_size")
    with outputs.claimed(cfg.output_dir, "di-nas-search", chief):
        if chief:
            outputs.prepare_output_dir(cfg)
        return _search(cfg, strategy, chief, source)


def _search(cfg, strategy, chief, source) -> dict:
    """The search in a claimed (validated, locked) output directory."""
    finished = outputs.read_result(cfg.output_dir)
    if finished is not None:
        progress.log(f"search in {cfg.output_dir} already finished; reporting its result")
        outputs.print_result(finished, cfg.output_dir)
        return finished
    search = Search(cfg, strategy, source)
    if search.resume_from:
        search.checkpoint.restore(search.resume_from).assert_existing_objects_matched()
        progress.log(f"resuming from epoch {int(search.epochs_done.numpy()) + 1} (step "
                     f"{int(search.trainer.step.numpy())}) of {cfg.output_dir}")
    writer = (tf.summary.create_file_writer(os.path.join(cfg.output_dir, "tensorboard",
                                                         "search")) if chief else None)
    start = time.time()
    with preemption.stopper(strategy, search.manager, cfg.output_dir) as stop:
        # Said once signals are handled: a stop from here on is checkpointed.
        weights = sum(int(np.prod(b.variable.shape)) for b in search.supernet.banks)
        progress.log(f"search network: {cfg.space.name}, {len(search.supernet.banks)} banks, "
                     f"{weights / 1e6:.2f} M shared weights; DI "
                     f"{'on' if search.trainer.di else 'off'}, projector memory "
                     f"{search.trainer.projector_bytes()} bytes")
        ctrl = _epochs(cfg, search, stop, writer, start)
    candidates = search.derive()
    summary = {"final_reward_mean": None if ctrl is None else ctrl["reward_mean"],
               "search_seconds": round(time.time() - start, 1),
               "chance": 1.0 / source.num_classes}
    result = outputs.write_result(cfg, search.space, candidates, chief, summary)
    outputs.print_result(result, cfg.output_dir)
    return result


def _epochs(cfg, search, stop, writer, start) -> dict | None:
    """The epochs left to run; returns the last controller phase's metrics (None if none ran).

    Raises:
        KeyboardInterrupt: `stop` was raised, or a worker of a multi-worker job was told to
            stop; the checkpoint is saved.
    """
    ctrl = None
    for epoch in range(int(search.epochs_done.numpy()), cfg.search.epochs):
        step_in_epoch = int(search.trainer.step.numpy()) - epoch * search.steps_per_epoch
        if cfg.di.reset == "epoch" and step_in_epoch == 0:
            search.trainer.reset_projectors()
        shared = search.shared_phase(epoch, stop, writer)
        if stop.raised:
            search.manager.save()
            raise KeyboardInterrupt(f"stopped in epoch {epoch + 1}; checkpoint saved in "
                                    f"{cfg.output_dir}: run the same command to resume")
        ctrl = search.controller_phase(epoch, writer)
        search.epochs_done.assign(epoch + 1)
        search.manager.save()
        if writer:
            with writer.as_default(step=int(search.trainer.step.numpy())):
                for name, value in search.trainer.projector_stats().items():
                    tf.summary.scalar(f"projector_trace/{name}", value)
            writer.flush()
        progress.log(
            f"epoch {epoch + 1}/{cfg.search.epochs}: loss {shared.get('loss', np.nan):.4f}, "
            f"train acc {shared.get('accuracy', np.nan):.4f}, reward "
            f"{ctrl['reward_mean']:.4f}, lr {float(search.trainer.learning_rate()):.5f}, "
            f"{time.time() - start:.0f}s")
        if stop.raised:
            raise KeyboardInterrupt(f"stopped after epoch {epoch + 1}; checkpoint saved in "
                                    f"{cfg.output_dir}: run the same command to resume")
        stop.safe_point(f"after epoch {epoch + 1}")
    return ctrl
