"""Entry points fail on bad input with one line, exit status 2 and no traceback."""

import os
import sys

import pytest

from tests.helpers import ROOT, run_cli

COMMANDS = ("search", "train", "export", "study", "bench")


def assert_one_line_error(result, cmd, fragment):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"di-nas-{cmd}: error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_unknown_flag_in_a_flagfile(tmp_path):
    flagfile = tmp_path / "bad.cfg"
    flagfile.write_text("--epochs=2\n--not_a_flag=3\n")
    out = tmp_path / "out"
    result = run_cli("search", f"--flagfile={flagfile}", f"--output_dir={out}")
    assert_one_line_error(result, "search", "not_a_flag")
    assert str(flagfile) in result.stderr
    assert not out.exists()


def test_out_of_range_value(tmp_path):
    out = tmp_path / "out"
    result = run_cli("search", "--valid_fraction=1.5", f"--output_dir={out}")
    assert_one_line_error(result, "search", "--valid_fraction")
    assert not out.exists()


def test_unknown_dataset(tmp_path):
    out = tmp_path / "out"
    result = run_cli("search", "--dataset=no_such_dataset", f"--output_dir={out}")
    assert_one_line_error(result, "search", "no_such_dataset")
    assert not out.exists()


@pytest.mark.parametrize("args, fragment", [
    (["--batch_size=ten"], "--batch_size"),
    (["--space=darts"], "--space"),
    (["positional"], "positional"),
    (["--flagfile=/no/such.cfg"], "flagfile"),
])
def test_other_bad_input(tmp_path, args, fragment):
    result = run_cli("train", *args, f"--output_dir={tmp_path / 'out'}")
    assert_one_line_error(result, "train", fragment)


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help(cmd):
    result = run_cli(cmd, "--help")
    assert result.returncode == 0 and "--dataset" in result.stdout


@pytest.fixture
def fake_job(monkeypatch):
    """Installs ``di_nas.fake_job.run`` and returns the list of configs it received."""
    import types

    received = []
    module = types.ModuleType("di_nas.fake_job")
    module.run = received.append
    monkeypatch.setitem(sys.modules, "di_nas.fake_job", module)
    return received


def run_in_process(*argv, module="di_nas.fake_job"):
    from di_nas.cli import main

    with pytest.raises(SystemExit) as info:
        main.run_app("search", module, "run", argv=["di-nas-search", *argv])
    return info.value.code


def test_job_gets_the_config_and_flags_reset_between_runs(fake_job, tmp_path):
    flagfile = os.path.join(ROOT, "flags", "cifar10_search.cfg")
    assert run_in_process(f"--flagfile={flagfile}", "--dataset=digits", "--epochs=2") == 0
    assert run_in_process() == 0
    first, second = fake_job
    assert (first.data.dataset, first.search.epochs, first.data.batch_size) == ("digits", 2, 160)
    assert second.search.epochs == 15 and second.data.batch_size == 64


def test_missing_library_module_says_not_yet_available(capsys):
    assert run_in_process(module="di_nas.no_such_package.job") == 2
    assert capsys.readouterr().err == "di-nas-search: not yet available in this version\n"


