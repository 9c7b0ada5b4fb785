"""Independent pieces of a study (searches, standalone children) run side by side, each task in
a worker process of its own TensorFlow runtime.

On a CPU a search or a child training keeps about one core busy: tracing its compiled steps is
single-threaded Python, and small batches leave TensorFlow's thread pools half idle. Two
tasks at once on a 2-core machine finish in a little over half the time of one after the
other. On a GPU, or under a distribution strategy that already spreads one task over several
devices, tasks run one at a time in the calling process.

Workers are started with `spawn` (a fresh interpreter: TensorFlow is not fork-safe); each
task's output (logs, progress bars, TensorFlow's own messages) goes to its log file, not to the
terminal. May import `distribute`; never the CLI or flags.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from concurrent import futures

MAX_CPU_JOBS = 4  # More processes than this cost memory (a TensorFlow runtime each) for little.

__all__ = ["default_jobs", "run_tasks", "MAX_CPU_JOBS"]


def default_jobs(distribute_cfg, cpu_count: int | None = None, gpus: int | None = None) -> int:
    """How many tasks run at once when `study.jobs` is 0: one per CPU core (at most
    `MAX_CPU_JOBS`) on a machine without GPUs and the default strategy, else 1."""
    if distribute_cfg.strategy != "default":
        return 1
    if gpus is None:
        import tensorflow as tf

        gpus = len(tf.config.list_physical_devices("GPU"))
    if gpus:
        return 1
    return max(1, min(MAX_CPU_JOBS, cpu_count or os.cpu_count() or 1))


@contextlib.contextmanager
def _output_to(path: str):
    """File descriptors 1 and 2 (Python's and TensorFlow's output) appended to `path`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _logged(fn, args: tuple, log_path: str):
    with _output_to(log_path):
        return fn(*args)


def run_tasks(fn, tasks: list[tuple], jobs: int, log_paths: list[str], on_done=None) -> list:
    """`[fn(*task) for task in tasks]`, `jobs` at a time in worker processes.

    `fn` must be a module-level function and its arguments picklable. With `jobs <= 1` the
    tasks run here, in order, their output unredirected. Otherwise task `i`'s output goes to
    `log_paths[i]` and `on_done(i, result)` is called here as each finishes. A failed task's
    exception is raised here once the tasks already running have stopped; tasks not yet started
    are cancelled.
    """
    if jobs <= 1:
        results = []
        for i, task in enumerate(tasks):
            results.append(fn(*task))
            if on_done is not None:
                on_done(i, results[-1])
        return results
    results = [None] * len(tasks)
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(min(jobs, len(tasks)) or 1, mp_context=context) as pool:
        pending = {pool.submit(_logged, fn, task, log): i
                   for i, (task, log) in enumerate(zip(tasks, log_paths, strict=True))}
        try:
            for done in futures.as_completed(pending):
                i = pending[done]
                results[i] = done.result()
                if on_done is not None:
                    on_done(i, results[i])
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results
