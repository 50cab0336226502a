"""The ``energysched`` command: one entry point, one subcommand per concern.

Nothing but the standard library is imported until a subcommand is chosen:
``energysched --help`` lists the subcommands from the table below, and a
subcommand imports only its own module (``energysched scheduler`` never loads
kopf, ``energysched cluster status`` never loads numpy). The lab's subcommands
(``cluster``, ``experiment``) say so plainly when the lab is not installed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from typing import NamedTuple

DESCRIPTION = "Energy-aware scheduling for heterogeneous Kubernetes clusters."


class Command(NamedTuple):
    help: str
    module: str
    register: str  # the module's function that adds the subcommand's parser
    lab: bool = False


#: The help strings are the modules' own (a unit test keeps them equal).
COMMANDS: dict[str, Command] = {
    "cluster": Command(
        "the local control plane (etcd, apiserver, KWOK, ...)",
        "energysched_lab.cluster.commands",
        "add_cluster_parser",
        lab=True,
    ),
    "scheduler": Command(
        "run the energy-aware scheduler", "energysched.scheduler.cli", "add_parsers"
    ),
    "explain": Command(
        "show, per node, how the scheduler would place a pod",
        "energysched.scheduler.cli",
        "add_parsers",
    ),
    "experiment": Command(
        "kube-scheduler vs energysched on a scenario, judged by its ground truth",
        "energysched_lab.experiment",
        "add_parser",
        lab=True,
    ),
    "kb": Command("the knowledge base (EnergyProfiles)", "energysched.kbtools.cli", "add_parsers"),
    "bench": Command(
        "benchmark nodes and turn the results into EnergyProfiles",
        "energysched.kbtools.cli",
        "add_parsers",
    ),
    "power-manager": Command(
        "put idle opted-in nodes to sleep and wake them for pending pods",
        "energysched.powermanager.cli",
        "add_parser",
    ),
    "power-agent": Command(
        "the node agent: suspend or power off this node when the power manager asks",
        "energysched.powermanager.cli",
        "add_agent_parser",
    ),
    "operator": Command(
        "validate EnergyProfiles and keep their status (matched nodes) current",
        "energysched.operator.cli",
        "add_parser",
    ),
}
MONITOR_HELP = "the energy monitor (DaemonSet process, or --model for simulated nodes)"
#: Import roots that only the lab (a checkout's ``make install``) brings.
LAB_PACKAGES = ("energysched_lab", "energysched_mlworkflow", "energysched_bench")


class LabMissing(Exception):
    pass


def _top() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(prog="energysched", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    return parser, sub


def summary_parser() -> argparse.ArgumentParser:
    """Every subcommand with its help, importing none of them (``energysched --help``)."""
    parser, sub = _top()
    lab = _lab_installed()
    for name, cmd in COMMANDS.items():
        if lab or not cmd.lab:  # the product image lists only what it can run
            sub.add_parser(name, help=cmd.help)
    sub.add_parser("monitor", help=MONITOR_HELP)
    return parser


def _lab_installed() -> bool:
    try:
        return importlib.util.find_spec("energysched_lab") is not None
    except (ImportError, ValueError, AttributeError):  # e.g. sys.modules entry set to None
        return False


def command_parser(name: str) -> argparse.ArgumentParser:
    """The full parser of one subcommand: imports its module only."""
    cmd = COMMANDS[name]
    try:
        module = importlib.import_module(cmd.module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(LAB_PACKAGES):
            raise LabMissing(
                f"energysched {name}: this is a lab command, and the lab is not installed here"
                f" (missing {exc.name}). It comes with a checkout of the repository:"
                " 'make install' or 'pip install -e . -e ./lab' there."
            ) from exc
        raise
    parser, sub = _top()
    getattr(module, cmd.register)(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["monitor"]:  # the monitor parses its own options
        from energysched_monitor.cli import main as monitor_main

        return int(monitor_main(argv[1:]) or 0)
    name = argv[0] if argv else ""
    try:
        parser = command_parser(name) if name in COMMANDS else summary_parser()
    except LabMissing as exc:
        print(exc, file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
