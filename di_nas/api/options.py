"""Every di-nas option: the table that maps flag names to config fields, and the one function
that turns option values into a validated ``Config``.

The command-line flags (``di_nas.cli.flags``) and the Python API's keyword overrides
(``di_nas.search(..., epochs=2)``) are both built from ``FLAG_TABLE``, so they accept the same
names and report the same errors. Option defaults are read from the config dataclasses so the
two can never disagree. This module must not import absl flags, TensorFlow or anything above
``di_nas.config``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, NamedTuple

from di_nas import config as config_lib
from di_nas.errors import UserError


class FlagSpec(NamedTuple):
    """One flag: its name, the config field it sets and its help text."""

    name: str
    section: str  # a Config field holding a section, or "" for a top-level field
    field: str
    help: str
    choices: tuple[str, ...] | None = None


_S = FlagSpec
FLAG_TABLE: tuple[FlagSpec, ...] = (
    # data
    _S("dataset", "data", "dataset", "digits, a TFDS image-classification name (cifar10), "
       "npz:PATH or folder:PATH."),
    _S("data_dir", "data", "data_dir", "TFDS data directory (default: ~/tensorflow_datasets)."),
    _S("download", "data", "download", "Let TFDS download and prepare the dataset."),
    _S("valid_fraction", "data", "valid_fraction",
       "Fraction of the training split held out as search-valid (controller rewards)."),
    _S("batch_size", "data", "batch_size", "Global batch size of the search."),
    _S("eval_batch_size", "data", "eval_batch_size", "Global batch size for evaluation."),
    _S("augment", "data", "augment", "Augment training images (pad-crop, flip when CIFAR-like)."),
    _S("cutout", "data", "cutout", "Cutout square size in pixels (0 = off)."),
    _S("image_size", "data", "image_size", "Resize target (0 = native size; ImageNet: 224)."),
    _S("shuffle_buffer", "data", "shuffle_buffer", "Shuffle buffer size."),
    # space
    _S("space", "space", "name", "Search space.", config_lib.SPACES),
    _S("num_layers", "space", "num_layers",
       "Normal cells in the search net (2 reduction cells are added at 1/3 and 2/3)."),
    _S("filters", "space", "filters", "Filters of the first cells of the search net."),
    _S("stem_multiplier", "space", "stem_multiplier", "Stem filters = multiplier * filters."),
    _S("share_across_inputs", "space", "share_across_inputs",
       "Share one op's weights across the inputs a node may read."),
    _S("num_cells", "space", "num_cells", "nb201: cells per stage."),
    _S("bn_affine", "space", "bn_affine",
       "Learn batch-norm scale/offset and a head bias in the supernet (ENAS); off by default "
       "(DARTS): then every shared weight is a kernel that DI protects."),
    _S("cell_residual", "space", "cell_residual",
       "enas_micro: add each cell's second input to its output, in the search net and the "
       "child (not ENAS's cell; it lets weight sharing learn fast on short budgets)."),
    # optim
    _S("learning_rate", "optim", "learning_rate", "Shared-weight SGD learning rate (cosine)."),
    _S("learning_rate_min", "optim", "learning_rate_min", "Cosine schedule floor."),
    _S("momentum", "optim", "momentum", "SGD momentum."),
    _S("nesterov", "optim", "nesterov", "Nesterov momentum."),
    _S("weight_decay", "optim", "weight_decay", "L2 weight decay of the shared weights."),
    _S("grad_clip_norm", "optim", "grad_clip_norm", "Global gradient-norm clip (0 = off)."),
    _S("offpath_momentum", "optim", "offpath_momentum", "A weight row's momentum while the row is "
       "off the sampled path: kept (lazy) or decayed by momentum per step.",
       config_lib.OFFPATH_MOMENTUM),
    # disturbance immunity
    _S("di", "di", "enabled", "Project shared-weight gradients (disturbance immunity)."),
    _S("di_beta", "di", "beta", "Regulariser of the projection matrix update."),
    _S("di_scale_beta", "di", "scale_beta", "Scale beta with the layer's input dimension."),
    _S("di_reset", "di", "reset", "Reset P to identity: never, epoch or every N steps."),
    _S("di_decay", "di", "decay", "Per-step decay of P towards identity (0..1)."),
    _S("di_max_dim", "di", "max_dim", "Layers with a larger input dimension are unprotected."),
    _S("di_sub_batches", "di", "sub_batches", "Sub-batches per step for the P update."),
    _S("di_inputs", "di", "inputs", "What P protects: each layer's mean input (the paper's) or "
       "its input covariance (robust to batch norm).", config_lib.DI_INPUTS),
    _S("di_project", "di", "project", "What P projects: the raw gradient only, the whole step "
       "(gradient, weight decay, momentum), or the gradient and the momentum buffer.",
       config_lib.DI_PROJECT),
    _S("di_rescale", "di", "rescale", "--di_project=step: scale each weight row's projected "
       "step back towards its unprojected norm, by at most this factor (1 = off)."),
    _S("di_scope", "di", "scope", "Kernels P protects: all on the path, only the searched "
       "ops', or only the fixed ones (stem, fixed 1x1 convs, combiners, head).",
       config_lib.DI_SCOPES),
    # controller
    _S("controller", "controller", "name", "Architecture sampler.", config_lib.CONTROLLERS),
    _S("controller_lstm_units", "controller", "lstm_units", "LSTM units of the policy."),
    _S("controller_learning_rate", "controller", "learning_rate", "Policy Adam learning rate."),
    _S("controller_entropy_weight", "controller", "entropy_weight", "Entropy bonus weight."),
    _S("controller_baseline_decay", "controller", "baseline_decay", "Reward baseline EMA decay."),
    _S("controller_tanh_constant", "controller", "tanh_constant", "Logit tanh constant."),
    _S("controller_op_tanh_reduce", "controller", "op_tanh_reduce",
       "Divide the tanh constant by this for op logits."),
    _S("controller_temperature", "controller", "temperature", "Sampling temperature."),
    _S("controller_op_prior", "controller", "op_prior",
       "ENAS's op-logit prior favouring separable convs (enas_micro only)."),
    _S("controller_steps_per_epoch", "controller", "steps_per_epoch",
       "Policy updates per search epoch."),
    _S("controller_aggregate", "controller", "aggregate",
       "Architectures sampled per policy update."),
    # search
    _S("epochs", "search", "epochs", "Search epochs."),
    _S("steps_per_epoch", "search", "steps_per_epoch",
       "Shared-weight steps per epoch (0 = one pass over search-train)."),
    _S("num_candidates", "search", "num_candidates",
       "Architectures sampled and scored when deriving the best one."),
    _S("log_every", "search", "log_every", "Log every N steps."),
    _S("deterministic", "search", "deterministic",
       "Deterministic ops (slower), in the search and in final training."),
    # final training
    _S("architecture", "final", "architecture", "Architecture JSON to train or export "
       "(default: the one the search wrote under --output_dir)."),
    _S("final_epochs", "final", "epochs", "Final-training epochs."),
    _S("final_batch_size", "final", "batch_size", "Final-training global batch size."),
    _S("final_learning_rate", "final", "learning_rate", "Final-training learning rate (cosine)."),
    _S("final_learning_rate_min", "final", "learning_rate_min", "Final cosine schedule floor."),
    _S("final_momentum", "final", "momentum", "Final-training SGD momentum."),
    _S("final_weight_decay", "final", "weight_decay", "Final-training weight decay."),
    _S("final_layers", "final", "num_layers", "Cells of the final network."),
    _S("final_filters", "final", "filters", "Filters of the final network."),
    _S("auxiliary_weight", "final", "auxiliary_weight", "Auxiliary head loss weight (0 = off)."),
    _S("drop_path", "final", "drop_path", "Drop-path probability."),
    _S("label_smoothing", "final", "label_smoothing", "Label smoothing."),
    _S("final_grad_clip_norm", "final", "grad_clip_norm", "Final-training gradient clip."),
    # export
    _S("export_dir", "export", "export_dir", "SavedModel directory "
       "(default: <output_dir>/saved_model)."),
    _S("tflite", "export", "tflite", "Also write a TFLite model."),
    # studies
    _S("study", "study", "name", "Study to run.", config_lib.STUDIES),
    _S("pairs", "study", "pairs", "pd: architecture pairs."),
    _S("steps", "study", "steps", "pd: steps of the disturbing architecture."),
    _S("warmup_steps", "study", "warmup_steps", "pd: supernet warm-up steps."),
    _S("archs", "study", "archs", "rank: architectures ranked."),
    _S("child_steps", "study", "child_steps", "rank, search: standalone training steps per arch "
       "(default: rank 300, search 50)."),
    _S("supernet_steps", "study", "supernet_steps", "rank: supernet training steps."),
    _S("seeds", "study", "seeds", "Independent repetitions of a study (seeds seed..seed+N-1)."),
    _S("protocol", "study", "protocol", "pd: measure inside the search's own step sequence "
       "(search) or on isolated (A, B) pairs (pair).", config_lib.PD_PROTOCOLS),
    _S("window", "study", "window", "pd --protocol=search: steps between an architecture's "
       "step and its second measurement."),
    _S("random_archs", "study", "random_archs",
       "search: uniformly sampled architectures the found ones are compared with."),
    _S("search_epochs", "study", "search_epochs", "search: epochs of each search the study runs "
       "(default 10: a short search; --epochs sets the search CLI's)."),
    _S("study_jobs", "study", "jobs", "search, rank: tasks run at once, each in a process of its "
       "own (search: searches, the random architectures' children queued behind them, then the "
       "found ones'; rank: the children beside the supernets; 0: one "
       "per CPU core up to 4 on a machine without GPUs, else 1)."),
    # distribution
    _S("strategy", "distribute", "strategy", "tf.distribute strategy.", config_lib.STRATEGIES),
    _S("tpu", "distribute", "tpu", "TPU name or address for --strategy=tpu."),
    _S("devices", "distribute", "devices", "Comma-separated devices for --strategy=mirrored."),
    _S("jit_compile", "distribute", "jit_compile", "XLA-compile each replica's forward and "
       "backward pass, in the search and in final training (TPUs compile every step anyway)."),
    _S("precision", "distribute", "precision", "Compute precision of the search and final "
       "training: mixed_* computes in 16 bits, keeps weights, DI statistics and projectors "
       "in float32 (mixed_float16 adds dynamic loss scaling).", config_lib.PRECISIONS),
    # bench
    _S("output", "bench", "output", "Benchmark report path (default: <output_dir>/bench.json)."),
    _S("quick", "bench", "quick", "Run a short benchmark, or a study as a smoke run."),
    _S("accelerator", "bench", "accelerator", "bench: the GPU/TPU figures at the CIFAR-10 "
       "search size (step times, mixed precision and XLA speed-ups, the preset's projected "
       "wall time) into <output_dir>/accelerator.json."),
    # top level
    _S("output_dir", "", "output_dir", "Directory holding every artefact of the job."),
    _S("seed", "", "seed", "Random seed."),
)


def field_default(spec: FlagSpec):
    """The config default of ``spec``'s field and its annotated type name."""
    cls = type(getattr(config_lib.Config(), spec.section)) if spec.section else config_lib.Config
    for f in dataclasses.fields(cls):
        if f.name == spec.field:
            return f.default, f.type
    raise KeyError(f"{spec.section}.{spec.field}")