def test_interrupt_exits_130(monkeypatch, fake_job, capsys):
    def interrupted(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(sys.modules["di_nas.fake_job"], "run", interrupted)
    assert run_in_process() == 130
    assert capsys.readouterr().err == "di-nas-search: interrupted\n"


def test_user_error_raised_by_the_job(monkeypatch, fake_job, capsys):
    from di_nas.errors import UserError

    def bad(cfg):
        raise UserError("architecture file x.json is not valid JSON: fix or regenerate it")

    monkeypatch.setattr(sys.modules["di_nas.fake_job"], "run", bad)
    assert run_in_process() == 2
    err = capsys.readouterr().err
    assert err == "di-nas-search: error: architecture file x.json is not valid JSON: fix or " \
                  "regenerate it\n"


def _npz(path, **overrides):
    """A tiny npz dataset (3 classes of 6x6 grayscale images) with ``overrides`` applied."""
    import numpy as np

    rng = np.random.default_rng(0)
    arrays = dict(x_train=rng.integers(0, 256, (24, 6, 6), dtype=np.uint8),
                  y_train=np.arange(24) % 3, x_test=rng.integers(0, 256, (6, 6, 6), dtype=np.uint8),
                  y_test=np.arange(6) % 3)
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return f"--dataset=npz:{path}"


def _folder(root):
    """An image folder with 2 classes whose last training image is not a PNG."""
    import numpy as np
    import tensorflow as tf

    for split in ("train", "test"):
        for name in ("a", "b"):
            os.makedirs(root / split / name)
            tf.io.write_file(str(root / split / name / "0.png"),
                             tf.io.encode_png(np.zeros((4, 4, 3), np.uint8)))
    (root / "train" / "b" / "bad.png").write_bytes(b"not a png")
    return root


def _bad_inputs(tmp_path):
    """The README's bad inputs: (command, arguments, fragment of the error)."""
    import numpy as np

    not_zip = tmp_path / "text.npz"
    not_zip.write_text("not an archive")
    nan = np.full((24, 6, 6), 9.0)
    nan[3, 2, 2] = np.nan
    arch = tmp_path / "arch.json"
    arch.write_text('{"space": "enas_micro", "values": [1, 2]')
    return [
        ("search", [_npz(tmp_path / "a.npz", y_train=np.arange(23) % 3)], "lengths must match"),
        ("search", [_npz(tmp_path / "b.npz", y_test=None)], "lacks y_test"),
        ("search", [_npz(tmp_path / "c.npz", y_train=np.arange(24) % 3 - 1)], "negative"),
        ("search", [_npz(tmp_path / "d.npz", x_train=np.zeros((24, 36), np.uint8))], "(N, H, W)"),
        ("search", [_npz(tmp_path / "e.npz", y_test=np.array([0, 1, 2, "x"], object))],
         "object arrays"),
        ("search", [_npz(tmp_path / "f.npz", x_train=nan)], "0..255"),
        ("search", [f"--dataset=npz:{not_zip}"], "not a readable .npz"),
        ("search", [_npz(tmp_path / "g.npz", y_train=np.zeros(24, int))], "at least 2"),
        ("search", [_npz(tmp_path / "h.npz"), "--batch_size=64"], "larger than the"),
        ("search", [f"--dataset=folder:{_folder(tmp_path / 'imgs')}"], "bad.png is unreadable"),
        ("train", [_npz(tmp_path / "i.npz"), f"--architecture={arch}"], "arch.json"),
        ("train", [_npz(tmp_path / "j.npz"), f"--architecture={tmp_path}/none.json"], "none.json"),
    ]


def test_bad_input_writes_nothing(tmp_path, capsys):
    """Every bad input of the README ends in one error line and leaves --output_dir absent."""
    from di_nas.cli import main

    jobs = {"search": ("di_nas.training.search", "run_search"),
            "train": ("di_nas.training.final", "run_final_training")}
    for n, (cmd, args, fragment) in enumerate(_bad_inputs(tmp_path)):
        out = tmp_path / f"out{n}"
        with pytest.raises(SystemExit) as info:
            main.run_app(cmd, *jobs[cmd], argv=[f"di-nas-{cmd}", *args, f"--output_dir={out}"])
        assert info.value.code == 2, (cmd, args)
        assert not out.exists() or not os.listdir(out), (args, os.listdir(out))
        err = capsys.readouterr().err
        assert err.startswith(f"di-nas-{cmd}: error: ") and fragment in err, (fragment, err)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))


def test_study_name_may_be_positional(tmp_path):
    """`di-nas-study NAME` sets --study; an unknown name is one clear error line."""
    out = tmp_path / "study"
    result = run_cli("study", "nope", f"--output_dir={out}")
    assert_one_line_error(result, "study", "--study=nope")
    assert "pd|rank" in result.stderr
    assert not out.exists()
