"""Final training: one architecture trained from scratch, then evaluated on the test split.

``run_final_training(cfg)`` builds the child network at the final depth and width
(``cfg.final``), trains it on the whole training split (search-train + search-valid) with a
custom loop under the current ``tf.distribute`` strategy (SGD with momentum, cosine learning
rate, weight decay, label smoothing, gradient clipping, optional auxiliary head and drop path),
checkpoints every epoch and resumes, and writes under ``cfg.output_dir``::

    architecture.json        the architecture trained (a copy of --architecture)
    final_run.json           what the network is (ModelSpec) and the settings that trained it
    checkpoints/final/       model, optimizer, position (epoch, step), train time
    tensorboard/final/       per-epoch summaries
    metrics.json             test_accuracy, test_loss, params, epochs, train_seconds, ...

The data order of epoch ``e`` depends only on ``(seed, e)``, so the checkpointed position is
the data position. A checkpoint is written after every epoch and, on SIGTERM/SIGINT, after the
running chunk of steps (with the running sums of the epoch's metrics); a killed run restarts
from the last one with the same batches, and with ``--deterministic`` ends with the same
weights as a run never interrupted.

This module must not define flags or parse the command line (``di_nas.cli.train`` does).
"""

from __future__ import annotations

import os
import time
from typing import Any

import keras
import tensorflow as tf

from di_nas import child as child_lib
from di_nas import data as data_lib
from di_nas import distribute
from di_nas import io as dio
from di_nas.config import Config
from di_nas.errors import UserError
from di_nas.search_space import load_architecture, registry
from di_nas.training import checkpoints, outputs, precision, progress, signals
from di_nas.training.loops import ChildLoop, main_logits  # noqa: F401 (main_logits: export)
from di_nas.training.model_spec import ModelSpec, count_params

ARCHITECTURE_FILE = "architecture.json"
RUN_FILE = "final_run.json"
METRICS_FILE = "metrics.json"
CHECKPOINT_DIR = os.path.join("checkpoints", "final")
TENSORBOARD_DIR = os.path.join("tensorboard", "final")
SEARCH_ARCHITECTURE_FILE = "best_architecture.json"  # written by di-nas-search
STEPS_PER_LOOP = 10  # steps run inside one tf.function call (one progress-bar update)


def load_trained(output_dir: str) -> tuple[keras.Model, ModelSpec, str]:
    """The network ``di-nas-train`` trained in ``output_dir``: ``(model, spec, checkpoint)``.

    Raises:
        UserError: ``output_dir`` holds no trained network.
    """
    run = dio.read_json(os.path.join(output_dir, RUN_FILE))
    path = checkpoints.newest_usable(os.path.join(output_dir, CHECKPOINT_DIR))
    if run is None or path is None:
        raise UserError(f"no trained model in {output_dir}: run di-nas-train "
                        f"--architecture=PATH --output_dir={output_dir} first")
    spec = ModelSpec.from_dict(run["model"])
    model = spec.build()
    checkpoints.restore_partial(path, model=model)
    return model, spec, path


def _architecture_path(cfg: Config) -> str:
    if cfg.final.architecture:
        return cfg.final.architecture
    for name in (ARCHITECTURE_FILE, SEARCH_ARCHITECTURE_FILE):  # a resumed run, then a search
        path = os.path.join(cfg.output_dir, name)
        if tf.io.gfile.exists(path):
            return path
    raise UserError(f"no architecture given and none in {cfg.output_dir}: pass "
                    "--architecture=SEARCH_DIR/best_architecture.json (di-nas-search writes it "
                    "into its --output_dir)")


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch


def make_train_loop(model, optimizer, cfg: Config, num_classes: int) -> ChildLoop:
    """The child machine (`loops.ChildLoop`) with ``cfg.final``'s settings, in the scope.

    Its ``train(iterator, steps)`` returns sums over replicas and steps: ``loss`` (main head,
    per example), ``correct`` and ``count``.
    """
    final = cfg.final
    return ChildLoop(model, optimizer, num_classes, final.batch_size,
                     label_smoothing=final.label_smoothing,
                     auxiliary_weight=final.auxiliary_weight,
                     grad_clip_norm=final.grad_clip_norm, weight_decay=final.weight_decay,
                     jit_compile=cfg.distribute.jit_compile)


def _prepare(cfg: Config):
    """Validates the inputs; returns ``(arch, source, spec, steps_per_epoch)``."""
    final = cfg.final
    arch_path = _architecture_path(cfg)
    arch = load_architecture(arch_path)
    if not registry.entry(arch.space_name).child_extras and (final.auxiliary_weight
                                                             or final.drop_path):
        extras = ", ".join(e.name for e in registry.ENTRIES if e.child_extras)
        raise UserError(f"--auxiliary_weight and --drop_path are for {extras} architectures; "
                        f"{arch_path} is {arch.space_name}: set both to 0")
    source = data_lib.load_source(cfg.data, cfg.seed)
    steps_per_epoch = source.size("train_full") // final.batch_size
    if steps_per_epoch < 1:
        raise UserError(f"--final_batch_size={final.batch_size} exceeds the "
                        f"{source.size('train_full')} training examples: use a smaller one")
    spec = ModelSpec(
        space=arch.space_name, values=arch.values, num_classes=source.num_classes,
        image_shape=tuple(source.image_shape), mean=tuple(source.mean), std=tuple(source.std),
        num_layers=final.num_layers, filters=final.filters,
        stem_multiplier=cfg.space.stem_multiplier, auxiliary=final.auxiliary_weight > 0,
        drop_path=final.drop_path, dataset=source.name,
        cell_residual=cfg.space.cell_residual)
    return arch, source, spec, steps_per_epoch


