"""The core's import graph: no cycle (typing-only imports included), and a light bottom.

The import-linter ``layers`` contract in pyproject.toml says which module may
import which; this test says the same thing another way (grimp, the graph
import-linter itself builds), so a cycle fails ``pytest tests/unit`` even where
``lint-imports`` is not run. And the bottom layers must load without numpy or
the plugins: the monitor reads quantities and pod requests with them.
"""

from __future__ import annotations

import subprocess
import sys

import grimp

CORE = "energysched.core"


def _core_graph() -> dict[str, set[str]]:
    graph = grimp.build_graph("energysched", cache_dir=None)  # TYPE_CHECKING imports too
    mods = {m for m in graph.modules if m == CORE or m.startswith(f"{CORE}.")}
    return {m: graph.find_modules_directly_imported_by(m) & mods for m in mods}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), and self-imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in edges[v]:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_core_import_graph_has_no_cycle() -> None:
    edges = _core_graph()
    # the package's own __init__ names everything for type checkers only; nothing imports it
    del edges[CORE]
    assert _cycles(edges) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above could not fail if this did not."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c"]]


def test_no_core_module_imports_the_core_package_itself() -> None:
    """``from energysched.core import X`` inside the core would make the lazy
    package a node of the graph (and every module a cycle through it)."""
    edges = _core_graph()
    assert sorted(m for m, targets in edges.items() if CORE in targets) == []


def test_quantities_and_pod_requests_load_without_numpy_or_plugins() -> None:
    code = (
        "import sys\n"
        "from energysched.core.quantity import parse_quantity\n"
        "from energysched.core.parse import pod_requests\n"
        "assert pod_requests({'spec': {'containers': []}})['pods'] == 1\n"
        "heavy = ('numpy', 'energysched.core.filters', 'energysched.core.scores',\n"
        "         'energysched.core.registry')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
