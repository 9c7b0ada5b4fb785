"""The studies end to end on tiny configurations (digits, a tiny supernet)."""

import json
import os

import numpy as np
import pytest

from di_nas import config as config_lib

# The studies' mechanics do not depend on the space; nb201 traces several times faster.
NB201 = {"name": "nb201", "num_cells": 1}

# PD ----------------------------------------------------------------------------------------------

def test_pd_study_writes_json_plot_and_report(tmp_path, capsys):
    from di_nas.studies import run_study

    cfg = config_lib.tiny(output_dir=str(tmp_path / "pd")).replace(
        space=NB201,
        study={"name": "pd", "pairs": 2, "steps": 2, "warmup_steps": 2, "protocol": "pair"})
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


def test_pd_search_protocol_keys_and_interval_order(tmp_path, capsys):
    """`--protocol=search` on a tiny config: every key the issue lists, per-seed values, and
    intervals that hold their means."""
    from di_nas.studies import run_study

    cfg = config_lib.tiny(output_dir=str(tmp_path / "pd")).replace(
        space=NB201, study={"name": "pd", "pairs": 2, "window": 2, "warmup_steps": 2, "seeds": 2,
               "protocol": "search"})
    run_study(cfg)
    with open(os.path.join(cfg.output_dir, "pd.json")) as f:
        written = json.load(f)
    assert written["protocol"] == "search" and written["seeds"] == 2
    assert written["window"] == 2 and written["pairs"] == 4  # 2 points x 2 seeds.
    assert set(written) >= {"steps", "dataset", "seed", "di_minus_plain_ci95"}
    for method in ("plain", "di", "plain_matched"):
        s = written[method]
        lo, hi = s["pd_acc_ci95"]
        assert lo <= s["pd_acc_mean"] <= hi
        assert {"pd_acc_std", "pd_loss_mean", "b_gain_mean"} <= set(s)
        assert [p["seed"] for p in s["per_seed"]] == [cfg.seed, cfg.seed + 1]
        assert len(written["per_pair"][method]) == 4
        parts = s["b_gain_shared_mean"] + s["b_gain_own_mean"]
        assert parts == pytest.approx(s["b_gain_mean"], abs=1e-9)  # Plasticity, split in two.
    lo, hi = written["di_minus_plain_ci95"]
    diff = written["di"]["pd_acc_mean"] - written["plain"]["pd_acc_mean"]
    assert lo <= diff + 1e-9 and diff - 1e-9 <= hi
    ratio = written["plasticity_ratio"]
    if np.isfinite(ratio):
        lo, hi = written["plasticity_ratio_ci95"]
        assert lo <= ratio + 1e-9 and ratio - 1e-9 <= hi
    out = capsys.readouterr().out
    assert "paired 95% CI" in out and "plasticity" in out


def test_plasticity_ratio_interval_is_paired():
    """DI's plasticity over plain's: the ratio of means, its interval around it, and nan
    where plain does not improve."""
    from di_nas.studies import pd_report

    plain = [{"pd_acc": 0.0, "b_gain": g} for g in (0.02, 0.04, 0.06, 0.08)]
    di = [{"pd_acc": 0.0, "b_gain": g / 2} for g in (0.02, 0.04, 0.06, 0.08)]
    result = pd_report.add_intervals({m: {} for m in pd_report.METHODS},
                                     {"plain": plain, "di": di, "plain_matched": plain})
    assert result["plasticity_ratio"] == pytest.approx(0.5)
    assert result["plasticity_ratio_ci95"] == pytest.approx([0.5, 0.5])  # Paired: exact.
    flat = [{"pd_acc": 0.0, "b_gain": -0.01}] * 4
    out = pd_report.add_intervals({m: {} for m in pd_report.METHODS},
                                  {"plain": flat, "di": di, "plain_matched": flat})
    assert np.isnan(out["plasticity_ratio"])


def test_pd_pairs_share_ops():
    import numpy as np

    from di_nas.search_space import get_space
    from di_nas.studies import disturbance
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


