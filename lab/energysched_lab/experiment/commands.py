"""The ``energysched experiment`` command line."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from pathlib import Path
from typing import Any

from energysched import contract
from energysched_lab.experiment.finish import finish
from energysched_lab.experiment.runner import (
    ENERGY,
    KUBE,
    Progress,
    new_batch_id,
    plan,
    run_batch,
)
from energysched_lab.experiment.scenario import DEFAULT_SCENARIO, ScenarioError, load_scenario


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of numbers: {text!r}"
        ) from exc
    bad = [v for v in values if not 0.0 <= v <= 1.0]
    if bad or not values:
        raise argparse.ArgumentTypeError(f"weights must be within 0.0..1.0, got {text!r}")
    return values


def _modes(text: str) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in modes if m not in contract.SCORING_MODES]
    if bad or not modes:
        raise argparse.ArgumentTypeError(
            f"mode {bad[0] if bad else text!r} is not one of {', '.join(contract.SCORING_MODES)}"
        )
    return modes


def _schedulers(text: str) -> list[str]:
    names = {"both": [KUBE, ENERGY], "kube-scheduler": [KUBE], "energysched": [ENERGY]}
    if text not in names:
        raise argparse.ArgumentTypeError(f"--schedulers: one of {', '.join(names)}, got {text!r}")
    return names[text]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "experiment",
        help="kube-scheduler vs energysched on a scenario, judged by its ground truth",
        description="Runs a scenario's workload on the local KWOK cluster (or, named "
        "explicitly, a real one), placed by kube-scheduler and energysched, and writes "
        "results/thesis_results.csv, runs.csv, per-node traces, report.md and plots.",
    )
    p.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO, help="scenario directory")
    p.add_argument("--weight", type=_floats, help="one performance weight (0..1)")
    p.add_argument("--weights", type=_floats, help="comma-separated weights (a sweep)")
    p.add_argument("--repeats", type=int, default=1, help="seeds per configuration (default 1)")
    p.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    p.add_argument(
        "--mode",
        type=_modes,
        default=[contract.DEFAULT_SCORING_MODE],
        help=f"scoring mode(s), comma-separated (default {contract.DEFAULT_SCORING_MODE})",
    )
    p.add_argument(
        "--schedulers",
        type=_schedulers,
        default=[KUBE, ENERGY],
        help="both (default), kube-scheduler or energysched",
    )
    p.add_argument(
        "--power",
        choices=("off", "on", "both"),
        default="off",
        help="power management: off (default; every node stays on), on (the power manager "
        "sleeps idle nodes, pods that fit no awake node wake one; nodes need powerStates in "
        "truth.yaml and their profile), both (every scheduler with and without it)",
    )
    p.add_argument(
        "--time-factor",
        type=float,
        help="wall seconds per simulated second (default: the scenario's)",
    )
    p.add_argument("--out", type=Path, default=Path("results"))
    p.add_argument(
        "--cluster",
        choices=("local", "current"),
        default="local",
        help="local (default): a local KWOK cluster; current: the cluster of "
        "--kubeconfig or $KUBECONFIG, real pods, power from the monitor",
    )
    p.add_argument(
        "--kubeconfig",
        type=Path,
        help="a real cluster (implies --cluster current); never taken from $KUBECONFIG "
        "unless --cluster current is given",
    )
    real = p.add_argument_group("a real cluster (--cluster current)")
    real.add_argument("--image", help="the workflow image (default: energysched-mlworkflow:dev)")
    real.add_argument(
        "--image-pull-policy", choices=("IfNotPresent", "Always", "Never"), default="IfNotPresent"
    )
    data = real.add_mutually_exclusive_group()
    data.add_argument(
        "--data-claim", help="a ReadWriteMany PersistentVolumeClaim the stages share (e.g. NFS)"
    )
    data.add_argument(
        "--data-host-path", help="a directory on the node(s) instead (a one-node cluster)"
    )
    real.add_argument(
        "--node-selector",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="added to every stage's pod (repeatable): e.g. only nodes that run containers",
    )
    real.add_argument(
        "--work-scale",
        type=float,
        default=1.0,
        help="factor on every stage's amount of work (a short real run; default 1)",
    )
    p.add_argument("--cluster-name", default="experiment", help="local cluster name")
    p.add_argument("--keep-cluster", action="store_true", help="leave the local cluster running")
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(handler=_main)


def _main(args: argparse.Namespace) -> int:
    def fail(msg: str, code: int = 2) -> int:
        print(f"energysched experiment: {msg}", file=sys.stderr)
        return code

    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        return fail(str(exc))
    if args.repeats < 1:
        return fail(f"--repeats must be >= 1, got {args.repeats}")
    if args.time_factor is not None and not 0 < args.time_factor <= 10:
        return fail(f"--time-factor must be within (0, 10], got {args.time_factor}")
    weights = args.weights or args.weight or [0.5]
    seeds = list(range(args.seed, args.seed + args.repeats))
    powers = {"off": [False], "on": [True], "both": [False, True]}[args.power]
    specs = plan(args.schedulers, args.mode, weights, seeds, powers)
    if any(powers) and (args.kubeconfig is not None or args.cluster == "current"):
        return fail("--power on|both runs on the local cluster only (a simulation)")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.kubeconfig is not None or args.cluster == "current":
        from energysched_lab.experiment.realcluster import main as real_main

        return int(real_main(args, scenario, specs))

    from energysched_lab.cluster.local import ClusterError, LocalCluster
    from energysched_lab.cluster.nodes import NodeClassError

    cluster = LocalCluster(args.cluster_name)
    batch = new_batch_id()
    command = "energysched experiment " + shlex.join(
        sys.argv[2:] if sys.argv[1:2] == ["experiment"] else sys.argv[1:]
    )
    print(
        f"batch {batch}: scenario {scenario.name}, {len(specs)} runs "
        f"({', '.join(args.schedulers)}; modes {','.join(args.mode)}; weights "
        f"{','.join(f'{w:g}' for w in weights)}; seeds {seeds[0]}..{seeds[-1]}; "
        f"power management {args.power}), "
        f"time factor {args.time_factor or scenario.time_factor:g}",
        file=sys.stderr,
    )
    rows: list[dict[str, Any]] = []
    try:
        if cluster.is_running():
            cluster.down()  # a fresh cluster with the scenario's nodes
        cluster.up(nodes_dir=scenario.nodes_dir, log=lambda m: print(m, file=sys.stderr))
        asyncio.run(
            run_batch(
                cluster.kubeconfig,
                scenario,
                specs,
                out=args.out,
                batch=batch,
                time_factor=args.time_factor,
                progress=Progress(len(specs)),
                on_run=rows.append,
            )
        )
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: {len(rows)} complete run(s) in {args.out}/runs.csv, partial rows of "
            "the current run marked 'interrupted'; its Jobs were deleted",
            file=sys.stderr,
        )
        return 130
    except (ClusterError, NodeClassError, ScenarioError) as exc:
        return fail(str(exc), 1)
    finally:
        if not args.keep_cluster:
            cluster.purge()
    return finish(args, scenario.name, batch, command, rows, scenario.time_factor)