def config_from_values(values: dict[str, Any]) -> config_lib.Config:
    """Builds the validated ``Config`` from ``{flag name: value}`` (every name of the table).

    Raises:
        UserError: a value is out of range or not a known choice; the message names the
            ``--flag``, as the command line prints it.
    """
    sections: dict[str, dict] = {}
    top: dict = {}
    for spec in FLAG_TABLE:
        value = values[spec.name]
        default, _ = field_default(spec)
        if default is None and value == "":
            value = None  # an empty --data_dir= means "not set"
        if spec.section:
            sections.setdefault(spec.section, {})[spec.field] = value
        else:
            top[spec.field] = value
    try:
        built = {}
        for name, section_values in sections.items():
            cls = type(getattr(config_lib.Config(), name))
            built[name] = cls(**section_values)
        return config_lib.Config(**built, **top)
    except UserError as e:
        raise UserError(flag_names(str(e))) from None


def flag_names(message: str) -> str:
    """Rewrites ``section.field`` in a config error as the ``--flag`` the user typed."""
    for spec in FLAG_TABLE:
        path = f"{spec.section}.{spec.field}" if spec.section else spec.field
        message = re.sub(rf"(?<![\w.-]){re.escape(path)}\b", f"--{spec.name}", message)
    return message


_TYPES = {"bool": (bool,), "int": (int,), "float": (int, float)}


