"""Configuration sections of the other jobs: final training, export, studies, distribution and
the benchmark.

Frozen dataclasses that validate themselves; no TensorFlow, no flags, no files.
"""

from __future__ import annotations

from dataclasses import dataclass

from di_nas.config.checks import (
    PD_PROTOCOLS,
    PRECISIONS,
    STRATEGIES,
    STUDIES,
    check,
    choice,
    non_negative,
    positive,
)


@dataclass(frozen=True)
class FinalConfig:
    """Training the derived architecture from scratch (``architecture`` is a JSON path)."""

    architecture: str | None = None
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 0.05
    learning_rate_min: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 3e-4
    num_layers: int = 6
    filters: int = 20
    auxiliary_weight: float = 0.0
    drop_path: float = 0.0
    label_smoothing: float = 0.0
    grad_clip_norm: float = 5.0

    def __post_init__(self):
        positive("final", epochs=self.epochs, batch_size=self.batch_size,
                  learning_rate=self.learning_rate, num_layers=self.num_layers,
                  filters=self.filters)
        non_negative("final", learning_rate_min=self.learning_rate_min,
                      momentum=self.momentum, weight_decay=self.weight_decay,
                      auxiliary_weight=self.auxiliary_weight, grad_clip_norm=self.grad_clip_norm)
        check(0.0 <= self.drop_path < 1.0,
               f"final.drop_path must be in [0, 1), got {self.drop_path!r}")
        check(0.0 <= self.label_smoothing < 1.0,
               f"final.label_smoothing must be in [0, 1), got {self.label_smoothing!r}")


@dataclass(frozen=True)
class ExportConfig:
    """SavedModel export; ``export_dir=None`` means ``<output_dir>/saved_model``."""

    export_dir: str | None = None
    tflite: bool = False


# Standalone training steps per architecture when ``child_steps`` is not given, per study: the
# rank study's ground truth (nb201 children, the search's optimiser) and the search study's
# children (final training's network), each chosen for its own study (README, Results).
CHILD_STEPS = {"rank": 300, "search": 50}

# Epochs of each search in the search study when ``search_epochs`` is not given: a short search
# (the default search's 15 epochs cut to 10, the learning rate annealed over them), so that the
# study's 9 searches and 29 children fit its time budget on a 2-core CPU (README, Results).
SEARCH_STUDY_EPOCHS = 10


@dataclass(frozen=True)
class StudyConfig:
    """Performance-disturbance (``pd``), rank-correlation (``rank``) and search (``search``)
    studies. ``child_steps=None`` means the study's own default (``CHILD_STEPS``),
    ``search_epochs=None`` the search study's (``SEARCH_STUDY_EPOCHS``); ``jobs=0``
    lets the search study choose how many of its tasks run at once
    (``studies.parallel.default_jobs``)."""

    name: str = "pd"
    pairs: int = 20
    steps: int = 30
    warmup_steps: int = 300
    archs: int = 24
    child_steps: int | None = None
    supernet_steps: int = 1500
    seeds: int = 3
    protocol: str = "search"
    window: int = 20
    random_archs: int = 10
    search_epochs: int | None = None
    jobs: int = 0

    def __post_init__(self):
        choice("study", "name", self.name, STUDIES)
        choice("study", "protocol", self.protocol, PD_PROTOCOLS)
        positive("study", window=self.window)
        positive("study", pairs=self.pairs, steps=self.steps, archs=self.archs,
                  supernet_steps=self.supernet_steps, seeds=self.seeds,
                  random_archs=self.random_archs)
        if self.child_steps is not None:
            positive("study", child_steps=self.child_steps)
        if self.search_epochs is not None:
            positive("study", search_epochs=self.search_epochs)
        non_negative("study", warmup_steps=self.warmup_steps, jobs=self.jobs)

    def child_budget(self) -> int:
        """``child_steps``, or this study's default when it is None."""
        return self.child_steps if self.child_steps is not None else CHILD_STEPS[self.name]

    def search_budget(self) -> int:
        """``search_epochs``, or ``SEARCH_STUDY_EPOCHS`` when it is None."""
        return self.search_epochs if self.search_epochs is not None else SEARCH_STUDY_EPOCHS


@dataclass(frozen=True)
class DistributeConfig:
    """Where and how the steps run: the tf.distribute strategy (``devices`` is a
    comma-separated list), XLA, and the compute precision (a Keras mixed-precision policy
    name, or float32)."""

    strategy: str = "default"
    tpu: str = ""
    devices: str = ""
    jit_compile: bool = False
    precision: str = "float32"

    def __post_init__(self):
        choice("distribute", "strategy", self.strategy, STRATEGIES)
        choice("distribute", "precision", self.precision, PRECISIONS)

    @property
    def device_list(self) -> tuple[str, ...]:
        """``devices`` split on commas, empty entries dropped."""
        return tuple(d.strip() for d in self.devices.split(",") if d.strip())


@dataclass(frozen=True)
class BenchConfig:
    """Micro-benchmarks; ``output=''`` means ``<output_dir>/bench.json``."""

    output: str = ""
    quick: bool = False
    accelerator: bool = False


# Sections whose fields define what a search computes (used by ``fingerprint``), with the
# fields that do not (where to read data from, logging, evaluation batch size).
