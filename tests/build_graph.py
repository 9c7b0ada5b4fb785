"""Derives the Bazel BUILD file from the tree: one rule per module, deps from its imports.

`tests/test_build.py` fails when the checked-in BUILD differs from what this module derives,
so BUILD can never drift from the code. Regenerate it with `python tests/build_graph.py`.

Deps are read with `ast`: `import x` / `from x import y` of project modules (relative to the
module's package too), plus string literals naming a project module (the CLI loads its job
with `importlib` from such a string, and Bazel must still ship that module). Third-party
imports map to `requirement(...)` labels of their pip distributions.
"""

from __future__ import annotations

import ast
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "di_nas"

# Import name -> pip distribution, for every third-party package the project imports.
DISTRIBUTIONS = {
    "absl": "absl-py",
    "keras": "keras",
    "keras_tuner": "keras-tuner",
    "matplotlib": "matplotlib",
    "numpy": "numpy",
    "packaging": "packaging",
    "pytest": "pytest",
    "scipy": "scipy",
    "sklearn": "scikit-learn",
    "tensorboard": "tensorboard",
    "tensorflow": "tensorflow",
    "tensorflow_datasets": "tensorflow-datasets",
    "tqdm": "tqdm",
    "PIL": "pillow",
    "importlib_resources": "importlib-resources",
}

HEADER = """\
# Bazel targets derived from the imports by tests/build_graph.py (do not edit by hand:
# run `python tests/build_graph.py` after adding or changing a module; tests/test_build.py
# fails when this file differs from what the tree implies).

load("@pypi//:requirements.bzl", "requirement")
load("@rules_python//python:defs.bzl", "py_binary", "py_library", "py_test")

package(default_visibility = ["//visibility:public"])"""


def _files(folder: str) -> list[str]:
    out = []
    for parent, dirs, names in os.walk(os.path.join(ROOT, folder)):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        out += [os.path.relpath(os.path.join(parent, n), ROOT).replace(os.sep, "/")
                for n in sorted(names) if n.endswith(".py")]
    return sorted(out)


def module_name(path: str) -> str:
    """`di_nas/a/b.py` -> `di_nas.a.b`; a package's `__init__.py` -> the package."""
    name = path[:-3].replace("/", ".")
    return name[: -len(".__init__")] if name.endswith(".__init__") else name


def target_name(module: str) -> str:
    """Bazel name of a project module: `di_nas.a.b` -> `a_b`; the package root -> `di_nas`."""
    return module[len(PACKAGE) + 1:].replace(".", "_") if module != PACKAGE else PACKAGE


def _resolve(module: str, modules: set[str]) -> str | None:
    """The project module that provides `module` (itself, or its nearest parent package)."""
    while module:
        if module in modules:
            return module
        module = module.rpartition(".")[0]
    return None


def imports_of(path: str, modules: set[str],
               strings: bool = True) -> tuple[set[str], set[str]]:
    """(project modules, third-party distributions) that the file at `path` needs.

    `strings`: count string literals naming a project module (loaded at run time through
    `importlib`, e.g. the registry's builders) as well as import statements.
    """
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    own = module_name(path)
    package = own if path.endswith("__init__.py") else own.rpartition(".")[0]
    names = []
    loggers = {id(arg) for node in ast.walk(tree) if isinstance(node, ast.Call)
               and getattr(node.func, "attr", getattr(node.func, "id", "")) == "getLogger"
               for arg in node.args}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            # `from pkg import mod` needs only pkg.mod; `from mod import name` needs mod.
            names += [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                      for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value.startswith(PACKAGE + ".") and id(node) not in loggers \
                and strings:
            names.append(node.value)
    project, third = set(), set()
    for name in names:
        top = name.split(".")[0]
        if top == PACKAGE or top == "tests":
            found = _resolve(name, modules)
            if found and found != own:
                project.add(found)
        elif top in DISTRIBUTIONS:
            third.add(DISTRIBUTIONS[top])
    return project, third


def _rule(kind: str, name: str, srcs: list[str], deps: list[str], extra: str = "") -> str:
    lines = [f"{kind}(", f'    name = "{name}",', f'    srcs = [{", ".join(map(repr, srcs))}],'
             .replace("'", '"')]
    if extra:
        lines.append(extra)
    if deps:
        lines.append("    deps = [")
        lines += [f"        {d}," for d in deps]
        lines.append("    ],")
    else:
        lines.append("    deps = [],")
    lines.append(")")
    return "\n".join(lines)


def _deps(project: set[str], third: set[str]) -> list[str]:
    return ([f'":{target_name(m)}"' if m.startswith(PACKAGE) else f'":{m.replace(".", "_")}"'
             for m in sorted(project)]
            + [f'requirement("{d}")' for d in sorted(third)])


def console_scripts() -> list[tuple[str, str]]:
    """(script, module) pairs from setup.py's console_scripts."""
    import re

    with open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as f:
        text = f.read()
    return re.findall(r'"(di-nas-[a-z]+)=(di_nas\.cli\.[a-z_]+):run"', text)


def dependency_graph(strings: bool = True) -> dict[str, set[str]]:
    """{project module: project modules it needs}, for library and test files.

    `strings=False` keeps import statements only (what a module knows at import time).
    """
    paths = _files(PACKAGE) + _files("tests")
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules, strings)[0] for p in paths}


def render() -> str:
    """The BUILD file the tree implies."""
    library_files = _files(PACKAGE)
    test_files = _files("tests")
    modules = {module_name(p) for p in library_files + test_files}
    rules = [HEADER]
    for path in library_files:
        project, third = imports_of(path, modules)
        rules.append(_rule("py_library", target_name(module_name(path)), [path],
                           _deps(project, third)))
    for script, module in console_scripts():
        rules.append(_rule("py_binary", script.replace("-", "_"),
                           [module.replace(".", "/") + ".py"], [f'":{target_name(module)}"'],
                           f'    main = "{module.replace(".", "/")}.py",'))
    for path in test_files:
        project, third = imports_of(path, modules)
        name = module_name(path).replace(".", "_")
        kind = "py_test" if os.path.basename(path).startswith("test_") else "py_library"
        if kind == "py_test":
            project.add("tests.conftest")  # pytest loads it for every test file.
            third.add("pytest")
        extra = '    size = "medium",' if kind == "py_test" else "    testonly = True,"
        rules.append(_rule(kind, name, [path], _deps(project, third), extra))
    return "\n\n".join(rules) + "\n"


if __name__ == "__main__":
    target = os.path.join(ROOT, "BUILD")
    with open(target, "w", encoding="utf-8") as f:
        f.write(render())
    print(f"wrote {target}", file=sys.stderr)
