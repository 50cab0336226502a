"""What the monitor imports: layered as the design says.

The monitor runs from the product image (the energysched wheel without the lab),
so keeping it out of the lab keeps it in the image."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
#: Import roots and the folder each lives in (as pyproject.toml's packages.find says).
ROOTS = {
    "energysched": ROOT / "energysched",
    "energysched_monitor": ROOT / "monitor" / "energysched_monitor",
    "energysched_bench": ROOT / "bench" / "energysched_bench",
}


def _module_file(name: str) -> Path | None:
    top, *rest = name.split(".")
    if top not in ROOTS:
        return None
    base = ROOTS[top].joinpath(*rest)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` (never run)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        ):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def _imports(path: Path) -> set[str]:
    """First-party modules imported by ``path`` at any depth of the file (lazy ones too),
    except those for type checkers only."""
    names: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {n for n in names if n.split(".")[0] in ROOTS}


def monitor_closure() -> dict[str, Path]:
    """Every first-party module the monitor needs, with its package ``__init__`` files."""
    seen: dict[str, Path] = {}
    todo = [p for p in ROOTS["energysched_monitor"].glob("*.py")]
    while todo:
        path = todo.pop()
        rel = str(path.relative_to(ROOT))
        if rel in seen:
            continue
        seen[rel] = path
        for name in _imports(path):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b too
                found = _module_file(".".join(parts[:i]))
                if found is not None:
                    todo.append(found)
    return seen


def test_monitor_imports_only_its_allowed_layers() -> None:
    """The monitor may use the kube client, the contract, the strict reader, the probe
    server, the knowledge base, the power-reading core and the scheduling core's light
    readers (quantities, nodes and pods; no numpy, no plugins); never the scheduler, the
    operator, the rest of the core or the lab."""
    allowed = (
        "monitor/energysched_monitor/",
        "bench/energysched_bench/__init__.py",
        "bench/energysched_bench/power.py",
        "energysched/__init__.py",
        "energysched/contract.py",
        "energysched/strict.py",
        "energysched/probes.py",
        "energysched/kube/",
        "energysched/kb/",
        # the one reader of Kubernetes values (tests/unit/core/test_core_layers.py
        # checks it loads without numpy)
        "energysched/core/__init__.py",
        "energysched/core/errors.py",
        "energysched/core/params.py",
        "energysched/core/parse.py",
        "energysched/core/quantity.py",
        "energysched/core/values.py",
    )
    outside = sorted(rel for rel in monitor_closure() if not rel.startswith(allowed))
    assert outside == []