def run_final_training(cfg: Config) -> dict[str, Any]:
    """Trains (or resumes, or just reports) the final network; returns the metrics.

    Raises:
        UserError: no or a bad architecture, unusable data, or an ``output_dir`` that another
            final training wrote.
    """
    out, final = cfg.output_dir, cfg.final
    arch, source, spec, steps_per_epoch = _prepare(cfg)
    record = outputs.final_run_record(cfg, spec)
    run_path, metrics_path = os.path.join(out, RUN_FILE), os.path.join(out, METRICS_FILE)
    outputs.check_same_final_run(run_path, record)
    metrics = dio.read_json(metrics_path)
    if metrics is not None and dio.read_json(run_path) is not None:
        progress.log(f"already trained: {metrics_path} (test_accuracy="
                     f"{metrics['test_accuracy']:.4f}); use another --output_dir to retrain")
        return metrics

    strategy = distribute.get_strategy(cfg.distribute)
    if cfg.search.deterministic:
        tf.config.experimental.enable_op_determinism()
    distribute.per_replica_batch(final.batch_size, strategy)  # must split evenly
    chief = distribute.is_chief(strategy)
    with outputs.claimed(out, "di-nas-train", chief):
        return _train(cfg, strategy, chief, arch, source, spec, steps_per_epoch)


def _train(cfg: Config, strategy, chief: bool, arch, source, spec: ModelSpec,
           steps_per_epoch: int) -> dict[str, Any]:
    """Trains in a claimed (validated, locked) output directory; returns the metrics."""
    out, final = cfg.output_dir, cfg.final
    run_path, metrics_path = os.path.join(out, RUN_FILE), os.path.join(out, METRICS_FILE)
    if chief:
        dio.makedirs(out)
        dio.atomic_write_text(os.path.join(out, ARCHITECTURE_FILE), arch.to_json() + "\n")
        dio.atomic_write_json(run_path, outputs.final_run_record(cfg, spec))
    with strategy.scope():
        loop, keeper, state = _restore_or_start(cfg, strategy, arch, spec, steps_per_epoch)
        model, epoch_var, seconds_var = loop.model, state["epoch"], state["seconds"]
        writer = (tf.summary.create_file_writer(os.path.join(out, TENSORBOARD_DIR)) if chief
                  else tf.summary.create_noop_writer())
        clock = progress.JobClock(final.epochs, done=int(epoch_var.numpy()))
        last = {}
        with signals.StopFlag() as stop:
            for epoch in range(int(epoch_var.numpy()) + 1, final.epochs + 1):
                last = _train_epoch(cfg, source, loop, epoch, steps_per_epoch, state, stop)
                if last is None:  # stopped mid-epoch: the checkpoint holds the position
                    keeper.save(int(state["steps"].numpy()))
                    raise KeyboardInterrupt(
                        f"stopped in epoch {epoch}; checkpoint saved in {out}: run the same "
                        "command to resume")
                seconds = last.pop("seconds")
                seconds_var.assign_add(seconds)
                epoch_var.assign(epoch)
                # Collective under multi-worker: every worker saves.
                keeper.save(int(state["steps"].numpy()))
                clock.epoch_done()
                with writer.as_default(step=epoch):
                    for name, value in last.items():
                        tf.summary.scalar(f"train/{name}", value)
                progress.log(progress.epoch_line(epoch, final.epochs, last, seconds,
                                                 clock.eta_seconds()))
        test = loop.evaluate(data_lib.make_dataset(
            source, "test", cfg.data.eval_batch_size, training=False, cfg=cfg.data,
            seed=cfg.seed))
    with writer.as_default(step=final.epochs):
        tf.summary.scalar("test/accuracy", test["accuracy"])
        tf.summary.scalar("test/loss", test["loss"])
    writer.flush()
    metrics = {
        "test_accuracy": test["accuracy"], "test_loss": test["loss"],
        "params": count_params(model), "epochs": final.epochs,
        "train_seconds": round(float(seconds_var.numpy()), 2), "steps_per_epoch": steps_per_epoch,
        "architecture": str(arch), "dataset": source.name, "num_test": source.num_test,
        "replicas": strategy.num_replicas_in_sync,
        **{f"final_train_{k}": v for k, v in last.items()},
    }
    if chief:
        dio.atomic_write_json(metrics_path, metrics)
    progress.log(f"test_accuracy={test['accuracy']:.4f} test_loss={test['loss']:.4f} "
                 f"params={metrics['params']:,} train time "
                 f"{progress.format_seconds(metrics['train_seconds'])}: {metrics_path}")
    return metrics


