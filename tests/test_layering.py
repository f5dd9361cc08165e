"""The package's import ladder, read from the source with ast (every import, including
those inside functions and TYPE_CHECKING blocks):

    cli -> mtpsurgeon (facade) -> api -> extract, engine -> surgery -> analysis -> formats
        -> outputs, errors, jsonrecord, _version, _lazy

No module imports a module of a higher layer, the CLI reaches the library only
through the API, and no two modules import each other (directly or in a circle).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "mtpsurgeon"

RANKS = {
    "__main__": 100,
    "cli": 60,
    "": 55,  # the facade, mtpsurgeon/__init__.py
    "api": 50,
    "extract": 40,
    "engine": 40,
    "tuning": 40,  # builds variants (surgery) and measures them with the engine
    "surgery": 35,
    "analysis": 30,
    "formats": 20,
    "outputs": 10,
    "inputs": 10,
    "paths": 10,
    "errors": 10,
    "jsonrecord": 10,
    "_version": 10,
    "_lazy": 10,
}
CLI_MAY_IMPORT = {"cli", "api", "", "errors", "_version"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports_of(module: str) -> set[str]:
    """Package modules that ``module`` imports (``from a import b`` counts a.b when it is a module)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:  # `import mtpsurgeon.x.y` of a non-module attribute
                name = name.rpartition(".")[0]
            if name.startswith("mtpsurgeon") and name != module:
                found.add(name)
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def test_every_module_has_a_layer():
    assert {layer(m) for m in MODULES} <= set(RANKS), {layer(m) for m in MODULES} - set(RANKS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_runs_up_the_ladder(module):
    upward = [target for target in GRAPH[module] if RANKS[layer(target)] > RANKS[layer(module)]]
    assert not upward, f"{module} imports higher layers: {upward}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer(m) == "cli"))
def test_cli_only_renders_the_api(module):
    below = [t for t in GRAPH[module] if layer(t) not in CLI_MAY_IMPORT]
    assert not below, f"{module} bypasses the API: {below}"


def test_surgery_never_imports_extract():
    offenders = {m: t for m, ts in GRAPH.items() if layer(m) == "surgery" for t in ts if layer(t) == "extract"}
    assert not offenders


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; components of more than one module are import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    cycles = [c for c in strongly_connected(GRAPH) if len(c) > 1]
    assert not cycles


def test_the_cycle_finder_finds_a_cycle():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"], ["d"]]
