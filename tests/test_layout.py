"""The package's shape: small modules and functions, few root modules, imports only downwards.

The rooms of `di_nas/` are ordered (DESIGN.md): a module may import its own room and lower
ones, never a higher one, so the math and the models never learn about loops or flags.
"""

import ast
import os

import pytest

from tests import build_graph

# Lower number = lower room. Spaces and their op tables are data the config validates against,
# so they sit with it. The package root (`di_nas/__init__.py`) is the public API.
LEVELS = {
    "errors": 0, "config": 0, "io": 0, "ops": 0, "search_space": 0,
    "distribute": 1, "data": 1, "di": 1,
    "supernet": 2, "controller": 2,
    "child": 3,
    "training": 4,
    "export": 5, "studies": 5, "bench": 5,
    "api": 6,
    "cli": 7, "": 8,
}
MAX_MODULE_LINES, MAX_FUNCTION_LINES, MAX_ROOT_MODULES = 300, 60, 6


def _room(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _library_files():
    return build_graph._files(build_graph.PACKAGE)


def _source(path):
    with open(os.path.join(build_graph.ROOT, path), encoding="utf-8") as f:
        return f.read()


def test_every_room_has_a_level():
    rooms = {_room(build_graph.module_name(p)) for p in _library_files()}
    assert rooms <= set(LEVELS), f"give these packages a level in LEVELS: {rooms - set(LEVELS)}"


def test_imports_run_only_downwards():
    # Import statements only: the space registry names its builders' modules as strings and
    # loads them when a network is built, a deliberate plugin-style inversion.
    graph = build_graph.dependency_graph(strings=False)
    upward = [f"{m} -> {d}" for m, deps in sorted(graph.items()) if m.startswith("di_nas")
              for d in sorted(deps) if LEVELS[_room(d)] > LEVELS[_room(m)]]
    assert not upward, "imports into a higher room: " + "; ".join(upward)


def test_modules_and_functions_stay_small():
    too_long = []
    for path in _library_files():
        source = _source(path)
        if source.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{path} ({source.count(chr(10))} lines)")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path}:{node.lineno} {node.name} ({length} lines)")
    assert not too_long, "split these: " + "; ".join(too_long)


def test_root_holds_few_modules():
    root = os.path.join(build_graph.ROOT, build_graph.PACKAGE)
    modules = sorted(n for n in os.listdir(root) if n.endswith(".py"))
    assert len(modules) <= MAX_ROOT_MODULES, modules


def test_every_package_says_what_it_may_import():
    silent = [p for p in _library_files() if p.endswith("__init__.py")
              and "import" not in (ast.get_docstring(ast.parse(_source(p))) or "").lower()]
    assert not silent, f"say in the package docstring what it may import: {silent}"


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
