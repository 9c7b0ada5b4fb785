"""Config and flags: defaults, every flagfile through the real parser, invalid values."""

import dataclasses
import glob
import os
import sys

import pytest
from absl import flags

from di_nas import config as config_lib
from di_nas.cli import flags as di_flags
from di_nas.errors import UserError
from tests.helpers import ROOT

FLAGFILES = sorted(glob.glob(os.path.join(ROOT, "flags", "*.cfg")))


def parse(*args: str) -> config_lib.Config:
    flag_values = di_flags.new_flag_values()
    flag_values(["prog", *args])
    return di_flags.build_config(flag_values)


def test_flagfiles_exist():
    names = {os.path.basename(p) for p in FLAGFILES}
    assert {"digits_search.cfg", "cifar10_search.cfg", "cifar10_final.cfg",
            "imagenet_final.cfg"} <= names


@pytest.mark.parametrize("path", FLAGFILES, ids=os.path.basename)
def test_every_flagfile_parses_and_validates(path):
    cfg = parse(f"--flagfile={path}")
    assert isinstance(cfg, config_lib.Config)
    assert cfg.to_dict()["output_dir"]


def test_defaults_are_the_digits_preset():
    assert parse() == config_lib.Config()
    assert parse(f"--flagfile={ROOT}/flags/digits_search.cfg") == config_lib.Config()


def test_digits_flagfile_restates_every_search_default():
    text = open(os.path.join(ROOT, "flags", "digits_search.cfg")).read()
    for section in ("data", "space", "optim", "di", "controller", "search"):
        for spec in di_flags.FLAG_TABLE:
            if spec.section == section and spec.field not in ("data_dir",):
                assert f"--{spec.name}" in text or f"--no{spec.name}" in text, spec.name


def test_presets_set_their_recipes():
    cifar = parse(f"--flagfile={ROOT}/flags/cifar10_search.cfg")
    assert (cifar.data.dataset, cifar.search.epochs, cifar.data.batch_size) == ("cifar10", 150, 160)
    final = parse(f"--flagfile={ROOT}/flags/cifar10_final.cfg")
    assert (final.final.num_layers, final.final.filters, final.final.epochs) == (20, 36, 600)
    assert (final.final.auxiliary_weight, final.final.drop_path) == (0.4, 0.2)
    assert final.data.cutout == 16
    imagenet = parse(f"--flagfile={ROOT}/flags/imagenet_final.cfg")
    assert (imagenet.data.image_size, imagenet.final.batch_size) == (224, 1024)
    assert imagenet.final.label_smoothing == 0.1


def test_flags_map_to_fields():
    cfg = parse("--nodi", "--di_reset=100", "--space=nb201", "--data_dir=/d", "--final_layers=3",
                "--devices=/cpu:0, /cpu:1", "--study=rank", "--quick")
    assert not cfg.di.enabled and cfg.di.reset_steps == 100
    assert cfg.space.name == "nb201" and cfg.data.data_dir == "/d" and cfg.final.num_layers == 3
    assert cfg.distribute.device_list == ("/cpu:0", "/cpu:1")
    assert cfg.study.name == "rank" and cfg.bench.quick
    assert parse("--data_dir=").data.data_dir is None


def test_child_steps_default_is_each_studys_own():
    assert parse("--study=search").study.child_budget() == config_lib.CHILD_STEPS["search"]
    assert parse("--study=rank").study.child_budget() == config_lib.CHILD_STEPS["rank"]
    assert parse("--study=rank", "--child_steps=7").study.child_budget() == 7
    with pytest.raises(UserError, match="--child_steps"):
        parse("--child_steps=0")
    assert parse("--study=search").study.search_budget() == config_lib.jobs.SEARCH_STUDY_EPOCHS
    assert parse("--search_epochs=3").study.search_budget() == 3


@pytest.mark.parametrize("args, fragment", [
    (["--valid_fraction=1.5"], "--valid_fraction"),
    (["--valid_fraction=0"], "--valid_fraction"),
    (["--batch_size=0"], "--batch_size"),
    (["--epochs=-1"], "--epochs"),
    (["--final_epochs=0"], "--final_epochs"),
    (["--di_reset=sometimes"], "--di_reset"),
    (["--di_reset=0"], "--di_reset"),
    (["--di_decay=2"], "--di_decay"),
    (["--di_rescale=0.5"], "--di_rescale"),
    (["--di_project=buffer", "--di_rescale=2"], "--di_rescale"),
    (["--drop_path=1.0"], "--drop_path"),
    (["--controller_baseline_decay=1"], "--controller_baseline_decay"),
    (["--seed=-3"], "--seed"),
    (["--output_dir="], "--output_dir"),
    (["--learning_rate=0.01", "--learning_rate_min=0.1"], "--learning_rate_min"),
])
def test_invalid_values_are_one_line_user_errors(args, fragment):
    with pytest.raises(UserError) as info:
        parse(*args)
    message = str(info.value)
    assert fragment in message and "\n" not in message


@pytest.mark.parametrize("args", [["--space=darts"], ["--controller=evolution"],
                                  ["--strategy=horovod"], ["--batch_size=big"], ["--nosuch=1"]])
def test_invalid_flags_are_rejected_by_the_parser(args):
    with pytest.raises(flags.Error):
        parse(*args)


def test_unknown_flag_inside_a_flagfile(tmp_path):
    path = tmp_path / "bad.cfg"
    path.write_text("--epochs=3\n--epochz=4\n")
    with pytest.raises(flags.UnrecognizedFlagError):
        parse(f"--flagfile={path}")


def test_sections_validate_themselves():
    with pytest.raises(UserError):
        config_lib.SpaceConfig(name="darts")
    with pytest.raises(UserError):
        config_lib.DataConfig(valid_fraction=1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config_lib.Config().seed = 3  # type: ignore[misc]


def test_dict_round_trip_and_replace():
    cfg = config_lib.tiny("/tmp/x")
    assert config_lib.Config.from_dict(cfg.to_dict()) == cfg
    changed = cfg.replace(data={"batch_size": 4}, seed=7)
    assert changed.data.batch_size == 4 and changed.seed == 7 and changed.space == cfg.space
    with pytest.raises(UserError):
        config_lib.Config.from_dict({"data": {"batch": 3}})


def test_fingerprint_tracks_search_fields_only():
    base = config_lib.Config()
    assert base.fingerprint() == config_lib.Config().fingerprint()
    assert len(base.fingerprint()) == 16
    for change in ({"di": {"beta": 1e-2}}, {"data": {"dataset": "cifar10"}}, {"seed": 1},
                   {"space": {"filters": 8}}, {"search": {"epochs": 2}}):
        assert base.replace(**change).fingerprint() != base.fingerprint(), change
    for change in ({"output_dir": "elsewhere"}, {"final": {"epochs": 3}},
                   {"distribute": {"strategy": "mirrored"}}, {"data": {"data_dir": "/d"}},
                   {"search": {"log_every": 1}}, {"export": {"tflite": True}}):
        assert base.replace(**change).fingerprint() == base.fingerprint(), change


def test_tiny_is_small_and_valid():
    cfg = config_lib.tiny()
    assert cfg.search.epochs == 1 and cfg.space.filters <= 8 and cfg.data.batch_size <= 16


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
