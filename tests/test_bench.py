"""`run_bench` on a network that traces in seconds writes every figure with sane values.

The figures are defined on enas_micro, whose supernet step takes a minute or more to trace on
a shared CPU; the test runs the same code on a one-cell nb201 network (`Net.space`).
"""

import json
import math
import sys

import pytest

from di_nas import config
from di_nas.bench import accelerator
from di_nas.bench import run as bench
from di_nas.bench.steps import Net
from di_nas.cli import flags as cli_flags
from tests.helpers import ROOT

TINY_NET = Net(num_layers=1, filters=4, stem_multiplier=1, image_size=8, space="nb201")
TINY = bench.Sizes(net=TINY_NET, batch=4, archs=1, steps=2, trace_archs=3,
                   projector_net=TINY_NET, oracle_trials=(8, 16))

POSITIVE = ("supernet_over_child", "di_over_plain", "supernet_step_ms", "child_step_ms",
            "di_step_ms", "plain_step_ms", "oracle_ms_per_trial_1k", "oracle_ms_per_trial_20k",
            "oracle_20k_over_1k", "plain_trace_seconds", "di_trace_seconds")


def test_run_bench_writes_every_figure(tmp_path, capsys):
    path = tmp_path / "reports" / "bench.json"
    cfg = config.tiny(str(tmp_path / "run")).replace(bench={"output": str(path)})
    returned = bench.run_bench(cfg, sizes=TINY)

    report = json.loads(path.read_text())
    assert report == json.loads(json.dumps(returned))  # Tuples come back as lists.
    for key in POSITIVE:
        value = report[key]
        assert isinstance(value, float) and math.isfinite(value) and value > 0, key
    assert report["traces_for_50_archs"] == 1 and report["traces_archs"] == 3
    assert report["di_step_traces"] == 1
    assert report["projector_bytes"] > 0
    assert (report["oracle_trials_1k"], report["oracle_trials_20k"]) == (8, 16)
    assert len(report["supernet_over_child_per_arch"]) == len(report["archs"]) == 1
    env = report["environment"]
    assert env["batch"] == 4 and env["image_shape"] == [8, 8, 3] and env["steps"] == 2
    assert env["network"]["space"] == "nb201" and env["quick"] is True
    assert set(report["targets"]) <= set(report)
    out = capsys.readouterr().out
    assert "supernet_over_child" in out and "(target <= 1.15)" in out
    assert not list(path.parent.glob("*.tmp*"))  # Written atomically, nothing left over.


def test_default_output_is_under_output_dir(tmp_path, monkeypatch):
    written = []
    monkeypatch.setattr(bench, "atomic_write_json", lambda p, v: written.append(p))
    for name in ("step_figures", "projector_figures", "oracle_figures"):
        monkeypatch.setattr(bench, name, lambda sizes, cfg: {})
    bench.run_bench(config.tiny(str(tmp_path)), sizes=TINY)
    assert written == [str(tmp_path / "bench.json")]


def test_presets_keep_the_issue_sizes():
    net = bench.FULL.net
    assert (net.space, net.num_layers, net.filters, net.stem_multiplier, net.image_size) == (
        "enas_micro", 6, 20, 3, 32)
    assert (bench.FULL.batch, bench.FULL.trace_archs, bench.FULL.oracle_trials) == (
        64, 50, (1000, 20000))
    assert bench.QUICK.net.num_layers < net.num_layers and bench.QUICK.batch == 64
    assert bench.QUICK.projector_net == net  # projector_bytes is always the default network's.
    # The full run reports the XLA figures of an enas_micro network; --quick leaves them out.
    assert bench.FULL.xla_net.space == "enas_micro" and bench.QUICK.xla_net is None
    with pytest.raises(ValueError, match="trace_archs"):
        bench.Sizes(net=TINY_NET, batch=4, archs=3, steps=2, trace_archs=2,
                    projector_net=TINY_NET, oracle_trials=(8, 16))


def test_accelerator_report(tmp_path):
    """`--accelerator` writes its figures to <output_dir>/accelerator.json (XLA off: the
    compile takes minutes on a CPU; `xla_figures` is the same code path, see test_precision)."""
    cfg = config.tiny(str(tmp_path)).replace(bench={"accelerator": True})
    sizes = accelerator.AcceleratorSizes(net=TINY_NET, batch=4, archs=1, steps=2, xla=False)
    report = bench.run_bench(cfg, accelerator_sizes=sizes)
    assert json.loads((tmp_path / "accelerator.json").read_text()) == json.loads(
        json.dumps(report))
    for key in ("supernet_step_ms", "child_step_ms", "di_step_ms", "di_mixed_step_ms",
                "child_mixed_step_ms", "eval_batch_ms", "supernet_over_child", "di_over_plain",
                "mixed_precision_speedup", "child_mixed_precision_speedup",
                "projected_search_hours", "projected_search_hours_fastest"):
        assert isinstance(report[key], float) and math.isfinite(report[key]) and report[key] > 0
    assert report["mixed_precision"] == "mixed_bfloat16" and report["xla_speedup"] is None
    assert report["projected_search_hours_fastest"] <= report["projected_search_hours"]


def test_projected_hours_adds_up():
    preset = {"epochs": 2, "batch": 10, "train_examples": 100, "valid_examples": 50,
              "controller_steps": 3, "controller_aggregate": 4, "num_candidates": 5}
    # 2 epochs x (10 steps x 100 ms + 12 rewards x 10 ms) + 5 candidates x 5 batches x 10 ms.
    assert accelerator.projected_hours(100.0, 10.0, preset) == pytest.approx(
        (2 * (1000 + 120) + 250) / 3.6e6)


def test_accelerator_preset_is_the_cifar10_flagfile():
    flag_values = cli_flags.new_flag_values()
    flag_values(["di-nas-search", f"--flagfile={ROOT}/flags/cifar10_search.cfg"])
    cfg = cli_flags.build_config(flag_values)
    train = round(50_000 * (1 - cfg.data.valid_fraction))
    assert accelerator.PRESET == {
        "epochs": cfg.search.epochs, "batch": cfg.data.batch_size, "train_examples": train,
        "valid_examples": 50_000 - train, "controller_steps": cfg.controller.steps_per_epoch,
        "controller_aggregate": cfg.controller.aggregate,
        "num_candidates": cfg.search.num_candidates}
    assert accelerator.AcceleratorSizes().net == bench.DEFAULT_NET


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
