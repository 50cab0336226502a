"""The suite's own rules, checked by reading the tests (``ast``), so they stay true:

* no bare ``time.sleep``/``asyncio.sleep`` of a second or more in tests/integration: a
  wait for the cluster is a condition (tests/eventually.py), never a fixed time;
* no plain ``pytest.skip`` in tests/integration: a component CI provides that is missing
  fails there (the deploy tests' ``unavailable`` skips only where no REQUIRE flag is set);
* markers are set by path in tests/conftest.py only, never by hand in a test file;
* CI (.ci/run) sets every ENERGYSCHED_REQUIRE_* flag the code reads.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
INTEGRATION = TESTS / "integration"
PATH_MARKERS = {"unit", "integration", "images", "go", "torch"}
#: The one function allowed to call pytest.skip under tests/integration (see its docstring).
SKIP_GATEKEEPER = "unavailable"


def _imports(tree: ast.Module) -> tuple[dict[str, str], set[str]]:
    """Local names of the modules time/asyncio, and local names bound to their ``sleep``."""
    modules: dict[str, str] = {}
    sleeps: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in ("time", "asyncio"):
                    modules[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module in ("time", "asyncio"):
            sleeps |= {a.asname or a.name for a in node.names if a.name == "sleep"}
    return modules, sleeps


def _constants(tree: ast.Module) -> dict[str, float]:
    """Names bound to a number anywhere in the module (the largest, if bound twice)."""
    found: dict[str, float] = {}
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for target in targets:
            if isinstance(target, ast.Name) and value is not None:
                number = _number(value, found)
                if number is not None:
                    found[target.id] = max(number, found.get(target.id, number))
    return found


def _number(expr: ast.expr, names: dict[str, float]) -> float | None:
    """The value of a constant expression (numbers, known names, + - * /), else None."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, int | float):
        return float(expr.value) if not isinstance(expr.value, bool) else None
    if isinstance(expr, ast.Name):
        return names.get(expr.id)
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub | ast.UAdd):
        inner = _number(expr.operand, names)
        return None if inner is None else (-inner if isinstance(expr.op, ast.USub) else inner)
    if isinstance(expr, ast.BinOp):
        left, right = _number(expr.left, names), _number(expr.right, names)
        if left is None or right is None:
            return None
        if isinstance(expr.op, ast.Add):
            return left + right
        if isinstance(expr.op, ast.Sub):
            return left - right
        if isinstance(expr.op, ast.Mult):
            return left * right
        if isinstance(expr.op, ast.Div) and right:
            return left / right
    return None


def long_sleeps(source: str) -> list[tuple[int, float]]:
    """(line, seconds) of every sleep call of a known constant >= 1 s."""
    tree = ast.parse(source)
    modules, sleeps = _imports(tree)
    constants = _constants(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        is_sleep = (isinstance(func, ast.Name) and func.id in sleeps) or (
            isinstance(func, ast.Attribute)
            and func.attr == "sleep"
            and isinstance(func.value, ast.Name)
            and func.value.id in modules
        )
        if not is_sleep:
            continue
        arg = node.args[0] if node.args else None
        for kw in node.keywords:
            if kw.arg in ("delay", "secs", "seconds"):
                arg = kw.value
        seconds = _number(arg, constants) if arg is not None else None
        if seconds is not None and seconds >= 1:
            found.append((node.lineno, seconds))
    return found


def plain_skips(source: str) -> list[int]:
    """Lines of ``pytest.skip(...)`` calls outside the gatekeeper function."""
    tree = ast.parse(source)
    allowed: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == SKIP_GATEKEEPER:
            allowed |= {id(n) for n in ast.walk(node)}
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "skip"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "pytest"
        and id(node) not in allowed
    ]


def hand_markers(source: str) -> list[int]:
    """Lines that set a path marker by hand (``pytestmark = ...`` or ``@pytest.mark.unit``)."""
    tree = ast.parse(source)
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
        ) or (
            isinstance(node, ast.Attribute)
            and node.attr in PATH_MARKERS
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "mark"
        ):
            lines.append(node.lineno)
    return sorted(set(lines))


