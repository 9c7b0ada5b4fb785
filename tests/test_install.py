"""Packaging: one TensorFlow build per install, keras-tuner pinned, constraints.txt consistent.

Offline and fast: setup.py's requirements are read from its source and checked against
constraints.txt with `packaging`. CI installs with the constraints (`.ci/run`: `pip install -c
constraints.txt -e '.[cpu,test]'`), which is the check that the package installs with them.
"""

import ast
import os

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import ROOT

TENSORFLOW_BUILDS = {"tensorflow", "tensorflow-cpu", "tensorflow-tpu", "tf-nightly"}


def _setup_keywords():
    with open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, "id", None) == "setup")
    return {k.arg: ast.literal_eval(k.value) for k in call.keywords
            if k.arg in ("install_requires", "extras_require", "python_requires")}


def _pins():
    pins = {}
    with open(os.path.join(ROOT, "constraints.txt"), encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, version = line.split("==")
                pins[canonicalize_name(name)] = version
    return pins


def test_each_install_holds_one_tensorflow_build():
    keywords = _setup_keywords()
    extras = keywords["extras_require"]
    assert not [r for r in keywords["install_requires"] + extras["test"]
                if canonicalize_name(Requirement(r).name) in TENSORFLOW_BUILDS]
    for build in ("cpu", "gpu", "tpu"):
        for platform in ("linux", "darwin"):
            names = {canonicalize_name(Requirement(r).name) for r in extras[build]
                     if Requirement(r).marker is None
                     or Requirement(r).marker.evaluate({"sys_platform": platform})}
            assert len(names & TENSORFLOW_BUILDS) == 1, (build, platform, names)


@pytest.mark.parametrize("extras", [("cpu", "test")])
def test_constraints_pin_every_requirement_within_its_range(extras):
    keywords = _setup_keywords()
    pins = _pins()
    requirements = keywords["install_requires"] + [r for e in extras
                                                   for r in keywords["extras_require"][e]]
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker and not requirement.marker.evaluate({"sys_platform": "linux"}):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"constraints.txt lacks {name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (text, pins[name])
    assert keywords["extras_require"]["test"] == ["pytest", "pytest-xdist"]  # test tools only
    assert Requirement("x" + keywords["python_requires"]).specifier.contains("3.11")


def test_keras_tuner_is_pinned_to_the_checked_minor_version():
    pinned = [Requirement(r) for r in _setup_keywords()["install_requires"]
              if r.startswith("keras-tuner")]
    assert len(pinned) == 1 and "1.4.8" in pinned[0].specifier
    assert "1.5.0" not in pinned[0].specifier and "1.3.0" not in pinned[0].specifier


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
