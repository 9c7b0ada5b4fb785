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

    from di_nas.studies import disturbance
    from di_nas.search_space import get_space
    from di_nas.studies.pd import sample_pairs

    pairs = sample_pairs(get_space("enas_micro"), 5, np.random.default_rng(0))
    assert len(pairs) == 5
    assert all(disturbance.shares_ops(a, b) and a != b for a, b in pairs)


# Rank --------------------------------------------------------------------------------------------

def test_rank_correlation_of_known_rankings():
    import math

    from di_nas.studies.rank import rank_correlation

    same = rank_correlation([0.1, 0.5, 0.7, 0.9], [0.2, 0.3, 0.8, 0.85])
    assert same["kendall_tau"] == pytest.approx(1.0)
    assert same["spearman_rho"] == pytest.approx(1.0)
    reversed_ = rank_correlation([0.1, 0.5, 0.7, 0.9], [0.9, 0.6, 0.4, 0.3])
    assert reversed_["kendall_tau"] == pytest.approx(-1.0)
    assert reversed_["spearman_rho"] == pytest.approx(-1.0)
    one_swap = rank_correlation([1, 2, 3, 4], [1, 2, 4, 3])
    assert one_swap["kendall_tau"] == pytest.approx(4 / 6)  # 5 concordant, 1 discordant pair
    assert math.isnan(rank_correlation([1, 2, 3], [0.5, 0.5, 0.5])["kendall_tau"])


def test_rank_archs_are_distinct_and_not_degenerate():
    import numpy as np

    from di_nas.config import DIConfig, SpaceConfig
    from di_nas.search_space import get_space
    from di_nas.studies.rank import is_degenerate, reset_period, sample_archs, study_space_config

    # Edges: (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2); op 0 is none, 1 skip, 3 conv.
    assert is_degenerate((0, 0, 0, 0, 0, 0))
    assert is_degenerate((3, 3, 3, 0, 0, 0))  # nodes 1 and 2 reached, nothing into node 3
    assert is_degenerate((0, 0, 3, 0, 3, 3))  # node 3 reads only nodes cut off from the input
    assert not is_degenerate((0, 0, 0, 1, 0, 0))  # skip 0 -> 3
    assert not is_degenerate((3, 0, 3, 0, 0, 3))  # 0 -> 1 -> 2 -> 3
    archs, skipped = sample_archs(get_space("nb201"), 40, np.random.default_rng(0))
    assert len({a.values for a in archs}) == 40
    assert not any(is_degenerate(a.values) for a in archs) and skipped >= 0
    assert study_space_config(SpaceConfig(num_cells=5, filters=8)) == SpaceConfig(
        name="nb201", num_cells=1, filters=8)
    nb = SpaceConfig(name="nb201", num_cells=2)
    assert study_space_config(nb) is nb
    assert reset_period(DIConfig(reset="epoch"), 700, 64) == 10
    assert reset_period(DIConfig(reset="7"), 700, 64) == 7
    assert reset_period(DIConfig(reset="never"), 700, 64) is None


def test_rank_study_writes_json_plot_and_report(tmp_path, capsys):
    from di_nas.studies import run_study

    cfg = config_lib.tiny(output_dir=str(tmp_path / "rank")).replace(
        study={"name": "rank", "archs": 3, "child_steps": 3, "supernet_steps": 4},
        di={"reset": "2"})
    result = run_study(cfg)
    with open(os.path.join(cfg.output_dir, "rank.json")) as f:
        written = json.load(f)
    assert set(written) >= {"plain", "di", "archs", "dataset", "seed", "per_arch"}
    for method in ("plain", "di"):
        for key in ("kendall_tau", "spearman_rho"):
            value = written[method][key]  # null when every accuracy ties
            assert value is None or -1.0 <= value <= 1.0
    assert written["archs"] == 3 and len(written["per_arch"]) == 3
    assert written["dataset"] == "digits" and written["seed"] == cfg.seed
    assert written["space"]["name"] == "nb201" and written["di_reset_steps"] == 2
    for row in written["per_arch"]:
        assert set(row) >= {"values", "readable", "standalone_acc", "plain_acc", "di_acc"}
        assert all(0.0 <= row[k] <= 1.0 for k in ("standalone_acc", "plain_acc", "di_acc"))
    assert len({tuple(r["values"]) for r in written["per_arch"]}) == 3
    assert written["per_arch"][0]["di_acc"] == pytest.approx(result["per_arch"][0]["di_acc"])
    with open(os.path.join(cfg.output_dir, "rank.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(cfg.output_dir, "rank.md")) as f:
        report = f.read()
    assert "Kendall tau" in report and "rank.png" in report
    assert not [n for n in os.listdir(cfg.output_dir) if ".tmp" in n]
    assert "Kendall tau" in capsys.readouterr().out


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
