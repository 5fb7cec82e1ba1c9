"""The package's import graph: every module imports alone, and no two modules import each other."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import microgradnet

PACKAGE = Path(__file__).resolve().parent.parent / "microgradnet"
# Where the package under test was imported from (the installed copy in CI, not the sources).
IMPORTED_FROM = Path(microgradnet.__file__).resolve().parent.parent

# Imports inside a function that point back up the layers, each with the reason it is not
# at the top of its module. autograd's Tensor methods call functional, which builds on
# Tensor and Function: the reference is taken on the first op, after both modules exist.
# Likewise its numpy protocols (__array_ufunc__, ...) call _array_protocols, built on functional.
LAZY_BACK_EDGES = {("microgradnet.autograd", "microgradnet.functional"),
                   ("microgradnet.autograd", "microgradnet._array_protocols")}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(_module_name(p) for p in PACKAGE.rglob("*.py"))


def _imported(path: Path, module: str, known: set[str]) -> set[tuple[str, bool]]:
    """(module of the package, imported inside a function?) for each import in the file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[tuple[str, bool]] = set()

    def add(name: str, in_function: bool) -> None:
        while name and name not in known:  # `from .a.b import c`: the module a.b
            name = name.rpartition(".")[0]
        if name and name != "microgradnet":
            found.add((name, in_function))

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name, inner)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - (child.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in child.names:  # `from . import x` names module x, if it is one
                    add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base,
                        inner)
            visit(child, inner)

    visit(ast.parse(path.read_text()), False)
    return found


def _graph() -> dict[str, set[str]]:
    known = set(MODULES)
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        edges = _imported(path, module, known)
        graph[module] = {target for target, _ in edges
                         if target != module and (module, target) not in LAZY_BACK_EDGES}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle_among_the_package_modules():
    # The package __init__ imports its modules to offer their names; the modules import
    # one another only downwards, so that importing any one of them first works.
    graph = {m: edges for m, edges in _graph().items() if m != "microgradnet"}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_search_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_autograd_and_functional():
    graph = _graph()
    assert "microgradnet.autograd" in graph["microgradnet.functional"]
    assert {"microgradnet.data", "microgradnet.training", "microgradnet.saving"} <= graph[
        "microgradnet.models"]


@pytest.mark.slow  # a fresh interpreter per module
@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_alone(module, tmp_path):
    if module == "microgradnet.viz":
        pytest.importorskip("matplotlib")
    code = f"import importlib; importlib.import_module({module!r})"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(IMPORTED_FROM)})
    assert result.returncode == 0, result.stderr
