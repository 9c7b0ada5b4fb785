"""The studies end to end on tiny configurations (digits, a tiny supernet)."""

import json
import os

import pytest

from di_nas import config as config_lib


# PD ----------------------------------------------------------------------------------------------

def test_pd_study_writes_json_plot_and_report(tmp_path, capsys):
    from di_nas.studies import run_study

    cfg = config_lib.tiny(output_dir=str(tmp_path / "pd")).replace(
        study={"name": "pd", "pairs": 2, "steps": 2, "warmup_steps": 2})
    result = run_study(cfg)
    path = os.path.join(cfg.output_dir, "pd.json")
    with open(path) as f:
        written = json.load(f)
    assert set(written) >= {"plain", "di", "plain_matched", "pairs", "steps", "dataset", "seed"}
    for method in ("plain", "di", "plain_matched"):
        assert set(written[method]) >= {"pd_acc_mean", "pd_acc_std", "pd_loss_mean",
                                        "b_gain_mean"}
        assert len(written["per_pair"][method]) == 2
    assert 0 < written["plain_matched"]["lr"] <= cfg.optim.learning_rate
    assert written["pairs"] == 2 and written["steps"] == 2
    assert written["dataset"] == "digits" and written["seed"] == cfg.seed
    assert written["di"]["pd_acc_mean"] == pytest.approx(result["di"]["pd_acc_mean"])
    with open(os.path.join(cfg.output_dir, "pd.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(cfg.output_dir, "pd.md")) as f:
        report = f.read()
    assert "plain_matched" in report and "pd.png" in report
    assert not [n for n in os.listdir(cfg.output_dir) if ".tmp" in n]
    assert "A acc drop" in capsys.readouterr().out


def test_pd_pairs_share_ops():
    import numpy as np

    from di_nas import disturbance
    from di_nas.search_space import get_space
    from di_nas.studies.pd import sample_pairs

    pairs = sample_pairs(get_space("enas_micro"), 5, np.random.default_rng(0))
    assert len(pairs) == 5
    assert all(disturbance.shares_ops(a, b) and a != b for a, b in pairs)
