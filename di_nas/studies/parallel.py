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

__all__ = ["default_jobs", "study_jobs", "Tasks", "run_tasks", "MAX_CPU_JOBS"]


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


def study_jobs(cfg) -> int:
    """`cfg.study.jobs`, or `default_jobs` when it is 0."""
    return cfg.study.jobs or default_jobs(cfg.distribute)


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


def _watch_parent(parent: int, grace_seconds: float = 120.0) -> None:
    """Worker initializer: when the study process dies (SIGKILL, a crash), stop this worker as
    SIGTERM stops a job (a search checkpoints and stops), and exit after `grace_seconds` at the
    latest, so that no orphan keeps training into the output directory."""
    import signal
    import threading
    import time

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def _logged(fn, args: tuple, log_path: str):
    with _output_to(log_path):
        return fn(*args)


class Tasks:
    """`fn(*task)` for each task, started now in `workers` worker processes and collected by
    `results()`, so the caller can do other work meanwhile. Use it as a context manager: on
    leaving, tasks not yet started are cancelled and the workers shut down.

    `fn` must be a module-level function and its arguments picklable. With `workers=0` the
    tasks run here, in order, when `results()` is called, their output unredirected. Otherwise
    task `i`'s output goes to `log_paths[i]`.
    """

    def __init__(self, fn, tasks: list[tuple], workers: int, log_paths: list[str]):
        self._fn, self._tasks, self._pool, self._futures = fn, list(tasks), None, []
        if workers > 0 and self._tasks:
            self._pool = futures.ProcessPoolExecutor(
                min(workers, len(self._tasks)), mp_context=multiprocessing.get_context("spawn"),
                initializer=_watch_parent, initargs=(os.getpid(),))
            self._futures = [self._pool.submit(_logged, fn, task, log)
                             for task, log in zip(self._tasks, log_paths, strict=True)]

    def results(self, on_done=None) -> list:
        """Every task's result, in task order; `on_done(i, result)` as each finishes. A failed
        task's exception is raised here."""
        if self._pool is None:
            out = []
            for i, task in enumerate(self._tasks):
                out.append(self._fn(*task))
                if on_done is not None:
                    on_done(i, out[-1])
            return out
        out = [None] * len(self._tasks)
        index = {f: i for i, f in enumerate(self._futures)}
        for done in futures.as_completed(self._futures):
            i = index[done]
            out[i] = done.result()
            if on_done is not None:
                on_done(i, out[i])
        return out

    def __enter__(self) -> Tasks:
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def run_tasks(fn, tasks: list[tuple], jobs: int, log_paths: list[str], on_done=None) -> list:
    """Every task's result, in task order: `jobs` at a time in worker processes, or here one
    after the other when `jobs <= 1` (see `Tasks`)."""
    with Tasks(fn, tasks, jobs if jobs > 1 else 0, log_paths) as running:
        return running.results(on_done)