def test_tau_summary_ceiling_intervals_and_paired_difference():
    import numpy as np

    from di_nas.studies.rank import tau_summary

    truth = np.arange(8, dtype=float)
    gt = np.stack([truth, truth + 0.1])  # two seeds that agree: self tau 1
    shared = {"plain": np.stack([truth[::-1], truth[::-1]], axis=1),  # reversed: tau -1
              "di": np.stack([truth, truth], axis=1)}  # perfect: tau 1
    out = tau_summary(shared, gt, resamples=50)
    assert out["gt_self_tau"] == pytest.approx(1.0)
    assert out["di"]["kendall_tau"] == pytest.approx(1.0)
    assert out["plain"]["kendall_tau"] == pytest.approx(-1.0)
    assert out["di"]["kendall_tau_per_seed"] == pytest.approx([1.0, 1.0])
    assert out["di_minus_plain_tau"] == pytest.approx(2.0)
    lo, hi = out["di_minus_plain_tau_ci95"]
    assert lo == pytest.approx(2.0) and hi == pytest.approx(2.0)
    lo, hi = out["plain"]["kendall_tau_ci95"]
    assert lo <= -0.99 and hi <= -0.99


def test_rank_study_writes_json_plot_and_report(tmp_path, capsys):
    from di_nas.studies import run_study

    cfg = config_lib.tiny(output_dir=str(tmp_path / "rank")).replace(
        study={"name": "rank", "archs": 3, "child_steps": 3, "supernet_steps": 4, "seeds": 2},
        di={"reset": "2"})
    result = run_study(cfg)
    with open(os.path.join(cfg.output_dir, "rank.json")) as f:
        written = json.load(f)
    assert set(written) >= {"plain", "di", "archs", "dataset", "seed", "per_arch", "seeds",
                            "gt_self_tau", "gt_self_tau_ci95", "di_minus_plain_tau_ci95"}
    for method in ("plain", "di"):
        for key in ("kendall_tau", "spearman_rho"):
            value = written[method][key]  # null when every accuracy ties
            assert value is None or -1.0 <= value <= 1.0
        assert len(written[method]["kendall_tau_ci95"]) == 2
        assert len(written[method]["kendall_tau_per_seed"]) == 2
    assert written["archs"] == 3 and len(written["per_arch"]) == 3 and written["seeds"] == 2
    assert written["dataset"] == "digits" and written["seed"] == cfg.seed
    assert written["space"]["name"] == "nb201" and written["di_reset_steps"] == 2
    for row in written["per_arch"]:
        assert set(row) >= {"values", "readable", "standalone_acc", "plain_acc", "di_acc"}
        assert all(0.0 <= row[k] <= 1.0 for k in ("standalone_acc", "plain_acc", "di_acc"))
        assert len(row["standalone_acc_seeds"]) == 2 and len(row["di_acc_seeds"]) == 2
    assert len({tuple(r["values"]) for r in written["per_arch"]}) == 3
    assert written["per_arch"][0]["di_acc"] == pytest.approx(result["per_arch"][0]["di_acc"])
    with open(os.path.join(cfg.output_dir, "rank.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(cfg.output_dir, "rank.md")) as f:
        report = f.read()
    assert "Kendall tau" in report and "rank.png" in report
    assert not [n for n in os.listdir(cfg.output_dir) if ".tmp" in n]
    assert "gt_self_tau" in capsys.readouterr().out


# Search ------------------------------------------------------------------------------------------

def test_search_percentile_and_summary():
    from di_nas.studies.search import percentile, summarise

    assert percentile(0.5, [0.1, 0.2, 0.9, 1.0]) == pytest.approx(50.0)
    assert percentile(0.2, [0.1, 0.2, 0.9, 1.0]) == pytest.approx(37.5)  # a tie counts half
    assert percentile(2.0, [0.1, 0.2]) == pytest.approx(100.0)
    found = {"di": [{"accuracy": 0.8, "search_seconds": 10.0},
                    {"accuracy": 0.6, "search_seconds": 20.0}]}
    out = summarise(found, [0.5, 0.7, 0.9])
    assert out["di"]["acc_mean"] == pytest.approx(0.7)
    assert out["di"]["acc_std"] == pytest.approx(0.1)
    assert out["di"]["percentile_mean"] == pytest.approx((200 / 3 + 100 / 3) / 2)
    assert out["di"]["search_seconds_mean"] == pytest.approx(15.0)
    assert out["random_archs"]["acc_median"] == pytest.approx(0.7)


def test_seed_agreement_tells_a_ranking_from_noise():
    from di_nas.studies.search import seed_agreement

    same = seed_agreement([0.9, 0.8, 0.7, 0.6], [0.91, 0.82, 0.69, 0.62])
    assert same["self_tau"] == pytest.approx(1.0)
    assert same["seed_noise_std"] == pytest.approx(np.std([-0.01, -0.02, 0.01, -0.02]) / 2**0.5)
    swapped = seed_agreement([0.9, 0.8, 0.7, 0.6], [0.6, 0.7, 0.8, 0.9])
    assert swapped["self_tau"] == pytest.approx(-1.0)
    assert np.isnan(seed_agreement([0.9, 0.9], [0.8, 0.7])["self_tau"])


def test_search_study_runs_each_method_and_writes_outputs(tmp_path, monkeypatch, capsys):
    """Three methods x two seeds, each through `run_search` (faked here: the search itself is
    tested in test_search.py), then every found and random arch trained as a child."""
    import numpy as np

    from di_nas.search_space import get_space
    from di_nas.studies import run_study
    from di_nas.training import search as search_lib

    calls = []

    def fake_search(cfg):
        calls.append(cfg)
        arch = get_space(cfg.space.name).sample(np.random.default_rng(cfg.seed))
        return {"best": {"values": list(arch.values), "readable": str(arch), "accuracy": 0.5},
                "search_seconds": 1.5}

    from di_nas.studies import search as study_lib

    train_child = study_lib._train_child

    def recorded_child(cfg, values, seed):
        calls.append(("child", tuple(values), seed))
        return train_child(cfg, values, seed)

    monkeypatch.setattr(search_lib, "run_search", fake_search)
    monkeypatch.setattr(study_lib, "_train_child", recorded_child)
    cfg = config_lib.tiny(output_dir=str(tmp_path / "search")).replace(
        space=NB201, bench={"quick": False},
        study={"name": "search", "seeds": 2, "random_archs": 3, "child_steps": 2, "jobs": 1,
               "search_epochs": 2})  # In this process: the fake search is seen.
    run_study(cfg)
    children = [c for c in calls if isinstance(c, tuple)]
    calls = [c for c in calls if not isinstance(c, tuple)]
    # The random architectures from both seeds queue right behind the searches (to fill idle
    # workers), then the found architectures not among them, from the first seed.
    assert [seed for _, _, seed in children[:6]] == [0, 0, 0, 1, 1, 1]
    assert all(seed == 0 for _, _, seed in children[6:]) and len(set(children)) == len(children)
    # Longest first: both DI searches, then random sampling's, then plain's; each a short one.
    assert [(c.di.enabled, c.controller.name, c.seed) for c in calls] == [
        (True, "reinforce", 0), (True, "reinforce", 1), (True, "random", 0),
        (True, "random", 1), (False, "reinforce", 0), (False, "reinforce", 1)]
    assert len({c.output_dir for c in calls}) == 6
    assert {c.search.epochs for c in calls} == {2}
    with open(os.path.join(cfg.output_dir, "search.json")) as f:
        written = json.load(f)
    for method in ("di", "plain", "random_ws"):
        assert set(written[method]) >= {"acc_mean", "acc_std", "percentile_mean"}
        assert 0.0 <= written[method]["percentile_mean"] <= 100.0
        assert written[method]["search_seconds_mean"] == pytest.approx(1.5)
    assert set(written["random_archs"]) >= {"acc_mean", "acc_std", "acc_median", "self_tau",
                                            "self_tau_ci95", "seed_noise_std"}
    assert len(written["random_archs"]["accs_second_seed"]) == 3
    assert len(written["random"]) == 3 and written["eval_split"] == "test"
    assert (written["seeds"], written["dataset"], written["child_steps"]) == (2, "digits", 2)
    with open(os.path.join(cfg.output_dir, "search.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(cfg.output_dir, "search.md")) as f:
        assert "percentile" in f.read()
    assert "search random" in capsys.readouterr().out


def _task(value, fail=False):
    """A picklable task for `parallel.run_tasks`: prints, then returns or raises."""
    print(f"task {value} in {os.getpid()}")
    if fail:
        raise ValueError(f"task {value} failed")
    return value * value


def test_parallel_tasks_keep_order_log_each_and_raise_failures(tmp_path):
    from di_nas.config import DistributeConfig
    from di_nas.studies import parallel

    logs = [str(tmp_path / f"t{i}.log") for i in range(3)]
    seen = []
    out = parallel.run_tasks(_task, [(1,), (2,), (3,)], 2, logs,
                             on_done=lambda i, r: seen.append((i, r)))
    assert out == [1, 4, 9] and sorted(seen) == [(0, 1), (1, 4), (2, 9)]
    for i, log in enumerate(logs):
        text = open(log).read()
        assert f"task {i + 1} in " in text and str(os.getpid()) not in text  # another process
    with pytest.raises(ValueError, match="task 2 failed"):
        parallel.run_tasks(_task, [(1,), (2, True)], 2, logs[:2])
    assert parallel.run_tasks(_task, [(5,)], 1, [None]) == [25]  # here, in order
    cpu = DistributeConfig()
    assert parallel.default_jobs(cpu, cpu_count=2, gpus=0) == 2
    assert parallel.default_jobs(cpu, cpu_count=64, gpus=0) == parallel.MAX_CPU_JOBS
    assert parallel.default_jobs(cpu, cpu_count=8, gpus=1) == 1
    assert parallel.default_jobs(DistributeConfig(strategy="mirrored"), cpu_count=8, gpus=0) == 1


def _sleeper(path):
    """A task that says where it runs, then works for longer than any test waits."""
    import time

    with open(path, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(300)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def test_workers_stop_when_the_study_process_is_killed(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from tests.helpers import ROOT, cli_env

    pid_file = tmp_path / "worker.pid"
    script = ("from tests.test_studies import _sleeper\n"
              "from di_nas.studies.parallel import Tasks\n"
              f"Tasks(_sleeper, [({str(pid_file)!r},)], 1, [{str(tmp_path / 'w.log')!r}])"
              ".results()\n")
    study = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=cli_env())
    deadline = time.time() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.time() < deadline:
        time.sleep(0.1)
    worker = int(pid_file.read_text())
    assert _alive(worker)
    study.send_signal(signal.SIGKILL)
    study.wait()
    deadline = time.time() + 30
    while _alive(worker) and time.time() < deadline:
        time.sleep(0.2)
    assert not _alive(worker), "an orphan worker kept running after the study was killed"


def test_search_study_children_train_in_worker_processes(tmp_path):
    """Two children at once in worker processes give what the same children give here."""
    from di_nas.data import load_source
    from di_nas.search_space import get_space
    from di_nas.studies import search

    cfg = config_lib.tiny(output_dir=str(tmp_path)).replace(
        space=NB201, study={"name": "search", "child_steps": 2})
    source = load_source(cfg.data, seed=cfg.seed)
    arch = get_space("nb201").sample(np.random.default_rng(0))
    runs = [(tuple(arch.values), 0), (tuple(arch.values), 1)]
    from tqdm import tqdm

    search._child_context(cfg, source)
    bar = tqdm(disable=True)
    here = search._run_pooled(cfg, [], runs[:1], 1, bar)[1]
    there = search._run_pooled(cfg, [], runs, 2, bar)[1]
    assert there[0]["accuracy"] == pytest.approx(here[0]["accuracy"])
    assert there[0]["params"] == here[0]["params"] > 0
    assert 0.0 <= there[1]["accuracy"] <= 1.0
    assert sorted(os.listdir(tmp_path / "runs")) == ["child_00.log", "child_01.log"]


@pytest.mark.parametrize("flag", ["--seeds=0", "--random_archs=0", "--child_steps=-1",
                                  "--study_jobs=-1", "--search_epochs=0"])
def test_search_study_rejects_non_positive_counts(tmp_path, capsys, flag):
    from di_nas.cli import main

    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main.run_app("study", "di_nas.studies", "run_study", positional="study",
                     argv=["di-nas-study", "search", flag, f"--output_dir={out}"])
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("di-nas-study: error: ")
    assert flag.split("=")[0] in lines[0]
    assert "positive" in lines[0] or ">= 0" in lines[0]  # --study_jobs=0 means automatic
    assert not out.exists()


@pytest.mark.parametrize("flag, fragment", [("--window=0", "positive"), ("--seeds=0", "positive"),
                                            ("--protocol=both", "search|pair")])
def test_pd_study_rejects_bad_window_seeds_and_protocol(tmp_path, capsys, flag, fragment):
    from di_nas.cli import main

    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main.run_app("study", "di_nas.studies", "run_study", positional="study",
                     argv=["di-nas-study", "pd", flag, f"--output_dir={out}"])
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("di-nas-study: error: ")
    assert flag.split("=")[0] in lines[0] and fragment in lines[0]
    assert not out.exists()


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