def _files(root: Path) -> Iterator[Path]:
    yield from sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


# -- the rules, over the suite -------------------------------------------------------------


def test_no_long_fixed_sleep_in_the_integration_tests() -> None:
    found = [
        f"{path.relative_to(TESTS)}:{line}: sleep({seconds:g})"
        for path in _files(INTEGRATION)
        for line, seconds in long_sleeps(path.read_text())
    ]
    assert not found, "wait for a condition (tests/eventually.py) instead of:\n" + "\n".join(found)


def test_no_plain_skip_in_the_integration_tests() -> None:
    found = [
        f"{path.relative_to(TESTS)}:{line}"
        for path in _files(INTEGRATION)
        for line in plain_skips(path.read_text())
    ]
    assert not found, "a missing component CI provides must fail, not skip:\n" + "\n".join(found)


def test_markers_are_set_by_path_only() -> None:
    found = [
        f"{path.relative_to(TESTS)}:{line}"
        for path in _files(TESTS)
        if path.name != "conftest.py" or path.parent != TESTS
        for line in hand_markers(path.read_text())
    ]
    assert not found, "tests/conftest.py sets these markers by path:\n" + "\n".join(found)


def test_ci_sets_every_require_flag() -> None:
    flag = re.compile(r"ENERGYSCHED_REQUIRE_[A-Z_]+")
    read = {
        m
        for folder in ("tests", "energysched", "lab")
        if (ROOT / folder).is_dir()
        for path in _files(ROOT / folder)
        for m in flag.findall(path.read_text())
    }
    assert read, "no REQUIRE flag found: has the deploy conftest moved?"
    ci = (ROOT / ".ci" / "run").read_text()
    assert {f for f in read if not re.search(rf"^export {f}=1$", ci, re.M)} == set()


# -- the checks themselves ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "seconds"),
    [
        ("import asyncio\nasync def f():\n    await asyncio.sleep(2)\n", 2.0),
        ("import time\ntime.sleep(1.5)\n", 1.5),
        ("import time\nWAIT = 3\ndef f():\n    time.sleep(WAIT)\n", 3.0),
        ("import time\nWAIT: float = 0.5 * 4\ntime.sleep(WAIT)\n", 2.0),
        ("import asyncio\nasync def f():\n    d = 1\n    await asyncio.sleep(d)\n", 1.0),
        ("import asyncio as aio\nasync def f():\n    await aio.sleep(delay=1)\n", 1.0),
        ("from time import sleep\nsleep(60)\n", 60.0),
        ("from asyncio import sleep as nap\nasync def f():\n    await nap(1.0)\n", 1.0),
    ],
)
def test_a_long_sleep_is_found(source: str, seconds: float) -> None:
    assert [s for _, s in long_sleeps(source)] == [seconds]


@pytest.mark.parametrize(
    "source",
    [
        "import asyncio\nasync def f():\n    await asyncio.sleep(0.5)\n",
        "import time\ndef f(seconds):\n    time.sleep(seconds)\n",  # not a known constant
        "import time\nINTERVAL = 0.2\ntime.sleep(INTERVAL)\n",
        "def sleep(x): ...\nsleep(5)\n",  # not time's or asyncio's
        "import time\ntime.monotonic()\n",
    ],
)
def test_a_short_or_unknown_sleep_is_not(source: str) -> None:
    assert long_sleeps(source) == []


def test_a_plain_skip_is_found_and_the_gatekeepers_is_not() -> None:
    source = (
        "import pytest\n"
        "def unavailable(reason):\n    pytest.skip(reason)\n"
        "def test_x():\n    pytest.skip('no image')\n"
    )
    assert plain_skips(source) == [5]


def test_a_hand_set_marker_is_found() -> None:
    source = (
        "import pytest\npytestmark = pytest.mark.unit\n"
        "@pytest.mark.integration\ndef test_a(): ...\n"
        "@pytest.mark.parametrize('x', [1])\ndef test_b(x): ...\n"
    )
    assert hand_markers(source) == [2, 3]
