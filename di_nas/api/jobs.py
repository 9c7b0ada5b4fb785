"""``di_nas.search``, ``di_nas.train`` and ``di_nas.export``: the command-line jobs as Python calls.

``data`` is a dataset name (``"digits"``, a TFDS name, ``"npz:PATH"``, ``"folder:PATH"``),
NumPy arrays ``(x_train, y_train[, x_test, y_test])`` or a ``tf.data.Dataset`` of
``(image, label)``; keyword overrides are the flag names (``epochs=2``, ``di=False``),
validated as the flags are. Every input is checked before anything is written; bad input
raises ``di_nas.UserError`` with the message the command line prints.

A search's directory is interchangeable with the command line's: the same options resume it
from either side (``<output_dir>/search.flags`` holds them as a flagfile:
``di-nas-search --flagfile=<output_dir>/search.flags``).

May import the library packages below ``api``; never ``di_nas.cli``.
"""

from __future__ import annotations

import os
from typing import Any

from di_nas.api import options
from di_nas.api.models import architecture_file as _architecture_file
from di_nas.api.results import SearchResult, TrainResult
from di_nas.config import Config
from di_nas.errors import UserError

FLAGFILE = "search.flags"


def _dataset(data: Any, output_dir: str) -> str:
    """The dataset name of ``data``; in-memory data is validated and registered."""
    if isinstance(data, str):
        return data
    from di_nas.data import memory

    arrays = memory.to_arrays(data)
    spec = memory.spec_for(arrays, output_dir)
    memory.register(spec, arrays)
    return spec


def make_config(data: Any, output_dir: str, overrides: dict[str, Any]) -> Config:
    """The validated ``Config`` of an API call (also checks that the data exists)."""
    if not isinstance(output_dir, str) or not output_dir:
        raise UserError("output_dir is empty: pass output_dir='DIR'")
    options.config_from_overrides(overrides, output_dir=output_dir)  # names before data
    cfg = options.config_from_overrides(overrides, dataset=_dataset(data, output_dir),
                                        output_dir=output_dir)
    from di_nas.data import checks

    checks.check_source(cfg.data)
    return cfg


def _write_flagfile(cfg: Config, overrides: dict[str, Any]) -> None:
    path = os.path.join(cfg.output_dir, FLAGFILE)
    if not os.path.isdir(cfg.output_dir) or os.path.exists(path):
        return
    values = {**overrides, "dataset": cfg.data.dataset, "output_dir": cfg.output_dir}
    lines = [f"--{k}={str(v).lower() if isinstance(v, bool) else v}"
             for k, v in sorted(values.items())]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def _keep_data(cfg: Config) -> None:
    """Writes in-memory data to its npz path once a job has accepted the directory."""
    from di_nas.data import memory

    if os.path.isdir(cfg.output_dir) and memory.lookup(cfg.data.dataset) is not None:
        memory.write(cfg.data.dataset)


def search(data: Any, *, output_dir: str, **overrides: Any) -> SearchResult:
    """Searches an architecture (or resumes, or reports, the search in ``output_dir``).

    Returns:
      A ``SearchResult``: ``best_architecture``, ``candidates``, ``summary()``,
      ``build_model()``.

    Raises:
      UserError: bad data, an unknown override or value, or an ``output_dir`` holding another
        search.
    """
    cfg = make_config(data, output_dir, overrides)
    from di_nas.training import outputs
    from di_nas.training import search as search_lib

    try:
        result = search_lib.run_search(cfg)
    finally:
        if _accepted(cfg, outputs):
            _keep_data(cfg)
            _write_flagfile(cfg, overrides)
    return search_result(cfg, result)


def _accepted(cfg: Config, outputs) -> bool:
    from di_nas.io import read_json

    saved = read_json(os.path.join(cfg.output_dir, outputs.CONFIG_FILE))
    return bool(saved) and saved.get("fingerprint") == cfg.fingerprint()


def search_result(cfg: Config, result: dict) -> SearchResult:
    """A ``SearchResult`` from the search's files."""
    from di_nas.io import read_json
    from di_nas.search_space import get_space

    space = get_space(cfg.space.name)
    rows = read_json(os.path.join(cfg.output_dir, "candidates.json")) or [result["best"]]
    candidates = [(space.architecture(r["values"]), float(r["accuracy"])) for r in rows]
    return SearchResult(candidates[0][0], candidates, cfg.output_dir, cfg)


def train(architecture: Any, data: Any, *, output_dir: str, **overrides: Any) -> TrainResult:
    """Trains ``architecture`` from scratch (``final_*`` overrides) and tests it.

    Args:
      architecture: a ``SearchResult``, an ``Architecture`` or a path to its JSON.
      data: as for ``search``.
      output_dir: the training's directory (resumable, as ``di-nas-train``'s).

    Returns:
      A ``TrainResult``: ``model``, ``test_accuracy``, ``output_dir``, ``metrics``.
    """
    if "architecture" in overrides:
        raise UserError("pass the architecture as the first argument, not as an override")
    cfg = make_config(data, output_dir, overrides)
    from di_nas.training import final

    with _architecture_file(architecture) as path:
        metrics = final.run_final_training(cfg.replace(final={"architecture": path}))
    _keep_data(cfg)
    model, _, _ = final.load_trained(output_dir)
    return TrainResult(model, float(metrics["test_accuracy"]), output_dir, dict(metrics))


def export(output_dir: str, export_dir: str | None = None, tflite: bool = False) -> str:
    """Exports the network trained in ``output_dir`` as a SavedModel (raw 0..255 pixels in,
    probabilities out), and a TFLite file with ``tflite``; returns the SavedModel path."""
    overrides = {"tflite": tflite, **({"export_dir": export_dir} if export_dir else {})}
    cfg = options.config_from_overrides(overrides, output_dir=output_dir)
    import importlib

    # The module, not the root's `di_nas.export` (this function) that shares its name.
    return importlib.import_module("di_nas.export").run_export(cfg)
