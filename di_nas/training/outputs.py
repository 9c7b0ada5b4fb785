"""A job's `--output_dir`: validation, the one-writer lock, the configuration guard, results.

Every job (search, final training) validates its inputs first, then claims its directory
(`claimed`: a writability check and `di_nas.io.OutputLock`, chief only) and only then writes.

Layout written by `di-nas-search` (chief only):
  search_config.json       the configuration and its fingerprint (guards resuming)
  checkpoints/             supernet, momentum, projectors, controller, counters
  oracle/                  Keras Tuner oracle state + trials.jsonl (one line per trial)
  tensorboard/search/      summaries
  candidates.json          every derived candidate with its search-valid accuracy and loss
  best_architecture.json   the best candidate (input to di-nas-train)
  best_architecture.png    its cells, drawn
  result.json              written last: marks the search as finished
All JSON is written to a temporary file and renamed, so a reader never sees half a file.
This module must not build models or datasets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from typing import Any

from di_nas import io as dio
from di_nas.errors import UserError
from di_nas.io import atomic_write_json, read_json

CONFIG_FILE = "search_config.json"
RESULT_FILE = "result.json"


def check_writable(out: str) -> None:
    """Raises `UserError` unless `out` is, or can be created as, a writable directory.

    Nothing is written: the nearest existing ancestor must be a directory this process may
    write into. URLs are not checked here (their first write reports the problem).
    """
    if not dio.is_local(out):
        return
    probe = os.path.abspath(out)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK | os.X_OK):
        what = "is not a directory" if not os.path.isdir(probe) else "is not writable"
        raise UserError(f"cannot write to --output_dir={out} ({probe} {what}): choose a "
                        "writable directory")


@contextlib.contextmanager
def claimed(out: str, job: str, chief: bool = True):
    """Holds `out` for this job: checked writable and locked against a second writer.

    Non-chief workers write nothing there and take no lock.

    Raises:
        UserError: `out` is not writable, or another live job holds it.
    """
    if not chief:
        yield
        return
    check_writable(out)
    with dio.OutputLock(out, job):
        yield


def prepare_output_dir(cfg) -> None:
    """Creates `output_dir`, or refuses one written by a different configuration."""
    out = cfg.output_dir
    check_writable(out)
    path = os.path.join(out, CONFIG_FILE)
    fingerprint = cfg.fingerprint()
    if dio.exists(path):
        try:
            saved = read_json(path).get("fingerprint")
        except (json.JSONDecodeError, AttributeError):
            saved = None
        if saved != fingerprint:
            raise UserError(
                f"--output_dir={out} holds a search with a different configuration "
                f"(fingerprint {saved} != {fingerprint}): rerun with its original flags to "
                "resume, or choose a new --output_dir")
        return
    dio.makedirs(out)
    atomic_write_json(path, {"fingerprint": fingerprint, "config": cfg.search_dict()})


def final_run_record(cfg, spec) -> dict[str, Any]:
    """What defines a final training (`cfg` and its `ModelSpec` `spec`): a directory trained
    otherwise must not be resumed."""
    final = dataclasses.asdict(cfg.final)
    del final["architecture"]  # the path does not matter, the architecture (in spec) does
    data = dataclasses.asdict(cfg.data)
    for name in ("data_dir", "download", "eval_batch_size", "valid_fraction"):
        del data[name]
    return {"model": dataclasses.asdict(spec), "final": final, "data": data, "seed": cfg.seed}


def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the leaves where two JSON-like values differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for key in sorted(set(old) | set(new))
                for d in differences(old.get(key), new.get(key), f"{prefix}{key}.")]
    return [] if old == new else [prefix.rstrip(".")]


def check_same_final_run(path: str, record: dict[str, Any]) -> None:
    """Refuses to resume a directory that another final training wrote."""
    old = dio.read_json(path)
    if old is None:
        return
    changed = differences(old, json.loads(json.dumps(record)))  # tuples -> lists
    if changed:
        raise UserError(f"{os.path.dirname(path) or '.'} holds a final training with other "
                        f"settings ({', '.join(changed[:4])} differ): use another --output_dir")


def read_result(output_dir: str):
    return read_json(os.path.join(output_dir, RESULT_FILE))


def write_result(cfg, space, candidates, chief: bool, summary: dict | None = None) -> dict:
    """Writes candidates, the best architecture (JSON + PNG) and, last, result.json.

    `summary` adds the search's figures: `final_reward_mean` (mean controller reward of the
    last epoch, None if this run trained no epoch), `search_seconds` (wall time of this run of
    the command) and `chance` (1 / number of classes).
    """
    out = cfg.output_dir
    best = space.architecture(candidates[0]["values"])
    result = {
        "best_architecture": os.path.join(out, "best_architecture.json"),
        "best": candidates[0],
        "best_valid_accuracy": candidates[0]["accuracy"],
        "num_candidates": len(candidates),
        "space": space.name,
        "controller": cfg.controller.name,
        "di": cfg.di.enabled,
        **(summary or {}),
    }
    if not chief:
        return result
    atomic_write_json(os.path.join(out, "candidates.json"), candidates)
    best.save(os.path.join(out, "best_architecture.json"))
    try:
        from di_nas.search_space.render import render_architecture

        render_architecture(best, os.path.join(out, "best_architecture.png"))
        result["picture"] = os.path.join(out, "best_architecture.png")
    except ImportError:  # Rendering is optional (matplotlib missing).
        pass
    atomic_write_json(os.path.join(out, RESULT_FILE), result)
    return result


def print_result(result: dict, output_dir: str) -> None:
    best = result["best"]
    print(f"best architecture (search-valid accuracy {best['accuracy']:.4f}): "
          f"{best['readable']}")
    print(f"written to {result['best_architecture']}; candidates in "
          f"{os.path.join(output_dir, 'candidates.json')}")
    print(f"train it: di-nas-train --architecture={result['best_architecture']} "
          f"--output_dir={os.path.join(output_dir, 'final')}")
    print(summary_line(result))


NOT_LEARNED_MARGIN = 0.05  # A final reward this close to chance means nothing was learned.


def summary_line(result: dict) -> str:
    """The search's last line: best candidate, last epoch's reward, wall time, and a warning
    with the likely fix when the reward stayed within `NOT_LEARNED_MARGIN` of chance."""
    reward, seconds = result.get("final_reward_mean"), result.get("search_seconds")
    line = (f"search done: best candidate search-valid accuracy "
            f"{result.get('best_valid_accuracy', result['best']['accuracy']):.4f}, final reward "
            f"{'n/a' if reward is None else f'{reward:.4f}'}, "
            f"{'n/a' if seconds is None else f'{seconds:.0f}'} s")
    chance = result.get("chance")
    if reward is not None and chance is not None and reward < chance + NOT_LEARNED_MARGIN:
        line += (f"; NOT LEARNED: the final reward is within {NOT_LEARNED_MARGIN:.2f} of chance "
                 f"({chance:.2f}), so the shared weights did not train and the choice is "
                 "random: give them more steps (--epochs, --steps_per_epoch) or a smaller "
                 "search network (--num_layers, --filters), or check --learning_rate and "
                 "--cell_residual")
    return line