def _checked(spec: FlagSpec, value: Any) -> Any:
    default, type_ = field_default(spec)
    if spec.choices and value not in spec.choices:
        raise UserError(f"flag --{spec.name}={value}: value should be one of "
                        f"<{'|'.join(spec.choices)}>")
    wanted = _TYPES.get(type_, (str,))
    ok = isinstance(value, wanted) and not (isinstance(value, bool) and bool not in wanted)
    if not ok and not (default is None and value is None):
        raise UserError(f"flag --{spec.name}={value!r}: expected {type_.split(' ')[0]}, "
                        f"got {type(value).__name__}")
    return float(value) if type_ == "float" else value


def config_from_overrides(overrides: dict[str, Any], **fixed: Any) -> config_lib.Config:
    """The ``Config`` of the command line ``--name=value`` for every override (defaults
    elsewhere), validated exactly as the flags are.

    Args:
      overrides: ``{flag name: value}`` from the user (``epochs=2, di=False``).
      **fixed: values the API sets itself (``dataset``, ``output_dir``); an override of the
        same name is refused.

    Raises:
        UserError: an unknown name, a value of the wrong type or out of range.
    """
    specs = {spec.name: spec for spec in FLAG_TABLE}
    for name in sorted(set(overrides) | set(fixed)):
        if name not in specs:
            raise UserError(f"Unknown command line flag '{name}': the options are the "
                            "di-nas flag names (di-nas-search --help lists them)")
    clash = sorted(set(overrides) & set(fixed))
    if clash:
        raise UserError(f"{', '.join(clash)} cannot be an override here: pass it as the "
                        "argument of its own")
    values = {name: field_default(spec)[0] for name, spec in specs.items()}
    for name, value in {**overrides, **fixed}.items():
        values[name] = _checked(specs[name], value)
    return config_from_values(values)
