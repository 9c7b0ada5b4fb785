"""The one place a `tf.distribute.Strategy` is built, and the helpers the loops need around it.

`get_strategy(cfg.distribute)` always returns a strategy (the default one when not
distributing); the job enters its scope once and library code stays strategy-agnostic
(`tf.distribute.get_strategy()`). This module must not build models, read flags or know about
search spaces.

Choices that hold for every strategy, and why:

- **Batch norm statistics are per replica.** The supernet's batch norm (`supernet.functional`)
  normalises with the statistics of the batch it sees, and under data parallelism that is each
  replica's own slice of the global batch; statistics are not all-reduced (no SyncBN). This is
  what data-parallel ENAS/DARTS searches do, and keeps BN free of cross-replica traffic. A
  consequence: two replicas at global batch 2B compute exactly the average of the gradients of
  the two B-halves, which is not the gradient of one replica normalising all 2B examples.
- **One architecture per step, the same on every replica and worker.** The search loop samples
  the architecture in the compiled step *outside* `strategy.run` (cross-replica context), from
  the controller's `tf.random.Generator` (or a stateless seed), and passes it to `strategy.run`
  as an argument: `strategy.run` broadcasts a plain tensor argument, so every replica of a
  worker gets the same value (`training.loops.run_steps(..., args_fn=sample)` does exactly
  this). Across
  workers, each worker runs the same cross-replica code on identical state (same seed, same
  mirrored controller weights, same number of draws), so each draws the same architecture;
  sampling inside `strategy.run` would instead give each replica its own stream, and the
  replicas would train different paths with mixed-up gradients.
- **DI stays identical on every replica**: `SharedWeightTrainer.train_step` all-reduces the
  gradients (SUM of per-replica losses scaled by the global batch) and the DI input
  statistics (MEAN) before one merged update, so every replica applies the same rows and the same
  projector update.
- **Only the chief writes** checkpoints, summaries and results (`is_chief`). Multi-worker
  checkpointing is collective, so every worker calls `save`; non-chief workers point it at a
  throwaway temporary directory (`write_dir`), as the TensorFlow multi-worker guide does.
- **Learning-rate scaling is never implicit.** `scale_learning_rate` (linear scaling, Goyal et
  al. 2017) computes the rate for a larger global batch; presets for large batches
  (`flags/tpu_pod.cfg`) store the scaled value, so the same flags mean the same run on any
  hardware.
- **Datasets are batched with the global batch** (`drop_remainder=True`, static shapes for
  TPU/XLA) and split across replicas by `distribute_dataset`.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from collections.abc import Iterable

import numpy as np
import tensorflow as tf

from di_nas.errors import UserError


def get_strategy(cfg) -> tf.distribute.Strategy:
    """The strategy `cfg` (a `DistributeConfig`) asks for; never None.

    - `default`: `tf.distribute.get_strategy()` (no distribution).
    - `mirrored`: `MirroredStrategy` over `cfg.devices`, else every GPU, else every logical CPU.
    - `multi_worker`: `MultiWorkerMirroredStrategy` from the `TF_CONFIG` environment variable.
      Build it at program start, before any other TensorFlow op runs.
    - `tpu`: connects to `cfg.tpu` (`local` on a TPU VM, the TPU name on a pod slice),
      initialises the TPU system and returns a `TPUStrategy`.

    Raises:
      UserError: TF_CONFIG is missing or invalid, or no TPU is found.
    """
    name = cfg.strategy
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = list(cfg.device_list)
        if not devices:
            devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        if not devices:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        if not any("GPU" in d.upper() for d in devices):
            # CPU replicas: reduce on one device. The default collective all-reduce caches
            # its instances per process, so a second MirroredStrategy in the same process
            # (a study after a search, or tests) can collide with the first one's keys.
            return tf.distribute.MirroredStrategy(
                devices=devices, cross_device_ops=tf.distribute.ReductionToOneDevice())
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        check_tf_config(os.environ.get("TF_CONFIG"))
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        return _tpu_strategy(cfg.tpu)
    raise UserError(f"distribute.strategy={name!r} is not known: use default, mirrored, "
                    "multi_worker or tpu")


def check_tf_config(text: str | None) -> dict:
    """Parses and validates a `TF_CONFIG` value; returns it as a dict.

    Raises:
      UserError: with the expected shape, when `text` is missing or not a valid cluster.
    """
    example = ('{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
               '"task": {"type": "worker", "index": 0}}')
    if not text:
        raise UserError("--strategy=multi_worker needs the TF_CONFIG environment variable on "
                        f"every worker, e.g. TF_CONFIG='{example}' (index differs per worker)")
    try:
        tf_config = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"TF_CONFIG is not valid JSON ({e.msg}): expected {example}") from None
    cluster = tf_config.get("cluster") if isinstance(tf_config, dict) else None
    task = tf_config.get("task") if isinstance(tf_config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise UserError(f"TF_CONFIG needs 'cluster' and 'task' objects: expected {example}")
    kind, index = task.get("type"), task.get("index")
    members = cluster.get(kind)
    if not isinstance(members, list) or not isinstance(index, int) \
            or not 0 <= index < len(members):
        raise UserError(f"TF_CONFIG task {task} is not in its cluster {cluster}: 'type' must "
                        "name a cluster job and 'index' a position in its list")
    return tf_config


def _tpu_strategy(tpu: str) -> tf.distribute.TPUStrategy:
    if not tpu:
        raise UserError("--strategy=tpu needs --tpu: pass --tpu=local on a TPU VM, or the TPU "
                        "name (gcloud compute tpus tpu-vm list) for a pod slice")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        if tpu != "local":
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"no TPU found for --tpu={tpu} ({reason}): run on a TPU VM with a "
                        "TensorFlow TPU runtime and --tpu=local, pass the pod slice's name, "
                        "or use --strategy=mirrored/default") from None
    if not tf.config.list_logical_devices("TPU"):
        raise UserError(f"--tpu={tpu} resolved but shows no TPU devices: check that "
                        "tensorflow-tpu is installed (pip install -e .[tpu]) and that no other "
                        "process holds the TPU")
    return tf.distribute.TPUStrategy(resolver)


# Who writes ------------------------------------------------------------------------------------


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether this process writes checkpoints, summaries and results.

    True for single-process strategies; under multi-worker strategies the chief is the `chief`
    task, or worker 0 when the cluster has no `chief` job.
    """
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or isinstance(strategy, tf.distribute.TPUStrategy):
        return True  # TPUStrategy is single-client: one Python process drives every host.
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type in (None, "chief"):
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def write_dir(output_dir: str, strategy: tf.distribute.Strategy | None = None) -> str:
    """`output_dir` on the chief; a fresh temporary directory on other workers.

    Collective saves (checkpoints under a multi-worker strategy) must run on every worker;
    non-chief workers write theirs where nobody reads them, and remove it when the process
    exits (a killed worker leaves it behind).
    """
    strategy = strategy or tf.distribute.get_strategy()
    if is_chief(strategy):
        return output_dir
    task_id = getattr(strategy.cluster_resolver, "task_id", 0)
    path = tempfile.mkdtemp(prefix=f"di_nas_worker{task_id}_")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


