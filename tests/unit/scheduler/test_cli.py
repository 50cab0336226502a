"""The ``energysched`` entry point: lazy imports, help texts, a missing lab."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from energysched import cli


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_the_summary_help_is_each_modules_own(name: str) -> None:
    parser = cli.command_parser(name)
    (action,) = parser._subparsers._group_actions  # type: ignore[union-attr]
    helps = {a.dest: a.help for a in action._choices_actions}  # type: ignore[attr-defined]
    assert helps[name] == cli.COMMANDS[name].help
    assert name in action.choices  # type: ignore[operator]


def test_help_imports_no_subcommand_and_no_third_party_package() -> None:
    code = (
        "import sys\n"
        "from energysched.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('energysched', 'aiohttp', 'numpy',"
        " 'kopf', 'yaml', 'cryptography', 'structlog', 'prometheus_client'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "['energysched', 'energysched.cli']"


def test_a_subcommand_imports_only_its_own_module() -> None:
    code = (
        "import sys\n"
        "from energysched.cli import command_parser\n"
        "command_parser('operator')\n"
        "print(any(m.startswith(('energysched_lab', 'energysched.scheduler', 'numpy', 'kopf'))"
        " for m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("command", [["cluster", "status"], ["experiment"]])
def test_lab_commands_say_clearly_when_the_lab_is_not_installed(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [m for m in sys.modules if m.startswith("energysched_lab")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "energysched_lab", None)  # as if not installed
    assert cli.main(command) == 2
    err = capsys.readouterr().err
    assert f"energysched {command[0]}: this is a lab command" in err
    assert "not installed" in err and "pip install -e ." in err


def test_without_the_lab_the_help_lists_only_what_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [m for m in sys.modules if m.startswith("energysched_lab")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "energysched_lab", None)  # as in the product image
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    listed = set(re.findall(r"^    (\w+)", capsys.readouterr().out, flags=re.MULTILINE))
    assert {"scheduler", "monitor"} <= listed
    assert not {"cluster", "experiment"} & listed