def _restore_or_start(cfg: Config, strategy, arch, spec: ModelSpec, steps_per_epoch: int):
    """The model's loop, checkpoint keeper and training state, restored from the last checkpoint
    when there is one (call inside the strategy's scope). The state: ``epoch`` (epochs done),
    ``sums`` (the unfinished epoch's running loss, correct and count sums) and ``seconds``
    (training time so far) and ``steps`` (train steps run, which says how far the epoch got;
    not the optimizer's counter, which a float16 loss scale leaves still on skipped steps)."""
    final = cfg.final
    keras.utils.set_random_seed(cfg.seed)
    with precision.policy(cfg.distribute.precision):  # float32 weights in every policy
        model = spec.build()
    schedule = keras.optimizers.schedules.CosineDecay(
        final.learning_rate, decay_steps=final.epochs * steps_per_epoch,
        alpha=final.learning_rate_min / final.learning_rate)
    optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=final.momentum)
    if cfg.distribute.precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(model.trainable_variables)  # slots must exist before a restore
    state = {"epoch": tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch"),
             "sums": tf.Variable([0.0] * 3, dtype=tf.float64, trainable=False,
                                 name="epoch_sums"),
             "seconds": tf.Variable(0.0, dtype=tf.float64, trainable=False,
                                    name="train_seconds"),
             "steps": tf.Variable(0, dtype=tf.int64, trainable=False, name="train_steps")}
    ckpt_dir = os.path.join(cfg.output_dir, CHECKPOINT_DIR)
    keeper = checkpoints.CheckpointKeeper(
        distribute.write_dir(ckpt_dir, strategy), model=model, optimizer=optimizer,
        epoch=state["epoch"], train_seconds=state["seconds"], epoch_sums=state["sums"],
        train_steps=state["steps"])
    restored = keeper.restore_latest(ckpt_dir)  # every worker reads the chief's
    if restored and not int(state["steps"].numpy()):  # written before ``train_steps`` existed
        state["steps"].assign(optimizer.iterations)
    epoch = int(state["epoch"].numpy())
    step = int(state["steps"].numpy()) - epoch * steps_per_epoch
    if restored and epoch >= final.epochs:
        progress.log(f"all {final.epochs} epochs trained ({restored}): evaluating")
    elif restored:
        at = f", step {step + 1}" if step else ""
        progress.log(f"resuming from epoch {epoch + 1}{at} of {final.epochs} ({restored})")
    else:
        progress.log(f"training {arch} ({count_params(model):,} parameters) for "
                     f"{final.epochs} epochs of {steps_per_epoch} steps")
    loop = make_train_loop(model, optimizer, cfg, spec.num_classes)
    return loop, keeper, state


def _train_epoch(cfg: Config, source, loop: ChildLoop, epoch: int, steps_per_epoch: int,
                 state: dict, stop) -> dict[str, float] | None:
    """Epoch ``epoch`` from where the optimizer's step counter says it got; returns loss,
    accuracy, lr and seconds, or None when ``stop`` was raised before its end (``state`` then
    holds the epoch's running sums)."""
    strategy = tf.distribute.get_strategy()
    final = cfg.final
    child_lib.set_drop_path_scale(loop.model, (epoch - 1) / final.epochs)  # DARTS' linear ramp
    done = int(state["steps"].numpy()) - (epoch - 1) * steps_per_epoch
    dataset = data_lib.make_dataset(source, "train_full", final.batch_size, training=True,
                                    cfg=cfg.data, seed=_epoch_seed(cfg.seed, epoch)).skip(done)
    iterator = iter(distribute.distribute_dataset(strategy, dataset))
    start = time.monotonic()
    sums = dict(zip(("loss", "correct", "count"), state["sums"].numpy().tolist(), strict=True))
    with progress.EpochBar(epoch, final.epochs, steps_per_epoch) as bar:
        bar.update(done)
        while done < steps_per_epoch:
            steps = min(STEPS_PER_LOOP, steps_per_epoch - done)
            out = loop.train(iterator, tf.constant(steps))
            state["steps"].assign_add(steps)
            sums = {k: v + float(out[k]) for k, v in sums.items()}
            done += steps
            bar.update(steps, loss=sums["loss"] / sums["count"],
                       accuracy=sums["correct"] / sums["count"])
            if stop.raised and done < steps_per_epoch:
                state["sums"].assign([sums["loss"], sums["correct"], sums["count"]])
                state["seconds"].assign_add(time.monotonic() - start)
                return None
    state["sums"].assign([0.0] * 3)
    return {"loss": sums["loss"] / sums["count"], "accuracy": sums["correct"] / sums["count"],
            "learning_rate": float(loop.optimizer.learning_rate),
            "seconds": time.monotonic() - start}