# Batches and learning rate ---------------------------------------------------------------------


def global_batch(per_replica: int, strategy: tf.distribute.Strategy | None = None) -> int:
    """The global batch for `per_replica` examples on each replica in sync."""
    strategy = strategy or tf.distribute.get_strategy()
    return int(per_replica) * strategy.num_replicas_in_sync


def per_replica_batch(global_size: int, strategy: tf.distribute.Strategy | None = None) -> int:
    """The per-replica share of a global batch; raises `UserError` unless it divides evenly."""
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    if global_size % replicas:
        raise UserError(f"global batch {global_size} does not split over {replicas} replicas: "
                        f"pass a --batch_size that is a multiple of {replicas}")
    return global_size // replicas


def scale_learning_rate(lr: float, global_size: int, base_batch: int) -> float:
    """Linear scaling: `lr * global_size / base_batch` (Goyal et al., 2017).

    For moving a preset tuned at `base_batch` (ENAS: 160 at lr 0.05) to a larger global batch
    (TPU pod slices). Never applied implicitly: the caller or the flagfile decides, so a flag
    value means the same on every machine. Use a warm-up when the factor is large.
    """
    if base_batch <= 0 or global_size <= 0:
        raise ValueError(f"batch sizes must be positive, got {global_size}, {base_batch}")
    return float(lr) * float(global_size) / float(base_batch)


def distribute_dataset(strategy: tf.distribute.Strategy, ds: tf.data.Dataset):
    """`ds` (batched with the global batch) split into per-replica batches.

    Multi-worker: sharded by data (each worker keeps every N-th batch), which works for any
    source, including in-memory arrays that file sharding cannot split, unless `ds` already
    sets a sharding policy.
    """
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        policy = ds.options().experimental_distribute.auto_shard_policy
        if policy == tf.data.experimental.AutoShardPolicy.AUTO:
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = (
                tf.data.experimental.AutoShardPolicy.DATA)
            ds = ds.with_options(options)
    return strategy.experimental_distribute_dataset(ds)


def split_batch(strategy, images, labels):
    """One host batch (numpy or tensors) -> per-replica values, as `distribute_dataset` splits
    a global batch (consecutive slices); the batch itself on a single replica."""
    n = strategy.num_replicas_in_sync
    images = tf.convert_to_tensor(images, tf.float32)
    labels = tf.convert_to_tensor(labels, tf.int32)
    if n == 1:
        return images, labels
    per, rest = divmod(int(images.shape[0]), n)
    if rest:
        raise ValueError(f"batch of {int(images.shape[0])} does not split over {n} replicas")

    def part(ctx):
        i = ctx.replica_id_in_sync_group
        return images[i * per:(i + 1) * per], labels[i * per:(i + 1) * per]

    return strategy.experimental_distribute_values_from_function(part)


def host_batches(strategy, batches: Iterable) -> Iterable:
    """A distributed iterator over host batches `(images, labels)` (numpy or tensors) of one
    global size, in order (e.g. for `training.loops.SharedLoop.train`)."""
    batches = list(batches)
    sizes = {len(b[1]) for b in batches}
    if len(sizes) != 1:
        raise ValueError(f"host batches must have one size, got {sorted(sizes)}")
    images = np.concatenate([np.asarray(b[0], np.float32) for b in batches])
    labels = np.concatenate([np.asarray(b[1], np.int32) for b in batches])
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(sizes.pop(),
                                                                   drop_remainder=True)
    return iter(distribute_dataset(strategy, ds))
