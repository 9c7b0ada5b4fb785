"""The BUILD file, setup.py, README and CI script agree with the tree.

BUILD is derived from the imports (`tests/build_graph.py`); when it drifts, the failure says
to regenerate it.
"""

import os
import re
import sys

import pytest

from tests import build_graph

ROOT = build_graph.ROOT
MAIN_BLOCK = re.compile(
    r'^if __name__ == "__main__":\n(?:[ \t]+.*\n|\n)*?[ \t]+.*pytest\.main\(', re.MULTILINE)


def _read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def test_build_file_is_what_the_imports_imply():
    expected = build_graph.render()
    assert _read("BUILD") == expected, (
        "BUILD differs from the deps the imports imply: run `python tests/build_graph.py`")


def test_build_has_a_binary_per_console_script_and_a_test_per_test_file():
    text = _read("BUILD")
    scripts = build_graph.console_scripts()
    assert len(scripts) == 5
    for script, _ in scripts:
        assert f'name = "{script.replace("-", "_")}"' in text
    tests = [n for n in os.listdir(os.path.join(ROOT, "tests")) if n.startswith("test_")]
    assert text.count("py_test(") == len(tests)


def test_project_imports_have_no_cycle():
    graph = build_graph.dependency_graph()
    state = {}

    def visit(node, path):
        if state.get(node) == 1:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(node):] + [node]))
        if state.get(node) != 2:
            state[node] = 1
            for dep in sorted(graph.get(node, ())):
                visit(dep, path + [node])
            state[node] = 2

    for node in sorted(graph):
        visit(node, [])


def test_every_test_file_runs_its_tests_when_executed():
    missing = [n for n in sorted(os.listdir(os.path.join(ROOT, "tests")))
               if n.startswith("test_") and n.endswith(".py")
               and not MAIN_BLOCK.search(_read(f"tests/{n}"))]
    assert not missing, ("add `if __name__ == '__main__': raise SystemExit(pytest.main("
                         f"[__file__]))` to {missing}")


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
