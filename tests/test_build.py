"""The BUILD file, setup.py, README and CI script agree with the tree.

When a check fails, the message names the file to add to BUILD (see README "Adding a module").
"""

import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RULE = re.compile(r"^(py_library|py_binary|py_test)\(\n(.*?)^\)", re.MULTILINE | re.DOTALL)


def _read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def build_rules():
    """{kind: {name: [srcs]}} parsed from BUILD."""
    rules = {"py_library": {}, "py_binary": {}, "py_test": {}}
    for kind, body in RULE.findall(_read("BUILD")):
        name = re.search(r'^\s*name = "([^"]+)"', body, re.MULTILINE).group(1)
        srcs = re.search(r"^\s*srcs = \[(.*?)\]", body, re.MULTILINE | re.DOTALL)
        assert name not in rules[kind], f"BUILD: duplicate {kind} {name!r}"
        rules[kind][name] = re.findall(r'"([^"]+)"', srcs.group(1)) if srcs else []
    return rules


def console_scripts():
    return set(re.findall(r'"(di-nas-[a-z]+)=di_nas\.cli\.[a-z_]+:run"', _read("setup.py")))


def test_binaries_match_console_scripts():
    scripts = {name.replace("-", "_") for name in console_scripts()}
    assert len(scripts) == 5
    binaries = set(build_rules()["py_binary"])
    assert binaries == scripts, (f"BUILD py_binary targets {sorted(binaries)} differ from "
                                 f"setup.py console scripts {sorted(scripts)}")


def test_every_module_has_a_py_library():
    in_libraries = {src for srcs in build_rules()["py_library"].values() for src in srcs}
    modules = []
    for folder, _, names in os.walk(os.path.join(ROOT, "di_nas")):
        modules += [os.path.relpath(os.path.join(folder, n), ROOT).replace(os.sep, "/")
                    for n in names if n.endswith(".py")]
    missing = sorted(set(modules) - in_libraries)
    assert not missing, ("add a py_library to BUILD for: " + ", ".join(missing)
                         + " (see README 'Adding a module')")


def test_every_test_file_has_a_py_test():
    in_tests = {src for srcs in build_rules()["py_test"].values() for src in srcs}
    tests = sorted(f"tests/{n}" for n in os.listdir(os.path.join(ROOT, "tests"))
                   if n.startswith("test_") and n.endswith(".py"))
    missing = [t for t in tests if t not in in_tests]
    assert not missing, ("add a py_test to BUILD for: " + ", ".join(missing)
                         + " (see README 'Adding a module')")


def quickstart_lines():
    text = _read("README.md")
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^(python3 -m venv .*)$", section, re.MULTILINE)


def test_readme_quickstart_has_two_commands_and_ci_runs_the_second():
    lines = quickstart_lines()
    assert len(lines) == 2, lines
    assert lines[0].endswith("pip install -e '.[cpu]' && di-nas-search")
    ci = [line for line in _read(".ci/run").splitlines()
          if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert ci == [lines[1]], f".ci/run must run the README test command verbatim: {lines[1]}"
    assert _read(".ci/run").startswith("#!/usr/bin/env bash\n")
    assert os.access(os.path.join(ROOT, ".ci/run"), os.X_OK)


def test_readme_lists_every_flag():
    from di_nas.cli import flags as di_flags

    text = _read("README.md")
    missing = [s.name for s in di_flags.FLAG_TABLE if f"`--{s.name}`" not in text]
    assert not missing, f"README.md flag table lacks: {missing}"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
